//! The deploy hook: CloudFormation calls this function for the `Custom::DatabaseMigrations`
//! resource of template.yaml on every deploy that changes it (new migrations are a new
//! function version). Create and Update apply migrations and ensure the superuser
//! ([`shared::services::deploy`]); Delete leaves the database alone. Every request gets an
//! answer on its pre-signed `ResponseURL`, FAILED with the reason when anything went wrong,
//! so a broken deploy stops with that reason in the stack events instead of hanging.
//! An event with no `ResponseURL` to answer on is the one thing it cannot answer: that fails
//! the invocation as an `InvalidEvent`, and a failure to deliver the answer as a
//! `HandlerError` (Lambda then retries the invocation).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest as Request;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_init::failure::{self, Diagnostic};
use serde::Serialize;
use serde_json::Value;
use shared::config::{Config, ConfigError};
use shared::services::accounts::Ensured;
use shared::services::deploy;

/// The physical id of the one resource this function manages.
pub const PHYSICAL_RESOURCE_ID: &str = "database-migrations";

/// CloudFormation keeps at most 4 KB of a response; the reason is cut well below that.
const MAX_REASON_CHARS: usize = 1000;

/// The answer CloudFormation expects on the request's `ResponseURL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: Status,
    /// Shown in the stack events; always set, so a success says what it did.
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

/// A request and the answer it gets; [`send`] delivers the answer.
#[derive(Debug)]
pub struct Handled {
    pub response_url: String,
    pub response: Response,
}

/// Reads the event and does what it asks. `load_config` (which reads the secrets: a future,
/// polled only when needed) runs only for Create and Update, so
/// a bad setting fails the deploy with its message (as a FAILED answer) and never blocks a
/// stack deletion. An event that is not a custom resource request, or has no `ResponseURL`
/// to answer on, is an `InvalidEvent` for the runtime to report.
pub async fn handle(
    event: Value,
    load_config: impl Future<Output = Result<Config, ConfigError>>,
) -> Result<Handled, Diagnostic> {
    let ids = Ids::from_event(&event).ok_or_else(|| {
        failure::invalid_event(
            "not a CloudFormation custom resource request (no ResponseURL, StackId, RequestId and LogicalResourceId); the function only runs from the stack's Custom::DatabaseMigrations resource",
        )
    })?;
    let request = match serde_json::from_value::<Request>(event) {
        Ok(request) => request,
        // Answered FAILED: it says where, and the stack must not wait for us.
        Err(e) => {
            let reason = format!("not a CloudFormation custom resource request: {e}");
            return Ok(ids.answer(Status::Failed, cut(&reason), BTreeMap::new()));
        }
    };
    let work = match request {
        Request::Create(_) => Some("Create"),
        Request::Update(_) => Some("Update"),
        Request::Delete(_) => None,
        _ => {
            return Err(failure::invalid_event(
                "unknown CloudFormation request type",
            ));
        }
    };
    let (status, reason, data) = match work {
        None => (
            Status::Success,
            "Delete leaves the database and its data as they are".to_owned(),
            BTreeMap::new(),
        ),
        Some(kind) => match prepare(load_config).await {
            Ok(prepared) => (Status::Success, describe(&prepared), data_of(&prepared)),
            Err(e) => {
                tracing::error!(request = kind, error = %format!("{e:#}"), "deploy hook failed");
                (Status::Failed, cut(&format!("{e:#}")), BTreeMap::new())
            }
        },
    };
    tracing::info!(status = ?status, reason = %reason, "deploy hook answered");
    Ok(ids.answer(status, reason, data))
}

async fn prepare(
    load_config: impl Future<Output = Result<Config, ConfigError>>,
) -> anyhow::Result<deploy::Prepared> {
    let config = load_config.await?;
    deploy::prepare_database(&config).await
}

fn describe(prepared: &deploy::Prepared) -> String {
    let migrations = match prepared.applied.as_slice() {
        [] => "Database schema already up to date".to_owned(),
        versions => format!(
            "Applied migration{} {}",
            if versions.len() == 1 { "" } else { "s" },
            join(versions)
        ),
    };
    format!(
        "{migrations}; superuser {}",
        superuser_word(prepared.superuser)
    )
}

fn data_of(prepared: &deploy::Prepared) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("MigrationsApplied".to_owned(), join(&prepared.applied)),
        (
            "Superuser".to_owned(),
            superuser_word(prepared.superuser).to_owned(),
        ),
    ])
}

fn join(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn superuser_word(ensured: Option<Ensured>) -> &'static str {
    match ensured {
        None => "not configured (SUPERUSER_EMAIL is empty)",
        Some(Ensured::Created) => "created",
        Some(Ensured::AlreadyExisted) => "already existed",
        Some(Ensured::Promoted) => "promoted from an existing account",
    }
}

fn cut(reason: &str) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((at, _)) => format!("{}...", &reason[..at]),
        None => reason.to_owned(),
    }
}

/// The fields every answer echoes from its request.
struct Ids {
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    physical_resource_id: String,
}

impl Ids {
    /// The fields every request carries; a Create has no physical id yet, so it gets ours.
    fn from_event(event: &Value) -> Option<Self> {
        let field = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            response_url: field("ResponseURL")?,
            stack_id: field("StackId")?,
            request_id: field("RequestId")?,
            logical_resource_id: field("LogicalResourceId")?,
            physical_resource_id: field("PhysicalResourceId")
                .unwrap_or_else(|| PHYSICAL_RESOURCE_ID.to_owned()),
        })
    }

    fn answer(self, status: Status, reason: String, data: BTreeMap<String, String>) -> Handled {
        Handled {
            response_url: self.response_url,
            response: Response {
                status,
                reason,
                physical_resource_id: self.physical_resource_id,
                stack_id: self.stack_id,
                request_id: self.request_id,
                logical_resource_id: self.logical_resource_id,
                data,
            },
        }
    }
}

/// PUTs the answer to the pre-signed URL (S3 in AWS), with a few retries: CloudFormation
/// waits for it and Lambda retries the whole invocation if this fails.
pub async fn send(handled: &Handled) -> anyhow::Result<()> {
    let body = Bytes::from(serde_json::to_vec(&handled.response)?);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("loading the system's CA certificates")?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let mut last_error = None;
    for attempt in 1..=3u64 {
        // No Content-Type: the URL is signed without one.
        let request = http::Request::put(&handled.response_url)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body.clone()))
            .context("the ResponseURL is not a valid URL")?;
        match tokio::time::timeout(Duration::from_secs(10), client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return Ok(()),
            Ok(Ok(response)) => {
                last_error = Some(anyhow::anyhow!(
                    "the ResponseURL answered {}",
                    response.status()
                ))
            }
            Ok(Err(e)) => last_error = Some(anyhow::Error::new(e).context("sending the response")),
            Err(_) => last_error = Some(anyhow::anyhow!("the ResponseURL did not answer in 10 s")),
        }
        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
    }
    Err(last_error.expect("at least one attempt"))
}
