//! The worker tier on a laptop: the in-process queue (or an SQS queue, when `WORKER_QUEUE_URL`
//! is set) drained into [`worker::handle_batch`] as SQS event batches, the same code path as in
//! Lambda, plus the outbox sweep on a timer.

use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use shared::clock;
use shared::jobs;
use shared::queue::{LocalMessage, Queue};
use shared::services::outbox;
use tokio::sync::mpsc::UnboundedReceiver;

/// Like the SQS event source mapping's batch size.
pub(crate) const BATCH_SIZE: usize = 10;
/// Like the queue's `maxReceiveCount`: after this many failed receives a message is dropped
/// ("dead-lettered"); its outbox row is still `pending`, so the sweep queues it again later.
const MAX_RECEIVES: u32 = 5;

/// Drains the in-process queue until it closes. Failed records come back after a delay that
/// grows with each receive, as an SQS visibility timeout would give.
pub async fn run_local(deps: worker::Deps, queue: Queue, mut rx: UnboundedReceiver<LocalMessage>) {
    let mut next_id: u64 = 0;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_SIZE {
            match rx.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let records: Vec<(String, LocalMessage)> = batch
            .into_iter()
            .map(|mut m| {
                next_id += 1;
                m.receive_count += 1;
                (format!("local-{next_id}"), m)
            })
            .collect();
        let event = worker::event_for(
            records
                .iter()
                .map(|(id, m)| (id.clone(), m.body.clone(), m.receive_count)),
        );
        let response = worker::handle_batch(&deps, event).await;
        for failure in response.batch_item_failures {
            let Some((_, message)) = records
                .iter()
                .find(|(id, _)| *id == failure.item_identifier)
            else {
                continue;
            };
            if message.receive_count >= MAX_RECEIVES {
                tracing::error!(
                    body = message.body,
                    receives = message.receive_count,
                    "message failed {MAX_RECEIVES} times; dropped (in AWS it would go to the dead-letter queue)"
                );
                continue;
            }
            let Queue::Local(tx) = &queue else { continue };
            let (tx, message) = (tx.clone(), message.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2u64.pow(message.receive_count))).await;
                // The queue closes at shutdown; the outbox still has the row.
                let _ = tx.send(message);
            });
        }
    }
}

/// Long-polls an SQS queue and hands each batch to the worker, deleting what succeeded: what
/// Lambda's SQS event source mapping does. Used when `WORKER_QUEUE_URL` is set locally.
pub async fn run_sqs(deps: worker::Deps, queue: Queue) {
    let Some((client, url)) = queue.sqs().await else {
        return;
    };
    loop {
        if let Err(e) = poll_sqs_once(&deps, client, url, 20).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "polling SQS failed; retrying in 5 s"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// Receives up to one batch, runs it through the worker and deletes the records that did not
/// fail. Returns (received, failed).
pub async fn poll_sqs_once(
    deps: &worker::Deps,
    client: &aws_sdk_sqs::Client,
    url: &str,
    wait_seconds: i32,
) -> anyhow::Result<(usize, usize)> {
    let received = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(BATCH_SIZE as i32)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
        .context("receiving from SQS")?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok((0, 0));
    }
    let event = worker::event_for(messages.iter().map(|m| {
        let receives = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        (
            m.message_id().unwrap_or_default().to_owned(),
            m.body().unwrap_or_default().to_owned(),
            receives,
        )
    }));
    let response = worker::handle_batch(deps, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !failed.contains(&m.message_id().unwrap_or_default()))
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    if !done.is_empty() {
        client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(done))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
            .context("deleting handled messages from SQS")?;
    }
    Ok((messages.len(), failed.len()))
}

/// Sweeps the outbox once at start-up with no staleness (everything pending: a restart loses
/// nothing), then fires every scheduled job on its period, as the schedules in template.yaml
/// do in AWS (both come from [`jobs::JOBS`]).
pub async fn run_jobs(deps: scheduler::Deps) {
    if let Err(e) = outbox::sweep(&deps.db, &deps.queue, clock::now()).await {
        tracing::warn!(error = %e, "start-up outbox sweep failed");
    }
    let tasks = jobs::JOBS.iter().map(|job| {
        let deps = deps.jobs();
        async move {
            loop {
                let now = chrono::Utc::now();
                let next = job.tick_of(now) + job.every;
                let wait = (next - now).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                // A failure is logged and recorded in job_runs; the next tick tries again.
                let _ = jobs::run(&deps, job.name, next).await;
            }
        }
    });
    futures_util::future::join_all(tasks).await;
}
