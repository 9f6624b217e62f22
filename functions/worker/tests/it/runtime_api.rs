//! The compiled `worker` binary under the Runtime API emulator, on the committed SQS event.

use std::time::Duration;

use runtime_api_emulator::{Emulator, Outcome};
use serde_json::{Value, json};
use shared::domain::{EmailAddress, EmailKind};
use shared::mail::Rendered;
use shared::queue::Message;
use shared::services::outbox;
use shared::store::emails;
use shared::testing::{TestDb, lambda_env};

/// A pending outbox row with this subject.
async fn queued_email(test: &TestDb, subject: &str) -> uuid::Uuid {
    let mut tx = test.db.begin().await.unwrap();
    let rendered = Rendered {
        subject: subject.into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    };
    let to = EmailAddress::parse("ada@example.com").unwrap();
    let id = outbox::add(&mut tx, EmailKind::Test, &to, None, &rendered)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn the_sqs_batch_is_delivered_and_only_the_malformed_record_is_reported() {
    let test = TestDb::new().await;
    let id = queued_email(&test, "From the binary").await;
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/sqs-batch-with-malformed-record.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    event["Records"][0]["body"] = Message::SendEmail { email_id: id }.encode().into();

    let emulator = Emulator::start("worker").await;
    // The console mailer: the SES path is proven against the AWS emulator in local/tests/it/aws.rs.
    let mut function = emulator.spawn(
        env!("CARGO_BIN_EXE_worker"),
        lambda_env(test.config.url.expose(), &[("EMAIL_BACKEND", "console")]),
    );
    let outcome = emulator.invoke(serde_json::to_vec(&event).unwrap()).await;
    let answer = match outcome {
        Some(outcome @ Outcome::Response(_)) => outcome.json(),
        other => panic!("{other:?}\n{}", function.output()),
    };
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
    let row = {
        let mut conn = test.db.acquire().await.unwrap();
        emails::find_email(&mut conn, id).await.unwrap().unwrap()
    };
    assert_eq!(row.status, "sent");

    // Redelivered: sent once, nothing reported for it.
    let answer = emulator
        .invoke(serde_json::to_vec(&event).unwrap())
        .await
        .unwrap()
        .json();
    assert_eq!(answer["batchItemFailures"].as_array().unwrap().len(), 1);
    let sent = function
        .output()
        .matches("Subject: From the binary")
        .count();
    assert_eq!(sent, 1, "{}", function.output());

    // An event that is not an SQS batch fails the invocation alone, as an InvalidEvent; bytes
    // that are not JSON (which Lambda's Invoke API refuses) keep the runtime's own report.
    for (bad, error_type, names) in [
        (
            r#"{"Records": "none"}"#,
            Some("InvalidEvent"),
            "not an SQS event: invalid type: string \"none\", expected a sequence",
        ),
        (
            "{\"Records\": [",
            None,
            "failed to deserialize the incoming data",
        ),
        (
            "null",
            Some("InvalidEvent"),
            "not an SQS event: invalid type: null",
        ),
    ] {
        let outcome = emulator.invoke(bad).await.unwrap();
        let message = outcome.error_message();
        assert!(message.starts_with(names), "{bad}: {message}");
        if let Some(error_type) = error_type {
            assert_eq!(outcome.reported_type(), error_type, "{bad}");
        }
    }
    let answer = emulator.invoke(r#"{"Records": []}"#).await.unwrap().json();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(function.exit_code(Duration::from_millis(50)).await, None);
}

#[tokio::test]
async fn a_bad_database_url_is_reported_to_init_error() {
    let emulator = Emulator::start("worker").await;
    let mut function = emulator.spawn(
        env!("CARGO_BIN_EXE_worker"),
        lambda_env("mysql://db.example.com/app", &[]),
    );
    let report = emulator
        .init_error(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no /init/error\n{}", function.output()));
    assert_eq!(report.error_type.as_deref(), Some("Runtime.ConfigError"));
    assert!(
        report.body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("DATABASE_URL"),
        "{}",
        report.body
    );
    assert_eq!(function.exit_code(Duration::from_secs(5)).await, Some(2));
}

#[tokio::test]
async fn the_binary_counts_its_cold_start_and_its_metric_lines_carry_the_lambda_request_id() {
    let test = TestDb::new().await;
    let id = queued_email(&test, "Counted").await;
    let event = worker::event_for([(
        "msg-1".to_owned(),
        Message::SendEmail { email_id: id }.encode(),
        1,
    )]);
    let emulator = Emulator::start("worker").await;
    let function = emulator.spawn(
        env!("CARGO_BIN_EXE_worker"),
        lambda_env(test.config.url.expose(), &[("EMAIL_BACKEND", "console")]),
    );
    let outcome = emulator.invoke(serde_json::to_vec(&event).unwrap()).await;
    assert!(
        matches!(outcome, Some(Outcome::Response(_))),
        "{outcome:?}\n{}",
        function.output()
    );
    let output = function.output();
    let metrics: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("_aws").is_some())
        .collect();
    for line in &metrics {
        assert_eq!(shared::metrics::check_emf(line), Ok(()), "{line}");
    }
    let cold: Vec<&Value> = metrics.iter().filter(|l| l["ColdStarts"] == 1.0).collect();
    assert_eq!(cold.len(), 1, "{output}");
    assert_eq!(cold[0]["Function"], "worker");
    let sent = metrics
        .iter()
        .find(|l| l.get("EmailsSent").is_some())
        .unwrap_or_else(|| panic!("no EmailsSent line in {output}"));
    // The runtime's span: Lambda's request id, as the emulator assigned it.
    assert!(
        sent["requestId"].as_str().is_some_and(|id| !id.is_empty()),
        "{sent}"
    );
    assert_eq!(sent["messageId"], "msg-1");
}
