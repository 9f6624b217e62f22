//! The scheduler function: runs the job an EventBridge schedule names.
//!
//! [`handle_event`] reads the job name (and the tick, when the event carries one) from any of
//! the three shapes a schedule can deliver, then hands it to [`shared::jobs::run`], which runs
//! each tick once. An unknown or missing job fails the invocation, so the schedule's retries,
//! dead-letter queue and error alarm see it: never a silent success. Failures are named for
//! Lambda's `errorType`: `InvalidEvent` (no job, or a malformed one), [`UNKNOWN_JOB`] (a
//! schedule naming a job the registry does not have), `HandlerError` (the job failed).

use chrono::{DateTime, Utc};
use lambda_init::failure::{self, Diagnostic};
use serde_json::{Value, json};
use shared::config::Config;
use shared::db::Db;
use shared::jobs::{self, Outcome};
use shared::queue::Queue;

/// The `errorType` of an event naming a job that `shared::jobs::JOBS` does not list: the
/// template's schedules and the registry disagree.
pub const UNKNOWN_JOB: &str = "UnknownJob";

/// Built once per Lambda instance.
pub struct Deps {
    pub config: Config,
    pub db: Db,
    pub queue: Queue,
}

impl Deps {
    /// For Lambda: a lazy pool (no connection until the first job) and the SQS queue.
    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect_lazy(&config.database)?;
        // In Lambda the queue is SQS: there is no in-process receiving end to keep.
        let (queue, _) = Queue::from_config(&config);
        Ok(Self { config, db, queue })
    }

    /// What a job can reach.
    pub fn jobs(&self) -> jobs::Deps<'_> {
        jobs::Deps {
            db: &self.db,
            config: &self.config,
            queue: &self.queue,
        }
    }
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub job: String,
    /// The tick, when the event says it (an EventBridge `time`, or `scheduled_time` from
    /// EventBridge Scheduler's `<aws.scheduler.scheduled-time>`).
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// Reads the job from one of:
/// - a constant input: `{"job": "sweep-outbox"}` (optionally with `scheduled_time`);
/// - an EventBridge rule's envelope: `{"detail-type": "Scheduled Event", "time": ..., "detail": {"job": ...}}`;
/// - EventBridge Scheduler's payload, whose `detail` may arrive as a JSON string.
pub fn parse_event(event: &Value) -> Result<Trigger, String> {
    let detail = match event.get("detail") {
        Some(Value::String(raw)) => Some(
            serde_json::from_str::<Value>(raw)
                .map_err(|e| format!("the event's detail is a string but not JSON: {e}"))?,
        ),
        Some(detail) => Some(detail.clone()),
        None => None,
    };
    let field = |name: &str| {
        event
            .get(name)
            .or_else(|| detail.as_ref().and_then(|d| d.get(name)))
    };
    let job = match field("job") {
        Some(Value::String(job)) if !job.trim().is_empty() => job.trim().to_owned(),
        Some(other) => return Err(format!("the event's job must be a name, not {other}")),
        None => {
            return Err(
                "the event names no job (expected {\"job\": \"...\"} or detail.job)".into(),
            );
        }
    };
    let scheduled_at = match field("scheduled_time").or_else(|| event.get("time")) {
        Some(Value::String(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("the event's time {t:?} is not RFC 3339: {e}"))?
                .with_timezone(&Utc),
        ),
        Some(other) => return Err(format!("the event's time must be a string, not {other}")),
        None => None,
    };
    Ok(Trigger { job, scheduled_at })
}

/// Runs the job an event names; the answer says what it did.
pub async fn handle_event(deps: &Deps, event: Value) -> Result<Value, Diagnostic> {
    let trigger = parse_event(&event).map_err(|e| {
        tracing::error!(error = e, "unusable scheduler event");
        failure::invalid_event(e)
    })?;
    let job = jobs::named(&trigger.job).map_err(|e| {
        tracing::error!(job = trigger.job, "unknown job");
        failure::failure(UNKNOWN_JOB, e)
    })?;
    let scheduled_at = trigger
        .scheduled_at
        .unwrap_or_else(|| job.tick_of(Utc::now()));
    let outcome = jobs::run(&deps.jobs(), job.name, scheduled_at)
        .await
        .map_err(failure::handler_error)?;
    Ok(match outcome {
        Outcome::Ran(detail) => json!({
            "job": job.name, "scheduled_at": scheduled_at, "outcome": "ran", "detail": detail,
        }),
        Outcome::AlreadyDone => json!({
            "job": job.name, "scheduled_at": scheduled_at, "outcome": "already_done",
        }),
    })
}
