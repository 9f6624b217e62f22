//! Scheduled jobs: one registry, one file per job.
//!
//! Adding a job: a file with a [`Job`] constant, and one line in [`JOBS`]. Its schedule is
//! defined here once: the local runner fires it on that period and a test holds
//! `template.yaml`'s schedules equal to these.
//!
//! Every run goes through [`run`]: it claims the tick (job, scheduled time) in `job_runs` under
//! a unique key, so a duplicate or concurrent delivery of the same tick does the work once, and
//! records the outcome. The jobs themselves are idempotent too (a run interrupted halfway is
//! completed by the next one).

// example-app:begin
mod process_occurrences;
// example-app:end
mod purge_expired;
mod sweep_outbox;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures_util::future::BoxFuture;

use crate::clock;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::store::jobs as store;

/// What a job can reach.
pub struct Deps<'a> {
    pub db: &'a Db,
    pub config: &'a Config,
    pub queue: &'a Queue,
}

/// A job: its name (what schedules send), how often it runs, and its body, which returns a
/// one-line account of what it did.
pub struct Job {
    pub name: &'static str,
    pub every: TimeDelta,
    pub run: for<'a> fn(&'a Deps<'a>) -> BoxFuture<'a, Result<String>>,
}

/// The registry.
pub const JOBS: &[Job] = &[
    // example-app:begin
    process_occurrences::JOB,
    // example-app:end
    sweep_outbox::JOB,
    purge_expired::JOB,
];

pub fn find(name: &str) -> Option<&'static Job> {
    JOBS.iter().find(|j| j.name == name)
}

/// The job called `name`, or an error that lists the jobs there are.
pub fn named(name: &str) -> std::result::Result<&'static Job, UnknownJob> {
    find(name).ok_or_else(|| UnknownJob {
        name: name.to_owned(),
    })
}

/// A name [`JOBS`] does not list (a schedule or a command asking for a job that is not there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownJob {
    pub name: String,
}

impl std::fmt::Display for UnknownJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = JOBS.iter().map(|j| j.name).collect();
        write!(
            f,
            "unknown job {:?}; the jobs are {}",
            self.name,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownJob {}

impl Job {
    /// The EventBridge schedule expression of [`Job::every`] (`rate(15 minutes)`).
    pub fn schedule_expression(&self) -> String {
        let minutes = self.every.num_minutes();
        match minutes {
            1 => "rate(1 minute)".to_owned(),
            m if m % (24 * 60) == 0 && m / (24 * 60) == 1 => "rate(1 day)".to_owned(),
            m if m % (24 * 60) == 0 => format!("rate({} days)", m / (24 * 60)),
            m if m % 60 == 0 && m / 60 == 1 => "rate(1 hour)".to_owned(),
            m if m % 60 == 0 => format!("rate({} hours)", m / 60),
            m => format!("rate({m} minutes)"),
        }
    }

    /// The tick a time belongs to (the start of its period), for runs without a scheduled
    /// time in their event.
    pub fn tick_of(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.every).unwrap_or(t)
    }
}

/// A claimed run that has not finished after this long was abandoned (its Lambda timed out or
/// crashed); a redelivery of the tick may take it over.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(15);

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran; what it did.
    Ran(String),
    /// This tick was already done (or is being done) by another delivery.
    AlreadyDone,
}

/// Runs job `name` for the tick `scheduled_at`, once per tick. An unknown name is an error
/// (so the invocation fails and alarms fire), never a silent success. A failing job is
/// recorded as failed and returned as an error; a redelivery of the tick may retry it.
pub async fn run(deps: &Deps<'_>, name: &str, scheduled_at: DateTime<Utc>) -> Result<Outcome> {
    let job = named(name).map_err(|e| Error::BadRequest(e.to_string()))?;
    let scheduled_at = clock::truncate(scheduled_at);
    let now = clock::now();
    {
        let mut conn = deps.db.acquire().await?;
        if !store::begin_run(
            &mut conn,
            job.name,
            scheduled_at,
            now,
            now - ABANDONED_AFTER,
        )
        .await?
        {
            tracing::info!(job = job.name, %scheduled_at, "tick already done; skipped");
            return Ok(Outcome::AlreadyDone);
        }
    }
    let (span, started) = (tick_span(job.name, scheduled_at), std::time::Instant::now());
    let result = tracing::Instrument::instrument((job.run)(deps), span.clone()).await;
    let (succeeded, detail) = match &result {
        Ok(detail) => (true, detail.clone()),
        Err(e) => (false, format!("{e:#}")),
    };
    let mut conn = deps.db.acquire().await?;
    store::finish_run(
        &mut conn,
        job.name,
        scheduled_at,
        succeeded,
        &detail,
        clock::now(),
    )
    .await?;
    span.in_scope(|| crate::metrics::job_run(job.name, result.is_ok(), started.elapsed()));
    match result {
        Ok(detail) => {
            tracing::info!(job = job.name, %scheduled_at, detail, "job done");
            Ok(Outcome::Ran(detail))
        }
        Err(e) => {
            tracing::error!(job = job.name, %scheduled_at, error = format!("{e:#}"), "job failed");
            Err(e)
        }
    }
}

/// The span of a job's run: each line the job logs (and its metric line) carries the job and
/// its tick, the ids that join a run's lines to its `job_runs` row.
fn tick_span(job: &str, scheduled_at: DateTime<Utc>) -> tracing::Span {
    tracing::info_span!("job", job, tick = %scheduled_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_schedules_render_as_eventbridge_rates() {
        let mut names: Vec<_> = JOBS.iter().map(|j| j.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), JOBS.len());
        let rate = |minutes| Job {
            name: "x",
            every: TimeDelta::minutes(minutes),
            run: JOBS[0].run,
        };
        assert_eq!(rate(1).schedule_expression(), "rate(1 minute)");
        assert_eq!(rate(15).schedule_expression(), "rate(15 minutes)");
        assert_eq!(rate(60).schedule_expression(), "rate(1 hour)");
        assert_eq!(rate(180).schedule_expression(), "rate(3 hours)");
        assert_eq!(rate(1440).schedule_expression(), "rate(1 day)");
    }
}
