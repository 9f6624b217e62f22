-- Failed login attempts, counted per key ('account:<email>' or 'ip:<client address>') in
-- fixed windows, for the brute-force limit. A row whose window has passed counts as zero (so
-- there is never a permanent lockout); purge-expired deletes such rows.
create table auth_throttle (
    key text primary key,
    window_started_at timestamptz not null,
    failures integer not null
);
