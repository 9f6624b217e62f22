//! The worker function: handles a batch of SQS messages (each [`shared::queue::Message`]).
//!
//! Each record is decoded on its own and handled concurrently (at most [`CONCURRENCY`] at a
//! time). The response lists exactly the records to retry: a malformed body, an unknown kind
//! or version, a transient send failure, the database being down. Everything else is
//! acknowledged, including duplicates of work already done. The Lambda `main` and the local
//! runner both call [`handle_batch`], so `cargo run` delivers mail the way Lambda does.
//! [`handle`] is what Lambda invokes: an event that is not an SQS batch fails the invocation
//! as an `InvalidEvent`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt as _;
use lambda_init::failure::{self, Diagnostic};
use serde_json::value::RawValue;
use shared::config::Config;
use shared::db::Db;
use shared::mail::Mailer;
use shared::queue::Message;
use shared::services::outbox;
use tracing::Instrument as _;

/// Records handled at once. Each holds a database connection only for its two short queries,
/// never while the provider is called, so a small pool serves a full batch.
pub const CONCURRENCY: usize = 10;

/// What the handler needs, built once per instance.
#[derive(Clone)]
pub struct Deps {
    pub db: Db,
    pub mailer: Mailer,
}

impl Deps {
    /// For Lambda and the local runner: a lazy pool (no connection until the first record)
    /// and the mailer `EMAIL_BACKEND` names.
    pub async fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            db: Db::connect_lazy(&config.database)?,
            mailer: Mailer::from_config(config).await,
        })
    }
}

/// One invocation: the payload read as an SQS event, then [`handle_batch`].
pub async fn handle(deps: &Deps, payload: &RawValue) -> Result<SqsBatchResponse, Diagnostic> {
    let event = failure::event(payload, "an SQS event")?;
    Ok(handle_batch(deps, event).await)
}

/// Handles one SQS event; the response names the records SQS must deliver again.
pub async fn handle_batch(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let outcomes: Vec<(Option<String>, Result<(), String>)> =
        futures_util::stream::iter(event.records)
            .map(|record| async move {
                let outcome = handle_record(deps, &record)
                    .instrument(record_span(&record))
                    .await;
                (record.message_id, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if let Err(error) = outcome {
            match message_id {
                Some(id) => {
                    tracing::warn!(message_id = id, error, "record failed; SQS will retry it");
                    response.add_failure(id);
                }
                // SQS always sets it; without one there is nothing to report.
                None => tracing::error!(error, "record without a messageId failed"),
            }
        }
    }
    response
}

async fn handle_record(deps: &Deps, record: &SqsMessage) -> Result<(), String> {
    let body = record.body.as_deref().unwrap_or_default();
    let message = Message::decode(body).map_err(|e| e.to_string())?;
    match message {
        Message::SendEmail { email_id } => outbox::deliver(&deps.db, &deps.mailer, email_id)
            .instrument(tracing::info_span!("email", emailId = %email_id))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// The span of one record: every line its handling logs carries the SQS message id.
fn record_span(record: &SqsMessage) -> tracing::Span {
    let id = record.message_id.as_deref().unwrap_or_default();
    tracing::info_span!("record", messageId = id)
}

/// Builds the event SQS would deliver for these bodies (the local runner and tests use it).
pub fn event_for(bodies: impl IntoIterator<Item = (String, String, u32)>) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (message_id, body, receive_count) in bodies {
        let mut record = SqsMessage::default();
        record.message_id = Some(message_id);
        record.body = Some(body);
        record.event_source = Some("aws:sqs".to_owned());
        record.attributes.insert(
            "ApproximateReceiveCount".to_owned(),
            receive_count.to_string(),
        );
        event.records.push(record);
    }
    event
}
