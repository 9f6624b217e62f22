//! The scheduler on the committed event fixtures (what EventBridge and EventBridge Scheduler
//! deliver), on the database under test.

use serde_json::{Value, json};
use shared::queue::Queue;
use shared::testing::{TestDb, local_config};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn deps() -> (scheduler::Deps, TestDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let test = TestDb::new().await;
    let (queue, _) = Queue::local();
    let deps = scheduler::Deps {
        config: local_config(dir.path(), &[]),
        db: test.db.clone(),
        queue,
    };
    (deps, test, dir)
}

#[test]
fn all_three_event_shapes_name_their_job_and_tick() {
    for (file, job, time) in [
        (
            "scheduler-constant-input.json",
            "sweep-outbox",
            "2026-11-28T09:30:00Z",
        ),
        (
            "eventbridge-rule-scheduled.json",
            "purge-expired",
            "2026-11-28T09:30:00Z",
        ),
        (
            "eventbridge-scheduler-string-detail.json",
            "purge-expired",
            "2026-11-28T10:00:00Z",
        ),
    ] {
        let trigger = scheduler::parse_event(&fixture(file)).unwrap();
        assert_eq!(trigger.job, job, "{file}");
        assert_eq!(trigger.scheduled_at, Some(time.parse().unwrap()), "{file}");
    }
    let bare = scheduler::parse_event(&json!({"job": "sweep-outbox"})).unwrap();
    assert_eq!(bare.scheduled_at, None);
}

#[test]
fn an_event_without_a_usable_job_is_refused_with_the_reason() {
    for (event, needle) in [
        (json!({}), "names no job"),
        (json!({"detail": {}}), "names no job"),
        (json!({"job": 7}), "must be a name"),
        (json!({"job": "  "}), "must be a name"),
        (json!({"detail": "{not json"}), "not JSON"),
        (
            json!({"job": "sweep-outbox", "time": "yesterday"}),
            "not RFC 3339",
        ),
        (Value::Null, "names no job"),
    ] {
        let err = scheduler::parse_event(&event).unwrap_err();
        assert!(err.contains(needle), "{event}: {err}");
    }
}

#[tokio::test]
async fn each_fixture_runs_its_job_once_per_tick() {
    let (deps, _test, _dir) = deps().await;
    for file in [
        "scheduler-constant-input.json",
        "eventbridge-rule-scheduled.json",
        "eventbridge-scheduler-string-detail.json",
    ] {
        let answer = scheduler::handle_event(&deps, fixture(file)).await.unwrap();
        assert_eq!(answer["outcome"], "ran", "{file}: {answer}");
        let again = scheduler::handle_event(&deps, fixture(file)).await.unwrap();
        assert_eq!(again["outcome"], "already_done", "{file}: {again}");
    }
}

#[tokio::test]
async fn an_unknown_or_missing_job_fails_the_invocation() {
    let (deps, _test, _dir) = deps().await;
    let err = scheduler::handle_event(&deps, json!({"job": "make-coffee"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, scheduler::UNKNOWN_JOB);
    assert!(
        err.error_message.contains("unknown job \"make-coffee\""),
        "{err:?}"
    );
    let missing = scheduler::handle_event(&deps, json!({"detail-type": "Scheduled Event"}))
        .await
        .unwrap_err();
    assert_eq!(missing.error_type, "InvalidEvent", "{missing:?}");
}
