//! `purge-archived-notes`: deletes notes archived more than 30 days ago, in bounded batches.

use chrono::TimeDelta;
use futures_util::future::BoxFuture;

use crate::clock;
use crate::error::Result;
use crate::guide::store::notes::delete_archived_notes;
use crate::jobs::{Deps, Job};

/// How long an archived note is kept before it is deleted for good.
pub const KEEP_ARCHIVED: TimeDelta = TimeDelta::days(30);
/// Rows deleted per statement, so one run never holds a long lock.
const BATCH: i64 = 1_000;

pub const JOB: Job = Job {
    name: "purge-archived-notes",
    every: TimeDelta::days(1),
    run: start,
};

fn start<'a>(deps: &'a Deps<'a>) -> BoxFuture<'a, Result<String>> {
    Box::pin(async move {
        let cutoff = clock::now() - KEEP_ARCHIVED;
        let mut total = 0;
        loop {
            let mut conn = deps.db.acquire().await?;
            let deleted = delete_archived_notes(&mut conn, cutoff, BATCH).await?;
            total += deleted;
            if deleted < BATCH as u64 {
                break;
            }
        }
        Ok(format!("deleted {total} archived notes"))
    })
}
