//! `purge-expired`: deletes expired sessions, email tokens, API tokens and login-limit windows,
//! in bounded batches.

use chrono::TimeDelta;
use futures_util::future::BoxFuture;

use super::{Deps, Job};
use crate::clock;
use crate::error::Result;
use crate::services::accounts::LOGIN_WINDOW;
use crate::store::jobs::{
    PURGE_API_TOKENS, PURGE_EMAIL_TOKENS, PURGE_SESSIONS, PURGE_THROTTLE_WINDOWS,
    delete_expired_batch,
};

/// Rows deleted per statement.
pub const PURGE_BATCH: i64 = 1_000;

pub const JOB: Job = Job {
    name: "purge-expired",
    every: TimeDelta::hours(1),
    run: start,
};

fn start<'a>(deps: &'a Deps<'a>) -> BoxFuture<'a, Result<String>> {
    Box::pin(async move {
        let now = clock::now();
        let mut report = Vec::new();
        for (what, statement, cutoff) in [
            ("sessions", PURGE_SESSIONS, now),
            ("email tokens", PURGE_EMAIL_TOKENS, now),
            ("API tokens", PURGE_API_TOKENS, now),
            ("login windows", PURGE_THROTTLE_WINDOWS, now - LOGIN_WINDOW),
        ] {
            let mut total = 0;
            loop {
                let mut conn = deps.db.acquire().await?;
                let deleted =
                    delete_expired_batch(&mut conn, statement, cutoff, PURGE_BATCH).await?;
                total += deleted;
                if deleted < PURGE_BATCH as u64 {
                    break;
                }
            }
            report.push(format!("{total} {what}"));
        }
        Ok(format!("deleted {}", report.join(", ")))
    })
}
