-- The admin's action log (Django's LogEntry): every change an operator makes through the
-- admin, with who made it. Read by the admin's "Recent actions"; also written to the logs.
create table admin_actions (
    id uuid primary key,
    -- Kept when the acting account is deleted: the email column still says who it was.
    actor_id uuid references users (id) on delete set null,
    actor_email text not null,
    -- A verb such as 'user.deactivate' or 'email.retry'.
    action text not null,
    -- What it acted on ("user 0193...", "job sweep-outbox", "dead letter <message id>").
    target text not null,
    -- The outcome in words ("3 sessions and tokens ended").
    detail text not null default '',
    created_at timestamptz not null
);
create index admin_actions_created_at_idx on admin_actions (created_at);
