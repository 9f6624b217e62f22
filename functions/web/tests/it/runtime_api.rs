//! The compiled `web` binary under the Runtime API emulator, on every committed HTTP event
//! source: what Lambda would run, without AWS or Docker.

use std::time::Duration;

// example-app:begin
use chrono::{TimeDelta, Utc};
// example-app:end
use runtime_api_emulator::{Emulator, Function, Outcome, XrayDaemon};
use serde_json::Value;
// example-app:begin
use shared::domain::classes::ClassDraft;
use shared::services::classes;
use shared::testing::user;
// example-app:end
use shared::testing::{TestDb, lambda_env, new_secret};

/// The hosts of the committed events: API Gateway, the load balancer, the function URL.
const HOSTS: &str = "abc123def4.execute-api.us-east-1.amazonaws.com,\
    app-web-1234567890.us-east-1.elb.amazonaws.com,\
    a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn start(test: &TestDb) -> (Emulator, Function) {
    let emulator = Emulator::start("web").await;
    let env = lambda_env(test.config.url.expose(), &[("ALLOWED_HOSTS", HOSTS)]);
    let function = emulator.spawn(env!("CARGO_BIN_EXE_web"), env);
    (emulator, function)
}

async fn answer(emulator: &Emulator, function: &Function, event: String) -> Value {
    match emulator.invoke(event).await {
        Some(outcome @ Outcome::Response(_)) => outcome.json(),
        other => panic!("{other:?}\n{}", function.output()),
    }
}

/// The committed API Gateway event made a `POST` of `body` (JSON) to `path`.
fn post_json(path: &str, body: &str) -> String {
    let mut event: Value = serde_json::from_str(&fixture("apigw-http-get-healthz.json")).unwrap();
    event["body"] = body.into();
    event["headers"]["content-type"] = "application/json".into();
    event["headers"]["content-length"] = body.len().to_string().into();
    event["requestContext"]["http"]["method"] = "POST".into();
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event.to_string()
}

fn body(response: &Value) -> Value {
    assert_eq!(response["isBase64Encoded"], false, "{response}");
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn every_http_event_source_is_answered_by_the_binary() {
    let test = TestDb::new().await;
    // example-app:begin
    let staff = user(&test.db, "staff@example.com", true, true).await;
    for title in ["Yoga", "Pilates"] {
        let draft = ClassDraft {
            title: Some(title.into()),
            starts_at: Some((Utc::now() + TimeDelta::days(1)).to_rfc3339()),
            duration_minutes: Some(60),
            capacity: Some(10),
            recurrence: Some("none".into()),
            ..Default::default()
        };
        classes::create_class(&test.db, chrono_tz::UTC, &staff, &draft)
            .await
            .unwrap();
    }
    // example-app:end
    let (emulator, function) = start(&test).await;

    // API Gateway HTTP API (payload 2.0).
    let r = answer(&emulator, &function, fixture("apigw-http-get-healthz.json")).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(body(&r)["database"], "ok", "{r}");

    // example-app:begin
    // API Gateway REST API (payload 1.0) on the `prod` stage, page 2 of 2: links keep the stage.
    let r = answer(&emulator, &function, fixture("apigw-rest-get-classes.json")).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    let page = body(&r);
    assert_eq!(page["count"], 2, "{page}");
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["previous"],
        "https://abc123def4.execute-api.us-east-1.amazonaws.com/prod/api/classes?page=1&page_size=1"
    );

    // example-app:end
    // Application Load Balancer: its response carries a status description.
    let r = answer(&emulator, &function, fixture("alb-get-healthz.json")).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(r["statusDescription"], "200 OK", "{r}");
    assert_eq!(body(&r)["database"], "ok");

    // example-app:begin
    // Function URL (payload 2.0 on a lambda-url host).
    let r = answer(
        &emulator,
        &function,
        fixture("function-url-get-classes.json"),
    )
    .await;
    assert_eq!(r["statusCode"], 200, "{r}");
    let page = body(&r);
    assert_eq!(page["page_size"], 5, "{page}");
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert!(
        page["results"][0]["starts_at"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{page}"
    );

    // example-app:end
    // Security headers and the host check work in the binary as in the router tests.
    let forged = fixture("apigw-http-get-healthz.json").replace(
        "\"host\": \"abc123def4.execute-api",
        "\"host\": \"evil.example.com\", \"x-host\": \"abc123def4.execute-api",
    );
    let r = answer(&emulator, &function, forged).await;
    assert_eq!(r["statusCode"], 400, "{r}");
}

#[tokio::test]
async fn malformed_events_fail_alone_and_the_runtime_loop_keeps_serving() {
    let test = TestDb::new().await;
    let (emulator, mut function) = start(&test).await;
    let healthz = fixture("apigw-http-get-healthz.json");
    // Each gets an error naming what is wrong, and the next event is served. JSON that is not
    // an HTTP event is an InvalidEvent; bytes that are not JSON (Lambda's Invoke API refuses
    // them before they reach a function) keep the runtime's own report.
    let not_http = "not an API Gateway, ALB or function URL event: \
        this function expects a JSON payload from Amazon API Gateway";
    let runtime = "failed to deserialize the incoming data";
    let truncated = healthz[..healthz.len() / 2].to_owned();
    let malformed = [
        (truncated, None, runtime),
        (
            r#"{"version": "2.0", "rawPath": 42}"#.to_owned(),
            Some("InvalidEvent"),
            not_http,
        ),
        (
            r#"{"Records": []}"#.to_owned(),
            Some("InvalidEvent"),
            not_http,
        ), // another source's
        ("[]".to_owned(), Some("InvalidEvent"), not_http), // not an object
    ];
    for (event, error_type, starts) in malformed {
        let outcome = emulator
            .invoke(event.clone())
            .await
            .unwrap_or_else(|| panic!("{event}: no answer\n{}", function.output()));
        let message = outcome.error_message();
        assert!(message.starts_with(starts), "{event}: {message}");
        if let Some(error_type) = error_type {
            assert_eq!(outcome.reported_type(), error_type, "{event}");
        }
    }
    // A body over the size limit is refused with 413, not a crash.
    let huge = format!(r#"{{"email": "{}@example.com"}}"#, "x".repeat(5 << 20));
    let r = answer(&emulator, &function, post_json("/api/auth/signup", &huge)).await;
    assert_eq!(r["statusCode"], 413, "{}", r["body"]);

    let r = answer(&emulator, &function, healthz).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(function.exit_code(Duration::from_millis(50)).await, None);
}

#[tokio::test]
async fn a_bad_setting_is_reported_to_init_error_and_the_process_exits() {
    let test = TestDb::new().await;
    let emulator = Emulator::start("web").await;
    let env = lambda_env(test.config.url.expose(), &[("SECRET_KEY", "")]);
    let mut function = emulator.spawn(env!("CARGO_BIN_EXE_web"), env);
    let report = emulator
        .init_error(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no /init/error\n{}", function.output()));
    assert_eq!(
        report.error_type.as_deref(),
        Some(lambda_init::CONFIG_ERROR)
    );
    assert_eq!(report.body["errorType"], lambda_init::CONFIG_ERROR);
    let message = report.body["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("SECRET_KEY must be set"), "{message}");
    assert_eq!(function.exit_code(Duration::from_secs(5)).await, Some(2));
    assert!(function.output().contains("error: SECRET_KEY must be set"));
}

#[tokio::test]
#[ignore = "needs the AWS emulator and PostgreSQL: .ci/run runs it with --ignored"]
async fn as_deployed_the_binary_reads_its_secrets_from_secrets_manager_at_init() {
    let aws = shared::testing::require_aws_emulator();
    let test = TestDb::new().await;
    let database =
        new_secret(&serde_json::json!({"url": test.config.url.expose()}).to_string()).await;
    let key = new_secret("generated-by-cloudformation-0123456789abcdefghijklmnopqrstuvwxyz").await;
    let emulator = Emulator::start("web").await;
    // No secret value in the environment: ARNs only, as template.yaml gives them.
    let env = lambda_env(
        "",
        &[
            ("SECRET_KEY", ""),
            ("DATABASE_SECRET_ARN", &database),
            ("SECRET_KEY_SECRET_ARN", &key),
            ("AWS_ENDPOINT_URL", &aws),
            ("ALLOWED_HOSTS", HOSTS),
        ],
    );
    assert!(
        !env.iter()
            .any(|(k, _)| k == "DATABASE_URL" || k == "SECRET_KEY")
    );
    let function = emulator.spawn(env!("CARGO_BIN_EXE_web"), env);

    let r = answer(&emulator, &function, fixture("apigw-http-get-healthz.json")).await;

    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(body(&r)["database"], "ok", "{r}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator and PostgreSQL: .ci/run runs it with --ignored"]
async fn a_secret_the_binary_cannot_read_is_reported_to_init_error_by_its_variable() {
    let aws = shared::testing::require_aws_emulator();
    let test = TestDb::new().await;
    let emulator = Emulator::start("web").await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:starter/none-AbCdEf";
    let env = lambda_env(
        test.config.url.expose(),
        &[
            ("SECRET_KEY", ""),
            ("SECRET_KEY_SECRET_ARN", missing),
            ("AWS_ENDPOINT_URL", &aws),
        ],
    );
    let mut function = emulator.spawn(env!("CARGO_BIN_EXE_web"), env);
    let report = emulator
        .init_error(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no /init/error\n{}", function.output()));
    assert_eq!(report.body["errorType"], lambda_init::CONFIG_ERROR);
    let message = report.body["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("SECRET_KEY_SECRET_ARN names a secret that could not be read"),
        "{message}"
    );
    assert_eq!(function.exit_code(Duration::from_secs(5)).await, Some(2));
}

#[tokio::test]
#[ignore = "needs the AWS emulator and PostgreSQL: .ci/run runs it with --ignored"]
async fn a_sampled_invocation_sends_x_ray_its_statements_and_its_sqs_call() {
    let aws = shared::testing::require_aws_emulator();
    shared::testing::require_postgres();
    let test = TestDb::new().await;
    let (_, queue, _) = shared::testing::queue_with_dead_letters().await;
    let daemon = XrayDaemon::start();
    let emulator = Emulator::start("web").await;
    let env = lambda_env(
        test.config.url.expose(),
        &[
            ("ALLOWED_HOSTS", HOSTS),
            ("AWS_ENDPOINT_URL", &aws),
            ("WORKER_QUEUE_URL", &queue),
            ("AWS_XRAY_DAEMON_ADDRESS", &daemon.address()),
        ],
    );
    let function = emulator.spawn(env!("CARGO_BIN_EXE_web"), env);
    let settle = Duration::from_millis(300);

    // Not sampled (most invocations): nothing is sent.
    let r = answer(&emulator, &function, fixture("apigw-http-get-healthz.json")).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(daemon.documents(settle), Vec::<Value>::new());

    // A sign-up, sampled: its statements, and the SQS message asking the worker for the email.
    emulator.sample(true);
    let signup = post_json(
        "/api/auth/signup",
        r#"{"email": "traced@example.com", "password": "correct horse battery"}"#,
    );
    let r = answer(&emulator, &function, signup).await;
    assert_eq!(r["statusCode"], 202, "{}", r["body"]);

    let header = emulator.trace_headers().pop().unwrap();
    let part = |name: &str| {
        header
            .split(';')
            .find_map(|p| p.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let (root, parent) = (part("Root="), part("Parent="));
    let documents = daemon.documents(settle);
    for document in &documents {
        assert_eq!(document["type"], "subsegment", "{document}");
        assert_eq!(document["trace_id"], root.as_str(), "{document}");
        assert_eq!(document["parent_id"], parent.as_str(), "{document}");
    }
    let operations: Vec<_> = documents
        .iter()
        .filter(|d| d["namespace"] == "aws")
        .map(|d| format!("{} {}", d["name"], d["aws"]["operation"]))
        .collect();
    assert_eq!(operations, [r#""SQS" "SendMessage""#], "{documents:#?}");
    let statements: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["sql"]["sanitized_query"].as_str())
        .collect();
    assert!(
        statements.iter().any(|s| s.contains("insert into users")),
        "{statements:#?}"
    );
    // The log (info, as deployed) has neither.
    let log = function.output();
    assert!(
        !log.contains("SendMessage") && !log.contains("insert into users"),
        "{log}"
    );
}
