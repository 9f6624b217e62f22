//! Each instrumented event writes its metric line, valid EMF, where it happens: the use case,
//! the outbox's send path, the job runner, the dead-letter redrive.

use serde_json::Value;
use shared::config::Config;
use shared::jobs;
use shared::mail::{FailureKind, FakeMailer, Mailer};
use shared::metrics::Metric;
use shared::metrics::capture::{metric_lines, with_metric};
use shared::queue::Queue;
use shared::services::accounts::{self, Mailing};
use shared::services::outbox;
use shared::store::emails;
use shared::testing::{TestDb, local_config, user};

struct World {
    test: TestDb,
    config: Config,
    queue: Queue,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(dir.path(), &[]);
        let (queue, _) = Queue::local();
        Self {
            test: TestDb::new().await,
            config,
            queue,
            _dir: dir,
        }
    }

    fn mailing(&self) -> Mailing<'_> {
        Mailing {
            config: &self.config,
            queue: &self.queue,
        }
    }

    async fn signup(&self, email: &str) {
        accounts::signup(
            &self.test.db,
            &self.mailing(),
            email,
            "correct horse battery",
        )
        .await
        .unwrap();
    }

    /// The newest outbox row.
    async fn last_email(&self) -> emails::EmailRow {
        let mut conn = self.test.db.acquire().await.unwrap();
        emails::list_recent_emails(&mut conn, 1)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }
}

/// The one line holding `metric`, and its value.
fn one(lines: &[Value], metric: Metric) -> (Value, f64) {
    let found = with_metric(lines, metric);
    assert_eq!(found.len(), 1, "{metric:?} in {lines:#?}");
    let line = found[0].clone();
    let value = line[metric.name()].as_f64().unwrap();
    (line, value)
}

#[tokio::test]
async fn a_sign_up_counts_once_and_a_sign_up_for_a_registered_address_not_at_all() {
    let w = World::new().await;
    let ((), lines) = metric_lines(w.signup("ada@example.com")).await;
    assert_eq!(one(&lines, Metric::SignUps).1, 1.0);
    let ((), again) = metric_lines(w.signup("ada@example.com")).await;
    assert!(with_metric(&again, Metric::SignUps).is_empty(), "{again:?}");
}

#[tokio::test]
async fn verifying_an_email_address_counts_a_verification() {
    let w = World::new().await;
    w.signup("ada@example.com").await;
    let body = w.last_email().await.body_text;
    let token = body
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (verified, lines) = metric_lines(accounts::verify_email(&w.test.db, &token)).await;
    verified.unwrap();
    assert_eq!(one(&lines, Metric::Verifications).1, 1.0);
}

#[tokio::test]
async fn a_login_with_a_wrong_password_counts_as_refused() {
    let w = World::new().await;
    w.signup("ada@example.com").await;
    let login = shared::services::sessions::log_in(
        &w.test.db,
        "ada@example.com",
        "not the password",
        "203.0.113.9",
    );
    let (refused, lines) = metric_lines(login).await;
    assert!(refused.is_err());
    assert_eq!(one(&lines, Metric::LoginsRefused).1, 1.0);
}

// example-app:begin
mod bookings {
    use chrono::{TimeDelta, Utc};
    use shared::domain::classes::ClassDraft;
    use shared::pagination::PageRequest;
    use shared::services::classes;

    use super::*;

    #[tokio::test]
    async fn a_booking_is_counted() {
        let w = World::new().await;
        let staff = user(&w.test.db, "staff@example.com", true, true).await;
        let ada = user(&w.test.db, "ada@example.com", true, false).await;
        let draft = ClassDraft {
            title: Some("Yoga".into()),
            location: Some("Studio 1".into()),
            starts_at: Some((Utc::now() + TimeDelta::hours(3)).to_rfc3339()),
            duration_minutes: Some(60),
            capacity: Some(5),
            recurrence: Some("none".into()),
            ..Default::default()
        };
        let class = classes::create_class(&w.test.db, w.config.time_zone, &staff, &draft)
            .await
            .unwrap();
        let occurrence = classes::list_occurrences(&w.test.db, class.id, PageRequest::default())
            .await
            .unwrap()
            .results[0]
            .id;
        let (booked, lines) = metric_lines(classes::book(&w.test.db, &ada, occurrence)).await;
        booked.unwrap();
        assert_eq!(one(&lines, Metric::Bookings).1, 1.0);
    }
}
// example-app:end

#[tokio::test]
async fn emails_sent_retried_and_failed_are_counted_by_kind() {
    let w = World::new().await;
    let fake = FakeMailer::new();
    let mailer = Mailer::Fake(fake.clone());
    // Each case: a new account's verification email, the provider's answer, the metric.
    let cases = [
        (None, Metric::EmailsSent),
        (Some(FailureKind::Transient), Metric::EmailsRetried),
        (Some(FailureKind::Permanent), Metric::EmailsFailed),
    ];
    for (i, (failure, metric)) in cases.into_iter().enumerate() {
        w.signup(&format!("user{i}@example.com")).await;
        let email = w.last_email().await;
        if let Some(kind) = failure {
            fake.fail_next(1, kind);
        }
        let (_, lines) = metric_lines(outbox::deliver(&w.test.db, &mailer, email.id)).await;
        let (line, value) = one(&lines, metric);
        assert_eq!(value, 1.0, "{metric:?}");
        assert_eq!(line["Kind"], "verify_email", "{metric:?}: {line}");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Kind"]]),
            "{metric:?}"
        );
    }
}

#[tokio::test]
async fn a_job_run_counts_its_run_failure_and_duration_and_carries_its_tick() {
    let w = World::new().await;
    let deps = jobs::Deps {
        db: &w.test.db,
        config: &w.config,
        queue: &w.queue,
    };
    let tick = "2026-12-01T10:15:00Z".parse().unwrap();
    let (ran, lines) = metric_lines(jobs::run(&deps, "purge-expired", tick)).await;
    ran.unwrap();
    let (line, runs) = one(&lines, Metric::JobRuns);
    assert_eq!(runs, 1.0);
    assert_eq!(line["JobFailures"], 0.0);
    assert!(line["JobDuration"].as_f64().unwrap() >= 0.0);
    assert_eq!(line["Job"], "purge-expired");
    assert_eq!(line["tick"], "2026-12-01T10:15:00Z", "{line}");
    // The tick already done: no run, no metric.
    let (_, again) = metric_lines(jobs::run(&deps, "purge-expired", tick)).await;
    assert!(with_metric(&again, Metric::JobRuns).is_empty(), "{again:?}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn messages_redriven_from_the_dead_letter_queue_are_counted() {
    use shared::services::dead_letters::{self, Located};
    let (client, worker_url, dlq_url) = shared::testing::queue_with_dead_letters().await;
    for _ in 0..2 {
        client
            .send_message()
            .queue_url(&dlq_url)
            .message_body(
                r#"{"v":1,"kind":"send_email","email_id":"0190d7a8-0000-7000-8000-000000000000"}"#,
            )
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = local_config(dir.path(), &[("WORKER_QUEUE_URL", &worker_url)]);
    let (queue, _) = Queue::from_config(&config);
    let Located::Found(dlq) = dead_letters::locate(&queue).await.unwrap() else {
        panic!("the dead-letter queue was not found");
    };
    let db = TestDb::new().await;
    let mut root = user(&db.db, "root@example.com", true, true).await;
    root.is_superuser = true;
    let (moved, lines) = metric_lines(dead_letters::redrive_all(&db.db, &dlq, &root)).await;
    assert_eq!(moved.unwrap().moved, 2);
    assert_eq!(one(&lines, Metric::DeadLettersRedriven).1, 2.0);
}
