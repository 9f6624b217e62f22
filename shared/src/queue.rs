//! Messages for the worker and the queue that carries them.
//!
//! A message is small, versioned JSON naming work whose details live in the database:
//! `{"v":1,"kind":"send_email","email_id":"..."}`. In AWS it goes to the SQS queue at
//! `WORKER_QUEUE_URL`; locally (no queue URL) to an in-process channel that the local runner
//! drains into the same worker handler.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, mpsc};
use uuid::Uuid;

/// The message format version this build writes and reads.
pub const VERSION: u64 = 1;

/// Work for the worker. One variant per kind; the registry is this enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Deliver the outbox row `email_id`.
    SendEmail { email_id: Uuid },
}

/// Why a message body could not be used. Each fails only its own record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unsupported message version {0} (this worker reads version {VERSION})")]
    UnsupportedVersion(u64),
    #[error("unknown message kind {0:?}")]
    UnknownKind(String),
}

impl Message {
    pub fn encode(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("v".into(), VERSION.into());
        }
        value.to_string()
    }

    pub fn decode(body: &str) -> Result<Self, DecodeError> {
        let mut value: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| DecodeError::Malformed(format!("not JSON: {e}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| DecodeError::Malformed("not a JSON object".into()))?;
        match object.remove("v") {
            None => return Err(DecodeError::Malformed("no version field \"v\"".into())),
            Some(v) => match v.as_u64() {
                Some(VERSION) => {}
                Some(other) => return Err(DecodeError::UnsupportedVersion(other)),
                None => {
                    return Err(DecodeError::Malformed(format!(
                        "version {v} is not a number"
                    )));
                }
            },
        }
        let kind = match object.get("kind") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            _ => return Err(DecodeError::Malformed("no \"kind\" string".into())),
        };
        serde_json::from_value(value).map_err(|e| {
            if e.to_string().starts_with("unknown variant") {
                DecodeError::UnknownKind(kind)
            } else {
                DecodeError::Malformed(e.to_string())
            }
        })
    }
}

/// The longest a message send to SQS may take, retry included. A request that must send mail
/// (a signup) waits for this after its commit; if SQS is unreachable the row stays `pending`
/// and the outbox sweep queues it later, so there is nothing to gain by holding the request.
pub const SQS_SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// Connecting to SQS in its region takes milliseconds; longer means it is unreachable.
const SQS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One retry for a blip; more would only hold the request longer (the sweep is the real retry).
const SQS_SEND_ATTEMPTS: u32 = 2;

/// A message in the local runner's in-process queue, with SQS's receive count.
#[derive(Debug, Clone)]
pub struct LocalMessage {
    pub body: String,
    pub receive_count: u32,
}

/// Where messages for the worker go.
#[derive(Clone)]
pub enum Queue {
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
    /// SQS, with the client built at the first send ([`Queue::sqs_on_first_send`]).
    SqsOnFirstSend {
        client: Arc<OnceCell<aws_sdk_sqs::Client>>,
        url: String,
    },
    /// The local runner's channel (`cargo run`, tests).
    Local(mpsc::UnboundedSender<LocalMessage>),
}

impl Queue {
    /// The one choice of queue, made the same way by every function and the local runner: SQS
    /// when `WORKER_QUEUE_URL` is set (always in Lambda: the configuration requires it there),
    /// with its client made at the first send ([`Queue::sqs_on_first_send`]); otherwise a new
    /// in-process queue, returned with the receiving end that the local runner drains.
    pub fn from_config(
        config: &crate::config::Config,
    ) -> (Self, Option<mpsc::UnboundedReceiver<LocalMessage>>) {
        match Self::sqs_on_first_send(config) {
            Some(queue) => (queue, None),
            None => {
                let (queue, rx) = Self::local();
                (queue, Some(rx))
            }
        }
    }

    /// SQS when `WORKER_QUEUE_URL` is set, with the AWS SDK configuration and the SQS client
    /// made at the first send instead of now: most requests and jobs never send a message, and
    /// loading the SDK's configuration (its credential chain builds an STS client, whose HTTPS
    /// setup parses the system's root certificates) was about a quarter of the web function's
    /// init CPU. The first request that sends mail pays it once instead.
    pub fn sqs_on_first_send(config: &crate::config::Config) -> Option<Self> {
        let url = config.worker_queue_url.as_ref()?;
        Some(Self::SqsOnFirstSend {
            client: Arc::new(OnceCell::new()),
            url: url.to_string(),
        })
    }

    /// An in-process queue and the receiving end the local worker loop drains.
    pub fn local() -> (Self, mpsc::UnboundedReceiver<LocalMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::Local(tx), rx)
    }

    /// The SQS client and queue URL (making the client now for [`Queue::SqsOnFirstSend`]), or
    /// `None` for the local queue.
    pub async fn sqs(&self) -> Option<(&aws_sdk_sqs::Client, &str)> {
        match self {
            Queue::Sqs { client, url } => Some((client, url)),
            Queue::SqsOnFirstSend { client, url } => {
                let client = client
                    .get_or_init(|| async {
                        aws_sdk_sqs::Client::new(&crate::aws::sdk_config().await)
                    })
                    .await;
                Some((client, url))
            }
            Queue::Local(_) => None,
        }
    }

    pub async fn send(&self, message: &Message) -> anyhow::Result<()> {
        let body = message.encode();
        if let Queue::Local(tx) = self {
            return tx
                .send(LocalMessage {
                    body,
                    receive_count: 0,
                })
                .map_err(|_| anyhow::anyhow!("the local worker queue is closed"));
        }
        let (client, url) = self.sqs().await.expect("every other queue is SQS");
        // Bounded for sends only: the same client also long-polls (the local runner's
        // receive loop waits up to 20 s), which this timeout would cut short.
        client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Config::builder()
                    .retry_config(RetryConfig::standard().with_max_attempts(SQS_SEND_ATTEMPTS))
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(SQS_CONNECT_TIMEOUT)
                            .operation_timeout(SQS_SEND_TIMEOUT)
                            .build(),
                    ),
            )
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "sending to SQS: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_with_its_version() {
        let id = Uuid::now_v7();
        let message = Message::SendEmail { email_id: id };
        let body = message.encode();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["kind"], "send_email");
        assert_eq!(json["email_id"], id.to_string());
        assert_eq!(Message::decode(&body).unwrap(), message);
    }

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        let id = Uuid::now_v7();
        let cases = [
            ("".to_owned(), "malformed"),
            ("{\"v\":1,".to_owned(), "malformed"),
            ("[1]".to_owned(), "malformed"),
            (
                format!(r#"{{"kind":"send_email","email_id":"{id}"}}"#),
                "malformed",
            ),
            (
                format!(r#"{{"v":"1","kind":"send_email","email_id":"{id}"}}"#),
                "malformed",
            ),
            (
                format!(r#"{{"v":2,"kind":"send_email","email_id":"{id}"}}"#),
                "version 2",
            ),
            (
                format!(r#"{{"v":1,"kind":"launch_rockets","email_id":"{id}"}}"#),
                "unknown message kind",
            ),
            (
                r#"{"v":1,"kind":"send_email","email_id":"not-a-uuid"}"#.to_owned(),
                "malformed",
            ),
            (r#"{"v":1,"kind":"send_email"}"#.to_owned(), "malformed"),
            (r#"{"v":1,"email_id":"x"}"#.to_owned(), "malformed"),
            (
                format!(r#"{{"v":1,"kind":"send_email","email_id":"{id}","x":1}}"#),
                "malformed",
            ),
        ];
        for (body, expected) in cases {
            let err = Message::decode(&body).expect_err(&body);
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
    }
}
