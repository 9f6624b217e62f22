-- Accounts, sessions, API tokens, one-time email tokens and the email outbox.
--
-- This file runs unchanged on SQLite and PostgreSQL (docs/database.md):
-- * ids are uuid (v7, made in Rust): PostgreSQL stores 16 bytes, SQLite a 16-byte blob;
-- * times are timestamptz, always written from Rust in UTC (never a database default), so
--   both backends hold the same values; SQLite keeps them as RFC 3339 text, which sorts in
--   time order because every value is UTC with the same layout;
-- * booleans are boolean (0/1 integers in SQLite);
-- * status columns are text with a check constraint rather than a PostgreSQL enum type, so
--   adding a status is a portable migration.

create table users (
    id uuid primary key,
    -- Lower-cased by the EmailAddress type before it is stored.
    email text not null,
    -- An argon2id PHC string; null for an account that cannot log in with a password.
    password_hash text,
    is_verified boolean not null default false,
    is_active boolean not null default true,
    is_staff boolean not null default false,
    is_superuser boolean not null default false,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    last_login_at timestamptz
);
-- Case-insensitive uniqueness, enforced by the database as well as by the normalised type.
create unique index users_email_key on users (lower(email));

-- Server-side sessions for HTML pages. The cookie holds a random token; only its SHA-256 is
-- stored, so a database leak does not leak live sessions.
create table sessions (
    token_hash text primary key,
    user_id uuid not null references users (id) on delete cascade,
    created_at timestamptz not null,
    last_seen_at timestamptz not null,
    expires_at timestamptz not null
);
create index sessions_user_id_idx on sessions (user_id);
create index sessions_expires_at_idx on sessions (expires_at);

-- API tokens (`Authorization: Bearer` / `Token`), stored hashed; revoking deletes the row.
create table api_tokens (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    token_hash text not null unique,
    name text not null default '',
    created_at timestamptz not null,
    last_used_at timestamptz,
    -- Null: valid until revoked.
    expires_at timestamptz
);
create index api_tokens_user_id_idx on api_tokens (user_id);

-- Single-use tokens sent by email (verify the address, reset the password).
create table email_tokens (
    token_hash text primary key,
    user_id uuid not null references users (id) on delete cascade,
    purpose text not null check (purpose in ('verify_email', 'reset_password')),
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
);
create index email_tokens_user_id_idx on email_tokens (user_id, purpose);

-- The outbox: an email is a row written in the same transaction as the change that causes it;
-- the worker sends it and records the outcome. The row, not the queue message, is the truth.
create table emails (
    id uuid primary key,
    -- Which template made it (verify_email, password_reset, reminder, ...).
    kind text not null,
    user_id uuid references users (id) on delete set null,
    to_address text not null,
    subject text not null,
    body_text text not null,
    body_html text,
    status text not null default 'pending'
        check (status in ('pending', 'sending', 'sent', 'failed')),
    attempts integer not null default 0,
    -- A claim ('sending') older than this is abandoned and may be claimed again.
    locked_until timestamptz,
    provider_message_id text,
    last_error text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    sent_at timestamptz
);
create index emails_status_created_at_idx on emails (status, created_at);
create index emails_to_address_idx on emails (to_address);
