//! `sweep-outbox`: re-queues emails the queue lost and gives up on those out of attempts
//! ([`outbox::sweep`]).

use chrono::TimeDelta;
use futures_util::future::BoxFuture;

use super::{Deps, Job};
use crate::clock;
use crate::error::Result;
use crate::services::outbox;

pub const JOB: Job = Job {
    name: "sweep-outbox",
    every: TimeDelta::minutes(5),
    run: start,
};

fn start<'a>(deps: &'a Deps<'a>) -> BoxFuture<'a, Result<String>> {
    Box::pin(async move {
        let report = outbox::sweep(deps.db, deps.queue, clock::now() - outbox::STALE_AFTER).await?;
        Ok(format!(
            "{} re-queued, {} given up",
            report.requeued, report.gave_up
        ))
    })
}
