//! The worker queue's dead-letter queue, for the admin: list what is in it, move messages back
//! to the worker queue ("redrive"), delete one.
//!
//! The dead-letter queue is found from the worker queue's `RedrivePolicy` (template.yaml sets
//! it), so there is nothing more to configure. SQS has no "peek": to list or pick messages
//! they are received with a short visibility timeout and made visible again at once
//! ([`VISIBILITY`] bounds how long one would stay hidden if that release failed). Moving a
//! message sends a copy to the worker queue and then deletes the original: if the delete
//! fails, the worker gets it twice, which it tolerates (a message names an outbox row, and a
//! row already `sent` is never sent again).

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::domain::User;
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::queue::{Message, Queue};
use crate::services::admin::{record, require_superuser};

/// How long a received message stays hidden if it is not released (seconds).
const VISIBILITY: i32 = 30;
/// Long polling (seconds) makes a receive ask every SQS server, so a small queue is read whole.
const WAIT: i32 = 1;
/// Messages read for a listing or a search, at most.
pub const MAX_LISTED: usize = 500;
/// Messages one "redrive all" moves, at most (a web request has 29 seconds).
pub const MAX_REDRIVEN: usize = 1_000;

/// Where the dead letters are, or why there are none to show.
pub enum Located {
    /// `WORKER_QUEUE_URL` is not set: the local runner's in-process queue has no dead-letter
    /// queue (it drops a message after 5 failed receives; the outbox sweep queues its row
    /// again).
    LocalQueue,
    /// The worker queue has no redrive policy.
    NoRedrivePolicy,
    Found(DeadLetterQueue),
}

pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    pub url: String,
    /// The worker queue, where redriven messages go.
    pub source_url: String,
    /// SQS's approximate count of visible messages.
    pub approximate_count: i64,
}

/// A message in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    /// When it was first sent to the worker queue.
    pub sent_at: Option<DateTime<Utc>>,
    /// Receives so far (the worker's failures, plus this listing's).
    pub receive_count: u32,
    /// What the body says, or why it cannot be read.
    pub decoded: std::result::Result<Message, String>,
    receipt_handle: String,
}

fn sqs_error(doing: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Unavailable(anyhow::anyhow!(
        "{doing}: {}",
        aws_sdk_sqs::error::DisplayErrorContext(e)
    ))
}

/// Finds the worker queue's dead-letter queue through its redrive policy.
pub async fn locate(queue: &Queue) -> Result<Located> {
    let Some((client, url)) = queue.sqs().await else {
        return Ok(Located::LocalQueue);
    };
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| sqs_error("reading the worker queue's redrive policy", e))?;
    let Some(policy) = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
    else {
        return Ok(Located::NoRedrivePolicy);
    };
    let arn = serde_json::from_str::<serde_json::Value>(policy)
        .ok()
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            Error::Unexpected(anyhow::anyhow!(
                "the worker queue's redrive policy has no deadLetterTargetArn: {policy}"
            ))
        })?;
    // arn:aws:sqs:<region>:<account>:<name>
    let parts: Vec<&str> = arn.split(':').collect();
    let (Some(account), Some(name)) = (parts.get(4), parts.get(5)) else {
        return Err(Error::Unexpected(anyhow::anyhow!(
            "the dead-letter queue's ARN {arn:?} is not an SQS queue ARN"
        )));
    };
    let dlq_url = client
        .get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .map_err(|e| sqs_error("finding the dead-letter queue", e))?
        .queue_url
        .unwrap_or_default();
    let counts = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| sqs_error("counting the dead letters", e))?;
    let approximate_count = counts
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Located::Found(DeadLetterQueue {
        client: client.clone(),
        url: dlq_url,
        source_url: url.to_owned(),
        approximate_count,
    }))
}

impl DeadLetterQueue {
    /// Receives one batch (hidden for [`VISIBILITY`] seconds).
    async fn receive(&self) -> Result<Vec<DeadLetter>> {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(VISIBILITY)
            .wait_time_seconds(WAIT)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| sqs_error("reading the dead-letter queue", e))?;
        Ok(received
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attribute = |name| m.attributes().and_then(|a| a.get(&name)).cloned();
                let body = m.body().unwrap_or_default().to_owned();
                DeadLetter {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    sent_at: attribute(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|ms| ms.parse().ok())
                        .and_then(DateTime::from_timestamp_millis),
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                    decoded: Message::decode(&body).map_err(|e| e.to_string()),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                    body,
                }
            })
            .collect())
    }

    /// Receives until the queue has nothing more to give, or `cap` messages.
    async fn receive_all(&self, cap: usize) -> Result<Vec<DeadLetter>> {
        let mut all: Vec<DeadLetter> = Vec::new();
        while all.len() < cap {
            let batch = self.receive().await;
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    self.release(&all).await;
                    return Err(e);
                }
            };
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        Ok(all)
    }

    /// Makes received messages visible again at once. A failure only delays them.
    async fn release(&self, messages: &[DeadLetter]) {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt_handle)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(
                    error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                    "could not release dead letters; they reappear in {VISIBILITY} s"
                );
            }
        }
    }

    async fn delete(&self, message: &DeadLetter) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| sqs_error("deleting a dead letter", e))?;
        Ok(())
    }

    /// Receives everything (up to [`MAX_LISTED`]), keeps the message `message_id`, releases the
    /// rest.
    async fn take(&self, message_id: &str) -> Result<DeadLetter> {
        let mut all = self.receive_all(MAX_LISTED).await?;
        let found = all.iter().position(|m| m.message_id == message_id);
        let taken = found.map(|i| all.swap_remove(i));
        self.release(&all).await;
        taken.ok_or_else(|| {
            Error::NotFound(format!(
                "message {message_id} is not in the dead-letter queue (already moved or deleted?)"
            ))
        })
    }
}

/// The dead letters (up to [`MAX_LISTED`]), oldest first.
pub async fn list(
    dlq: &DeadLetterQueue,
    actor: &User,
    request: PageRequest,
) -> Result<Page<DeadLetter>> {
    require_superuser(actor)?;
    let mut all = dlq.receive_all(MAX_LISTED).await?;
    dlq.release(&all).await;
    all.sort_by(|a, b| (a.sent_at, &a.message_id).cmp(&(b.sent_at, &b.message_id)));
    let count = i64::try_from(all.len()).unwrap_or(i64::MAX);
    request.check(count)?;
    let start = usize::try_from(request.offset()).unwrap_or(usize::MAX);
    let results = all
        .into_iter()
        .skip(start)
        .take(request.page_size() as usize)
        .collect();
    Ok(Page::new(request, count, results))
}

fn describe(message: &DeadLetter) -> String {
    match &message.decoded {
        Ok(Message::SendEmail { email_id }) => format!("send_email for email {email_id}"),
        Err(e) => format!("unreadable body ({e})"),
    }
}

/// Moves one message back to the worker queue.
pub async fn redrive_one(
    db: &Db,
    dlq: &DeadLetterQueue,
    actor: &User,
    message_id: &str,
) -> Result<()> {
    require_superuser(actor)?;
    let message = dlq.take(message_id).await?;
    if let Err(e) = dlq
        .client
        .send_message()
        .queue_url(&dlq.source_url)
        .message_body(&message.body)
        .send()
        .await
    {
        dlq.release(std::slice::from_ref(&message)).await;
        return Err(sqs_error("sending the message to the worker queue", e));
    }
    dlq.delete(&message).await?;
    crate::metrics::count(crate::metrics::Metric::DeadLettersRedriven, &[]);
    let detail = format!("{} moved to the worker queue", describe(&message));
    let mut conn = db.acquire().await?;
    record(
        &mut conn,
        actor,
        "dead_letter.redrive",
        &format!("message {message_id}"),
        &detail,
    )
    .await
}

/// Deletes one message for good.
pub async fn delete_one(
    db: &Db,
    dlq: &DeadLetterQueue,
    actor: &User,
    message_id: &str,
) -> Result<()> {
    require_superuser(actor)?;
    let message = dlq.take(message_id).await?;
    dlq.delete(&message).await?;
    let detail = format!("{} deleted; body: {}", describe(&message), message.body);
    let mut conn = db.acquire().await?;
    record(
        &mut conn,
        actor,
        "dead_letter.delete",
        &format!("message {message_id}"),
        &detail,
    )
    .await
}

/// What [`redrive_all`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Redriven {
    pub moved: usize,
    /// Sends the worker queue refused; those messages stay in the dead-letter queue.
    pub failed: usize,
}

/// Moves every message back to the worker queue, up to [`MAX_REDRIVEN`] per call.
pub async fn redrive_all(db: &Db, dlq: &DeadLetterQueue, actor: &User) -> Result<Redriven> {
    require_superuser(actor)?;
    let mut done = Redriven::default();
    while done.moved + done.failed < MAX_REDRIVEN {
        let batch = dlq.receive().await?;
        if batch.is_empty() {
            break;
        }
        let entries = batch
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .build()
                    .ok()
            })
            .collect();
        let sent = dlq
            .client
            .send_message_batch()
            .queue_url(&dlq.source_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) => {
                dlq.release(&batch).await;
                return Err(sqs_error("sending messages to the worker queue", e));
            }
        };
        let succeeded: Vec<usize> = sent
            .successful()
            .iter()
            .filter_map(|s| s.id().parse().ok())
            .collect();
        let (moved, kept): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .enumerate()
            .partition(|(i, _)| succeeded.contains(i));
        for (_, message) in &moved {
            dlq.delete(message).await?;
        }
        let kept: Vec<DeadLetter> = kept.into_iter().map(|(_, m)| m).collect();
        dlq.release(&kept).await;
        done.moved += moved.len();
        done.failed += kept.len();
        if !kept.is_empty() {
            // The worker queue refuses some: stop rather than spin on them.
            break;
        }
    }
    if done.moved > 0 {
        crate::metrics::emit(
            &[(
                crate::metrics::Metric::DeadLettersRedriven,
                done.moved as f64,
            )],
            &[],
        );
    }
    let detail = format!(
        "{} messages moved to the worker queue{}",
        done.moved,
        if done.failed > 0 {
            format!("; {} refused by the worker queue and left", done.failed)
        } else {
            String::new()
        }
    );
    let mut conn = db.acquire().await?;
    record(
        &mut conn,
        actor,
        "dead_letter.redrive_all",
        "dead-letter queue",
        &detail,
    )
    .await?;
    Ok(done)
}
