-- Classes, their occurrences, bookings, and the record of scheduled job runs.
-- Portable between SQLite and PostgreSQL as the first migration explains.

create table classes (
    id uuid primary key,
    title text not null,
    description text not null default '',
    location text not null default '',
    -- The first start, in UTC; recurrences repeat its wall-clock time in TIME_ZONE.
    starts_at timestamptz not null,
    duration_minutes integer not null check (duration_minutes > 0),
    capacity integer not null check (capacity > 0),
    recurrence text not null check (recurrence in ('none', 'daily', 'weekly')),
    -- Last local date an occurrence may start on (inclusive); null: no end.
    repeat_until date,
    -- Occurrences exist up to this time, so process-occurrences only reads the classes whose
    -- horizon falls short (an index range scan, not the whole table, every 15 minutes).
    materialized_until timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index classes_starts_at_idx on classes (starts_at, id);
create index classes_materialized_until_idx on classes (materialized_until);

create table occurrences (
    id uuid primary key,
    class_id uuid not null references classes (id) on delete cascade,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    capacity integer not null check (capacity > 0),
    -- Kept in step with `bookings` in the same transaction; the check makes overbooking
    -- impossible even if a bug skipped the guard in the update.
    booked integer not null default 0 check (booked >= 0 and booked <= capacity),
    -- Materializing twice (or concurrently) inserts each occurrence once.
    unique (class_id, starts_at)
);
create index occurrences_starts_at_idx on occurrences (starts_at);

create table bookings (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    occurrence_id uuid not null references occurrences (id) on delete cascade,
    created_at timestamptz not null,
    -- Set when the reminder email is queued: claimed atomically, so it is queued once.
    reminded_at timestamptz,
    unique (user_id, occurrence_id)
);
create index bookings_occurrence_id_idx on bookings (occurrence_id);

-- One row per (job, scheduled time): a duplicate or concurrent delivery of the same tick finds
-- the row and does nothing.
create table job_runs (
    job text not null,
    scheduled_at timestamptz not null,
    status text not null check (status in ('running', 'succeeded', 'failed')),
    attempts integer not null default 1,
    started_at timestamptz not null,
    finished_at timestamptz,
    -- What the run did ("12 occurrences, 3 reminders") or why it failed.
    detail text,
    primary key (job, scheduled_at)
);
create index job_runs_started_at_idx on job_runs (started_at);
