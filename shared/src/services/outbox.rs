//! The email outbox: how every email leaves the app, at least once and never twice.
//!
//! 1. [`add`] writes the `emails` row inside the caller's transaction, with its business rows.
//! 2. After commit, [`notify`] sends the worker a message naming the row. If that fails the
//!    row stays `pending`: nothing is lost, the caller still succeeds.
//! 3. The worker calls [`deliver`]: claim the row atomically, send, record the outcome.
//! 4. [`sweep`] re-queues rows the queue lost and gives up on rows out of attempts: the outbox,
//!    not the queue, is the source of truth. Delivery is at least once; a row already `sent`
//!    is never sent again.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::clock;
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::domain::{EmailAddress, EmailKind, EmailStatus};
use crate::error::Result;
use crate::mail::{self, FailureKind, Mailer, OutgoingEmail, Rendered};
use crate::metrics::{self, Dimension, Metric};
use crate::queue::{Message, Queue};
use crate::store::emails::{self, EmailRow, NewEmail};

/// How long a worker's claim on a row lasts; longer than any send takes (the worker's Lambda
/// timeout is well under it), so an expired claim means the worker died.
pub const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(5);
/// Attempts before a row is marked `failed` for good.
pub const MAX_ATTEMPTS: i32 = 10;
/// A `pending` row untouched for this long is re-queued by [`sweep`].
pub const STALE_AFTER: TimeDelta = TimeDelta::minutes(5);
/// Rows re-queued by one sweep, at most (the next sweep takes the rest).
pub const SWEEP_BATCH: i64 = 500;

/// Writes a `pending` email in the caller's transaction. Send the returned id with [`notify`]
/// after the transaction commits.
pub async fn add(
    tx: &mut Tx,
    kind: EmailKind,
    to: &EmailAddress,
    user_id: Option<Uuid>,
    rendered: &Rendered,
) -> sqlx::Result<Uuid> {
    let new = NewEmail {
        kind,
        user_id,
        to_address: to.as_str(),
        subject: &rendered.subject,
        body_text: &rendered.text,
        body_html: Some(&rendered.html),
    };
    emails::insert_email(tx, &new, clock::now()).await
}

/// Tells the worker about committed emails. Never fails: a message that cannot be sent is
/// logged and its row, still `pending`, is picked up by [`sweep`]. Returns how many were sent.
pub async fn notify(queue: &Queue, email_ids: &[Uuid]) -> usize {
    let mut sent = 0;
    for &email_id in email_ids {
        match queue.send(&Message::SendEmail { email_id }).await {
            Ok(()) => sent += 1,
            Err(e) => tracing::warn!(
                %email_id,
                error = format!("{e:#}"),
                "could not queue an email; it stays pending and the outbox sweep will queue it"
            ),
        }
    }
    sent
}

/// A test email in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestEmail {
    pub id: Uuid,
    /// False when the queue refused the message: the row stays `pending` for [`sweep`].
    pub queued: bool,
}

/// `sendtestemail`: the test email to `to` (naming the mailer that will send it) written to
/// the outbox and its message queued, the path every email takes.
pub async fn send_test_email(
    db: &Db,
    config: &Config,
    queue: &Queue,
    mailer: &Mailer,
    to: &EmailAddress,
) -> Result<TestEmail> {
    let rendered = mail::render(
        config,
        EmailKind::Test,
        minijinja::context! { backend => mailer.backend() },
    )?;
    let mut tx = db.begin().await?;
    let id = add(&mut tx, EmailKind::Test, to, None, &rendered).await?;
    tx.commit().await?;
    let queued = notify(queue, &[id]).await == 1;
    Ok(TestEmail { id, queued })
}

/// The outbox row `email_id` as it is now.
pub async fn find(db: &Db, email_id: Uuid) -> Result<Option<EmailRow>> {
    let mut conn = db.acquire().await?;
    Ok(emails::find_email(&mut conn, email_id).await?)
}

/// What [`deliver`] did with a message. Every variant acknowledges the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        provider_message_id: String,
    },
    /// Already `sent`: a duplicate message; nothing is sent again.
    AlreadySent,
    /// Already `failed` for good.
    AlreadyFailed,
    /// Another worker holds the claim right now; it will record the outcome.
    ClaimedElsewhere,
    /// No such row (deleted): nothing to do.
    Missing,
    /// The provider refused the message for good; the row is now `failed`.
    Failed {
        error: String,
    },
}

/// Why a message must be retried: report it as a batch item failure.
#[derive(Debug, thiserror::Error)]
pub enum RetryLater {
    #[error("transient send failure (attempt {attempts}): {error}")]
    Transient { attempts: i32, error: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Delivers one outbox row: claim, send, record. Two database round trips when it sends.
pub async fn deliver(db: &Db, mailer: &Mailer, email_id: Uuid) -> Result<Delivery, RetryLater> {
    let now = clock::now();
    let claimed = {
        let mut conn = db.acquire().await?;
        emails::claim_email(&mut conn, email_id, now, now + CLAIM_LEASE).await?
    };
    let Some(row) = claimed else {
        return not_claimed(db, email_id).await;
    };
    // No connection is held while the provider is called.
    let outgoing = OutgoingEmail {
        to: row.to_address,
        subject: row.subject,
        text: row.body_text,
        html: row.body_html,
    };
    let result = mailer.send(&outgoing).await;
    let mut conn = db.acquire().await?;
    let done = clock::now();
    match result {
        Ok(sent) => {
            emails::mark_email_sent(&mut conn, email_id, &sent.provider_message_id, done).await?;
            tracing::info!(%email_id, attempts = row.attempts, message_id = sent.provider_message_id, "email sent");
            metrics::count(Metric::EmailsSent, &[(Dimension::Kind, row.kind.as_str())]);
            Ok(Delivery::Sent {
                provider_message_id: sent.provider_message_id,
            })
        }
        Err(e) if e.kind == FailureKind::Permanent || row.attempts >= MAX_ATTEMPTS => {
            let error = if e.kind == FailureKind::Permanent {
                e.message
            } else {
                format!("gave up after {} attempts: {}", row.attempts, e.message)
            };
            emails::release_email(&mut conn, email_id, EmailStatus::Failed, &error, done).await?;
            tracing::warn!(%email_id, attempts = row.attempts, error, "email failed for good");
            metrics::count(
                Metric::EmailsFailed,
                &[(Dimension::Kind, row.kind.as_str())],
            );
            Ok(Delivery::Failed { error })
        }
        Err(e) => {
            emails::release_email(&mut conn, email_id, EmailStatus::Pending, &e.message, done)
                .await?;
            tracing::warn!(%email_id, attempts = row.attempts, error = e.message, "email send failed; will retry");
            metrics::count(
                Metric::EmailsRetried,
                &[(Dimension::Kind, row.kind.as_str())],
            );
            Err(RetryLater::Transient {
                attempts: row.attempts,
                error: e.message,
            })
        }
    }
}

/// Why the claim found nothing to take.
async fn not_claimed(db: &Db, email_id: Uuid) -> Result<Delivery, RetryLater> {
    let mut conn = db.acquire().await?;
    let row = emails::find_email(&mut conn, email_id).await?;
    let outcome = match row.map(|r| r.status) {
        None => Delivery::Missing,
        Some(EmailStatus::Sent) => Delivery::AlreadySent,
        Some(EmailStatus::Failed) => Delivery::AlreadyFailed,
        // Between our claim and this read, the row moved on: someone else has it.
        Some(EmailStatus::Sending | EmailStatus::Pending) => Delivery::ClaimedElsewhere,
    };
    tracing::info!(%email_id, ?outcome, "duplicate or stale message acknowledged without sending");
    Ok(outcome)
}

/// What one [`sweep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Rows whose message was sent again.
    pub requeued: usize,
    /// Rows marked `failed` after [`MAX_ATTEMPTS`].
    pub gave_up: u64,
}

/// `sweep-outbox`: marks rows out of attempts `failed`, and re-queues `pending` rows untouched
/// since `stale_before` (and rows whose worker died mid-send). Safe to run at any time, twice,
/// or concurrently: a re-queued row that is also still in the queue is sent once, because
/// [`deliver`] claims atomically.
pub async fn sweep(
    db: &Db,
    queue: &Queue,
    stale_before: DateTime<Utc>,
) -> sqlx::Result<SweepReport> {
    let now = clock::now();
    let mut conn = db.acquire().await?;
    let gave_up = emails::fail_exhausted_emails(&mut conn, MAX_ATTEMPTS, now).await?;
    let stale =
        emails::touch_stale_emails(&mut conn, stale_before, now, MAX_ATTEMPTS, SWEEP_BATCH).await?;
    drop(conn);
    let requeued = notify(queue, &stale).await;
    if requeued > 0 || gave_up > 0 {
        tracing::info!(requeued, gave_up, "outbox swept");
    }
    Ok(SweepReport { requeued, gave_up })
}
