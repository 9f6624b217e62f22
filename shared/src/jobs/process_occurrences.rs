//! `process-occurrences`, every 15 minutes: materializes occurrences
//! [`MATERIALIZE_AHEAD`](crate::services::classes::MATERIALIZE_AHEAD) (14 days) ahead and
//! queues a reminder for each booking whose class starts within the hour, exactly once per
//! booking.

use chrono::TimeDelta;
use futures_util::future::BoxFuture;

use super::{Deps, Job};
use crate::clock;
use crate::domain::{EmailAddress, EmailKind};
use crate::error::Result;
use crate::mail;
use crate::services::accounts::link;
use crate::services::{classes, outbox};
use crate::store::classes::claim_due_reminders;
use crate::store::emails::{NewEmail, insert_emails};

pub const JOB: Job = Job {
    name: "process-occurrences",
    every: TimeDelta::minutes(15),
    run: start,
};

/// Reminders go to bookings of occurrences starting within this time.
pub const REMIND_BEFORE: TimeDelta = TimeDelta::hours(1);
/// Reminders claimed per transaction (three statements per batch, whatever its size).
pub const REMINDER_BATCH: i64 = 500;

fn start<'a>(deps: &'a Deps<'a>) -> BoxFuture<'a, Result<String>> {
    Box::pin(async move {
        let tz = deps.config.time_zone;
        let now = clock::now();
        let materialized = classes::materialize_all(deps.db, tz, now).await?;
        let reminders = queue_reminders(deps).await?;
        Ok(format!(
            "{} occurrences created for {} classes in {} batches; {reminders} reminders queued",
            materialized.occurrences, materialized.classes, materialized.batches
        ))
    })
}

/// Claims due reminders and writes their emails in the same transaction (a crash before commit
/// leaves them unclaimed, for the next run), then tells the worker.
async fn queue_reminders(deps: &Deps<'_>) -> Result<usize> {
    let tz = deps.config.time_zone;
    let bookings_link = link(deps.config, "bookings", None)?;
    let mut total = 0;
    loop {
        let now = clock::now();
        let mut tx = deps.db.begin().await?;
        let due = claim_due_reminders(&mut tx, now, now + REMIND_BEFORE, REMINDER_BATCH).await?;
        if due.is_empty() {
            break;
        }
        let mut rendered = Vec::with_capacity(due.len());
        for reminder in &due {
            let starts_local = reminder
                .starts_at
                .with_timezone(&tz)
                .format("%A %-d %B, %H:%M %Z")
                .to_string();
            rendered.push(mail::render(
                deps.config,
                EmailKind::Reminder,
                minijinja::context! {
                    title => &reminder.class_title,
                    location => &reminder.location,
                    starts_local,
                    bookings_link => &bookings_link,
                },
            )?);
        }
        let addresses: Vec<EmailAddress> = due
            .iter()
            .map(|r| EmailAddress::from_stored(r.email.clone()))
            .collect();
        let new: Vec<NewEmail> = due
            .iter()
            .zip(&rendered)
            .zip(&addresses)
            .map(|((reminder, email), to)| NewEmail {
                kind: EmailKind::Reminder,
                user_id: Some(reminder.user_id),
                to_address: to.as_str(),
                subject: &email.subject,
                body_text: &email.text,
                body_html: Some(&email.html),
            })
            .collect();
        let ids = insert_emails(&mut tx, &new, now).await?;
        // Tests crash a run here: reminders claimed and written, nothing committed.
        #[cfg(any(test, feature = "testing"))]
        crate::testing::faults::point("reminders: written, not committed").await;
        tx.commit().await?;
        // And here: the emails committed, the worker not told (the outbox sweep tells it).
        #[cfg(any(test, feature = "testing"))]
        crate::testing::faults::point("reminders: committed, not notified").await;
        outbox::notify(deps.queue, &ids).await;
        total += due.len();
        if (due.len() as i64) < REMINDER_BATCH {
            break;
        }
    }
    Ok(total)
}
