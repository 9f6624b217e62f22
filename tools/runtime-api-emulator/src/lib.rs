//! Lambda's Runtime API on loopback, for running the real compiled function binaries in tests
//! and benchmarks without AWS or Docker (what `sam local invoke` would need a container for).
//!
//! It speaks the interface a custom runtime (`provided.al2023`) sees, at
//! `AWS_LAMBDA_RUNTIME_API`: `GET /2018-06-01/runtime/invocation/next` hands out the next
//! event with the `Lambda-Runtime-*` headers, `POST .../invocation/{id}/response` and
//! `.../{id}/error` take its result, and `POST .../init/error` takes a failed start-up.
//! Each invocation has an X-Ray trace header, unsampled unless [`Emulator::sample`] says so;
//! [`XrayDaemon`] stands in for the daemon a traced function sends its segments to.
//!
//! ```ignore
//! let emulator = Emulator::start().await;
//! let function = emulator.spawn(env!("CARGO_BIN_EXE_worker"), &[("DATABASE_URL", url)]);
//! let outcome = emulator.invoke(event_json).await?;
//! ```

use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

mod xray;
pub use xray::XrayDaemon;

/// How long a function has per invocation (the `Lambda-Runtime-Deadline-Ms` header).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The ARN the invocations carry.
pub const FUNCTION_ARN_PREFIX: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

/// What an invocation ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body posted to `/response`.
    Response(Bytes),
    /// The `Lambda-Runtime-Function-Error-Type` header and the body posted to `/error`.
    Error {
        error_type: Option<String>,
        body: Value,
    },
}

impl Outcome {
    /// The response as JSON; panics (with the outcome) on an error or a non-JSON body.
    pub fn json(&self) -> Value {
        match self {
            Outcome::Response(body) => serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("the response is not JSON ({e}): {body:?}")),
            Outcome::Error { .. } => panic!("expected a response, the function failed: {self:?}"),
        }
    }

    /// The `errorMessage` of a failure that has an error type as Lambda requires; panics (with
    /// the outcome) on a response, a missing type or a missing message.
    pub fn error_message(&self) -> &str {
        match self {
            Outcome::Error {
                error_type: Some(t),
                body,
            } if !t.is_empty() => body["errorMessage"]
                .as_str()
                .unwrap_or_else(|| panic!("an error without errorMessage: {body}")),
            _ => panic!("expected an error with a type: {self:?}"),
        }
    }

    /// The `errorType` of a failure's body: what Lambda shows for it (lambda_runtime's
    /// `Lambda-Runtime-Function-Error-Type` header is always `unhandled`); panics on a response
    /// or a body without one.
    pub fn reported_type(&self) -> &str {
        match self {
            Outcome::Error { body, .. } => body["errorType"]
                .as_str()
                .unwrap_or_else(|| panic!("an error without errorType: {body}")),
            Outcome::Response(_) => panic!("expected an error: {self:?}"),
        }
    }
}

/// A failure posted to `/init/error`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitError {
    pub error_type: Option<String>,
    pub body: Value,
}

/// When the runtime reached each step, for benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// The first `GET .../next`: init is over.
    pub first_next: Option<Instant>,
}

struct Queued {
    request_id: String,
    event: Bytes,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    function_arn: String,
    queue: Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: SyncMutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_errors: mpsc::UnboundedSender<InitError>,
    timings: SyncMutex<Timings>,
    /// `Sampled=1` in the trace headers handed out.
    sampled: AtomicBool,
    /// Every trace header handed out, in order.
    trace_headers: SyncMutex<Vec<String>>,
}

/// A Runtime API on `127.0.0.1` with a random port, serving one function.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Queued>,
    init_errors: Mutex<mpsc::UnboundedReceiver<InitError>>,
    server: tokio::task::JoinHandle<()>,
    function_name: String,
}

/// A function process started by [`Emulator::spawn`]; killed when dropped.
pub struct Function {
    child: Child,
    output: Arc<SyncMutex<String>>,
    /// When the process was started.
    pub started: Instant,
}

impl Function {
    /// Everything the process wrote to stdout and stderr so far (its logs).
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// Waits for the process to exit, up to `within`; its exit code, or `None` if it is still
    /// running (or was killed by a signal).
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }

    /// The process's id (for reading `/proc/<pid>` in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Emulator {
    /// Starts the API for a function named `function_name`.
    pub async fn start(function_name: &str) -> Self {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (init_tx, init_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: format!("{FUNCTION_ARN_PREFIX}{function_name}"),
            queue: Mutex::new(queue_rx),
            in_flight: SyncMutex::new(HashMap::new()),
            init_errors: init_tx,
            timings: SyncMutex::new(Timings::default()),
            sampled: AtomicBool::new(false),
            trace_headers: SyncMutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API on loopback");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the Runtime API serves");
        });
        Self {
            addr,
            shared,
            queue: queue_tx,
            init_errors: Mutex::new(init_rx),
            server,
            function_name: function_name.to_owned(),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Starts `program` as Lambda would: a clean environment with the variables the Lambda
    /// service sets (function name, memory, log group, region, `AWS_LAMBDA_RUNTIME_API`...)
    /// plus `env`. Its stdout and stderr are collected (see [`Function::output`]).
    pub fn spawn<K, V>(
        &self,
        program: impl AsRef<Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Function
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let name = &self.function_name;
        let mut command = Command::new(program.as_ref());
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", self.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/28/[$LATEST]0123456789abcdef",
            )
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("LAMBDA_TASK_ROOT", "/var/task")
            .env("LAMBDA_RUNTIME_DIR", "/var/runtime")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .env("LANG", "en_US.UTF-8")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.as_ref().display()));
        let output = Arc::new(SyncMutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(BufReader::new(stdout), output.clone());
        collect(BufReader::new(stderr), output.clone());
        Function {
            child,
            output,
            started,
        }
    }

    /// Queues `event` and waits for the function's answer, up to `within`. `None` means no
    /// answer came (the function is not running, hung, or died).
    pub async fn invoke_within(
        &self,
        event: impl Into<Bytes>,
        within: Duration,
    ) -> Option<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                request_id: uuid::Uuid::now_v7().to_string(),
                event: event.into(),
                reply,
            })
            .expect("the Runtime API is running");
        tokio::time::timeout(within, answer).await.ok()?.ok()
    }

    /// [`Emulator::invoke_within`] with the function timeout.
    pub async fn invoke(&self, event: impl Into<Bytes>) -> Option<Outcome> {
        self.invoke_within(event, FUNCTION_TIMEOUT).await
    }

    /// The next failure posted to `/init/error`, waiting up to `within`.
    pub async fn init_error(&self, within: Duration) -> Option<InitError> {
        let mut errors = self.init_errors.lock().await;
        tokio::time::timeout(within, errors.recv()).await.ok()?
    }

    /// Whether the invocations handed out from now on are sampled for X-Ray (`Sampled=1` in
    /// their `Lambda-Runtime-Trace-Id`), as with active tracing when Lambda picks one.
    pub fn sample(&self, sampled: bool) {
        self.shared.sampled.store(sampled, Ordering::Relaxed);
    }

    /// The trace header of every invocation handed out so far, in order.
    pub fn trace_headers(&self) -> Vec<String> {
        self.shared
            .trace_headers
            .lock()
            .expect("trace lock")
            .clone()
    }

    /// When the runtime reached each step.
    pub fn timings(&self) -> Timings {
        *self.shared.timings.lock().expect("timings lock")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn collect<R>(reader: BufReader<R>, into: Arc<SyncMutex<String>>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = reader.lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut output = into.lock().expect("output lock");
            output.push_str(&line);
            output.push('\n');
        }
    });
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared
        .timings
        .lock()
        .expect("timings lock")
        .first_next
        .get_or_insert_with(Instant::now);
    // Like Lambda, the request stays open until there is an event.
    let Some(queued) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    shared
        .in_flight
        .lock()
        .expect("in-flight lock")
        .insert(queued.request_id.clone(), queued.reply);
    let deadline = SystemTime::now() + FUNCTION_TIMEOUT;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", queued.request_id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    // X-Ray's format: the epoch seconds and 96 random bits; the parent is the function's
    // segment, 64 random bits (the tail of a v7 UUID is random; its head is the time).
    let random = |hex_digits: usize| {
        let uuid = uuid::Uuid::now_v7().simple().to_string();
        uuid[uuid.len() - hex_digits..].to_owned()
    };
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled={};Lineage=1:0:0",
        deadline_ms / 1000,
        random(24),
        random(16),
        u8::from(shared.sampled.load(Ordering::Relaxed)),
    );
    shared
        .trace_headers
        .lock()
        .expect("trace lock")
        .push(trace.clone());
    set("lambda-runtime-trace-id", trace);
    (StatusCode::OK, headers, queued.event).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    finish(&shared, &id, Outcome::Response(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = Outcome::Error {
        error_type: error_type(&headers),
        body: serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))),
    };
    finish(&shared, &id, outcome)
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let report = InitError {
        error_type: error_type(&headers),
        body: serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))),
    };
    let _ = shared.init_errors.send(report);
    accepted()
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> Response {
    let reply = shared.in_flight.lock().expect("in-flight lock").remove(id);
    match reply {
        Some(reply) => {
            // The test may have stopped waiting; that is not the runtime's problem.
            let _ = reply.send(outcome);
            accepted()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "errorMessage": format!("Invalid request ID: {id}"),
                "errorType": "InvalidRequestID",
            })),
        )
            .into_response(),
    }
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}
