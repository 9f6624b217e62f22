//! The X-Ray exporter with the real subscriber, a real SDK call and real statements, sending to
//! the daemon's stand-in: what a sampled invocation sends, and that an unsampled one and the
//! log see none of it. (functions/web's `runtime_api` tests do the same through the binary.)

use std::net::UdpSocket;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use runtime_api_emulator::XrayDaemon;
use serde_json::Value;
use shared::config::{LogConfig, LogFormat};
use shared::metrics::capture::Buffer;
use shared::store::users;
use shared::testing::{TestDb, backend};
use shared::xray::INVOKE_SPAN;
use tracing::Instrument as _;

const ROOT: &str = "1-6925e4a1-5f3c2b1a0e9d8c7b6a594837";
const PARENT: &str = "53995c3f42cd8ad8";

/// An SQS client whose endpoint refuses connections: the SDK's operation span opens and closes
/// as for any call; no retries, so it fails at once.
fn unreachable_sqs() -> aws_sdk_sqs::Client {
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(format!("http://{closed}"))
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// One invocation with `header` as its trace id: an SQS call, then a statement.
async fn invocation(test: &TestDb, header: &str) {
    let span = tracing::info_span!(INVOKE_SPAN, requestId = "req-1", xrayTraceId = header);
    async {
        let sent = unreachable_sqs()
            .send_message()
            .queue_url("http://127.0.0.1/000000000000/q")
            .message_body("{}")
            .send()
            .await;
        assert!(sent.is_err());
        let mut conn = test.db.acquire().await.unwrap();
        users::count_users(&mut conn).await.unwrap();
    }
    .instrument(span)
    .await;
}

/// The daemon's stand-in, and the functions' subscriber sending to it, its log at `filter`
/// kept in the buffer, for this thread until the guard is dropped.
fn traced(filter: &str) -> (XrayDaemon, Buffer, tracing::subscriber::DefaultGuard) {
    let daemon = XrayDaemon::start();
    let log = Buffer::default();
    let config = LogConfig {
        filter: filter.into(),
        format: LogFormat::Json,
        access_log: false,
        xray_daemon: Some(daemon.address().parse().unwrap()),
    };
    let subscriber = shared::telemetry::subscriber(&config, log.clone(), false);
    let guard = tracing::subscriber::set_default(subscriber);
    (daemon, log, guard)
}

#[tokio::test]
async fn a_sampled_invocation_sends_its_sdk_calls_and_statements_and_the_log_sees_neither() {
    let test = TestDb::new().await;
    let (daemon, log, _default) = traced("info");

    invocation(&test, &format!("Root={ROOT};Parent={PARENT};Sampled=0")).await;
    invocation(&test, "").await;
    let settle = Duration::from_millis(300);
    assert_eq!(daemon.documents(settle), Vec::<Value>::new(), "not sampled");

    invocation(
        &test,
        &format!("Root={ROOT};Parent={PARENT};Sampled=1;Lineage=1:0:0"),
    )
    .await;
    let documents = daemon.documents(settle);
    for document in &documents {
        assert_eq!(document["type"], "subsegment", "{document}");
        assert_eq!(document["trace_id"], ROOT, "{document}");
        assert_eq!(document["parent_id"], PARENT, "{document}");
        let id = document["id"].as_str().unwrap();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{document}"
        );
        let (start, end) = (
            document["start_time"].as_f64().unwrap(),
            document["end_time"].as_f64().unwrap(),
        );
        assert!(start > 1.7e9 && start <= end, "{document}");
    }
    let sqs = &documents[0];
    assert_eq!(
        (&sqs["name"], &sqs["namespace"], &sqs["aws"]["operation"]),
        (&"SQS".into(), &"aws".into(), &"SendMessage".into()),
        "{documents:?}"
    );
    match backend() {
        // The statement, with its placeholders and the rows it returned.
        "postgres" => {
            assert_eq!(documents.len(), 2, "{documents:?}");
            let sql = &documents[1];
            assert_eq!(sql["namespace"], "remote", "{sql}");
            let query = sql["sql"]["sanitized_query"].as_str().unwrap();
            assert!(
                query.contains("count(*)") && query.contains("users"),
                "{sql}"
            );
            assert_eq!(sql["name"], "PostgreSQL", "{sql}");
            assert_eq!(query, "select count(*) from users", "{sql}");
            assert_eq!(sql["metadata"]["sqlx"]["rows_returned"], 1, "{sql}");
        }
        // SQLite runs statements on a thread outside the invocation's spans (and is not in
        // the Lambda builds): nothing to send.
        _ => assert_eq!(documents.len(), 1, "{documents:?}"),
    }

    // The log keeps its own filter: no SDK span, no statement at info.
    let text = log.text();
    assert!(
        !text.contains("SendMessage") && !text.contains("count(*)"),
        "{text}"
    );
}

#[tokio::test]
async fn with_the_log_at_debug_the_same_subsegments_are_sent_and_the_log_has_its_lines() {
    let test = TestDb::new().await;
    let (daemon, log, _default) = traced("debug");
    let settle = Duration::from_millis(300);

    invocation(&test, &format!("Root={ROOT};Parent={PARENT};Sampled=0")).await;
    assert_eq!(daemon.documents(settle), Vec::<Value>::new(), "not sampled");
    invocation(&test, &format!("Root={ROOT};Parent={PARENT};Sampled=1")).await;
    let expected = if backend() == "postgres" { 2 } else { 1 };
    assert_eq!(daemon.documents(settle).len(), expected);

    // The SDK's span is in the log's lines (its own debug events), as without the exporter.
    let text = log.text();
    assert!(text.contains("SQS.SendMessage"), "{text}");
}
