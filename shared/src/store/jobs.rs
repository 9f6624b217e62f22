//! `job_runs`: one row per (job, scheduled time), the scheduler's idempotence key; and the
//! bounded deletes of `purge-expired`.

use chrono::{DateTime, Utc};

use crate::db::Exec;
use crate::{execute, on_conn};

/// Claims the run of `job` for the tick `scheduled_at`: true when this caller should do the
/// work. A second delivery of the same tick finds the row and gets false, unless the first
/// attempt failed or was abandoned (still `running` since before `stale_before`), in which
/// case it takes over.
pub async fn begin_run(
    exec: &mut impl Exec,
    job: &str,
    scheduled_at: DateTime<Utc>,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let claimed = execute!(
        exec,
        sqlx::query(
            "insert into job_runs (job, scheduled_at, status, attempts, started_at) \
             values ($1, $2, 'running', 1, $3) \
             on conflict (job, scheduled_at) do update set status = 'running', \
                 attempts = job_runs.attempts + 1, started_at = $3, finished_at = null, \
                 detail = null \
             where job_runs.status = 'failed' \
                or (job_runs.status = 'running' and job_runs.started_at < $4)",
        )
        .bind(job)
        .bind(scheduled_at)
        .bind(now)
        .bind(stale_before)
    )?;
    Ok(claimed > 0)
}

pub async fn finish_run(
    exec: &mut impl Exec,
    job: &str,
    scheduled_at: DateTime<Utc>,
    succeeded: bool,
    detail: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "update job_runs set status = $3, detail = $4, finished_at = $5 \
             where job = $1 and scheduled_at = $2",
        )
        .bind(job)
        .bind(scheduled_at)
        .bind(if succeeded { "succeeded" } else { "failed" })
        .bind(detail)
        .bind(now)
    )?;
    Ok(())
}

/// A recorded run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRun {
    pub job: String,
    pub scheduled_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

pub async fn count_runs(exec: &mut impl Exec, job: &str) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from job_runs where job = $1")
            .bind(job)
            .fetch_one(&mut *c)
            .await
    })
}

/// A job's runs, newest first.
pub async fn list_runs(
    exec: &mut impl Exec,
    job: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<JobRun>> {
    on_conn!(exec, |c| {
        sqlx::query_as(
            "select job, scheduled_at, status, attempts, started_at, finished_at, detail \
             from job_runs where job = $1 order by scheduled_at desc limit $2 offset $3",
        )
        .bind(job)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })
}

// What `purge-expired` deletes. Each statement deletes at most `$2` rows whose time is before
// `$1`, so no statement holds locks on a large table for long.
pub const PURGE_SESSIONS: &str = "delete from sessions where token_hash in \
    (select token_hash from sessions where expires_at < $1 limit $2)";
pub const PURGE_EMAIL_TOKENS: &str = "delete from email_tokens where token_hash in \
    (select token_hash from email_tokens where expires_at < $1 limit $2)";
pub const PURGE_API_TOKENS: &str = "delete from api_tokens where id in \
    (select id from api_tokens where expires_at is not null and expires_at < $1 limit $2)";
/// Login-limit windows that started before `$1` count as zero already; the rows are litter.
pub const PURGE_THROTTLE_WINDOWS: &str = "delete from auth_throttle where key in \
    (select key from auth_throttle where window_started_at < $1 limit $2)";

/// Runs one `PURGE_*` statement; returns how many rows went.
pub async fn delete_expired_batch(
    exec: &mut impl Exec,
    statement: &'static str,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<u64> {
    execute!(exec, sqlx::query(statement).bind(cutoff).bind(limit))
}
