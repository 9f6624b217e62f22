//! The compiled `scheduler` binary under the Runtime API emulator, on the committed
//! EventBridge events.

use std::time::Duration;

use runtime_api_emulator::{Emulator, Outcome};
use shared::testing::{TestDb, lambda_env};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn each_schedule_event_runs_its_job_once_and_a_failure_reaches_error() {
    let test = TestDb::new().await;
    let emulator = Emulator::start("scheduler").await;
    let mut function = emulator.spawn(
        env!("CARGO_BIN_EXE_scheduler"),
        lambda_env(test.config.url.expose(), &[]),
    );

    for (fixture_name, job) in [
        ("scheduler-constant-input.json", "sweep-outbox"),
        ("eventbridge-rule-scheduled.json", "purge-expired"),
        ("eventbridge-scheduler-string-detail.json", "purge-expired"),
    ] {
        let event = fixture(fixture_name);
        let answer = emulator.invoke(event.clone()).await;
        let answer = match answer {
            Some(outcome @ Outcome::Response(_)) => outcome.json(),
            other => panic!("{fixture_name}: {other:?}\n{}", function.output()),
        };
        assert_eq!(answer["job"], job, "{answer}");
        assert_eq!(answer["outcome"], "ran", "{answer}");
        // EventBridge redelivers: the same tick again is a no-op.
        let again = emulator.invoke(event).await.unwrap().json();
        assert_eq!(again["outcome"], "already_done", "{again}");
    }

    // An unknown job is a handler error with a type, and the loop serves on.
    let outcome = emulator
        .invoke(r#"{"job": "send-invoices"}"#)
        .await
        .unwrap();
    let message = outcome.error_message();
    assert!(
        message.contains("unknown job \"send-invoices\""),
        "{message}"
    );
    assert_eq!(outcome.reported_type(), "UnknownJob");
    for (bad, error_type, names) in [
        // Not JSON (Lambda's Invoke API refuses it): the runtime's own report.
        (r#"{"job": "#, None, "EOF while parsing"),
        (
            r#"{"job": 7}"#,
            Some("InvalidEvent"),
            "the event's job must be a name, not 7",
        ),
        (
            r#"{"scheduled_time": "2026-11-28T09:35:00Z"}"#,
            Some("InvalidEvent"),
            "the event names no job",
        ),
        (
            r#"{"job": "sweep-outbox", "time": "noon"}"#,
            Some("InvalidEvent"),
            "is not RFC 3339",
        ),
    ] {
        let outcome = emulator.invoke(bad).await.unwrap();
        let message = outcome.error_message();
        assert!(message.contains(names), "{bad}: {message}");
        if let Some(error_type) = error_type {
            assert_eq!(outcome.reported_type(), error_type, "{bad}");
        }
    }
    let answer = emulator
        .invoke(r#"{"job": "sweep-outbox", "scheduled_time": "2026-11-28T09:35:00Z"}"#)
        .await
        .unwrap()
        .json();
    assert_eq!(answer["outcome"], "ran", "{answer}");
    assert_eq!(function.exit_code(Duration::from_millis(50)).await, None);
}

#[tokio::test]
async fn a_missing_queue_url_is_reported_to_init_error() {
    let test = TestDb::new().await;
    let emulator = Emulator::start("scheduler").await;
    let mut function = emulator.spawn(
        env!("CARGO_BIN_EXE_scheduler"),
        lambda_env(test.config.url.expose(), &[("WORKER_QUEUE_URL", "")]),
    );
    let report = emulator
        .init_error(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no /init/error\n{}", function.output()));
    assert_eq!(report.error_type.as_deref(), Some("Runtime.ConfigError"));
    let message = report.body["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("WORKER_QUEUE_URL must be set in Lambda"),
        "{message}"
    );
    assert_eq!(function.exit_code(Duration::from_secs(5)).await, Some(2));
}
