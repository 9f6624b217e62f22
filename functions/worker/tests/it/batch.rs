//! The worker tier end to end, in process, on the database under test (SQLite, or PostgreSQL
//! with `TEST_DATABASE_URL`): outbox row -> queue message -> `handle_batch` -> mailer.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use shared::clock;
use shared::db::Db;
use shared::domain::{EmailAddress, EmailKind};
use shared::mail::{FailureKind, FakeMailer, Mailer, Rendered};
use shared::queue::{LocalMessage, Message, Queue};
use shared::services::outbox;
use shared::store::emails::{self, EmailRow};
use shared::store::users::{self, NewUser};
use shared::testing::{TestDb, backend};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;
use worker::Deps;

struct Harness {
    _test: TestDb,
    db: Db,
    mailer: FakeMailer,
    deps: Deps,
    queue: Queue,
    received: UnboundedReceiver<LocalMessage>,
}

fn rendered(subject: &str) -> Rendered {
    Rendered {
        subject: subject.to_owned(),
        text: format!("{subject}: text"),
        html: format!("<p>{subject}</p>"),
    }
}

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

impl Harness {
    async fn new() -> Self {
        let test = TestDb::new().await;
        let mailer = FakeMailer::new();
        let (queue, received) = Queue::local();
        Self {
            db: test.db.clone(),
            deps: Deps {
                db: test.db.clone(),
                mailer: Mailer::Fake(mailer.clone()),
            },
            _test: test,
            mailer,
            queue,
            received,
        }
    }

    /// What a use case does: the outbox row in a transaction, then the message after commit.
    async fn queue_email(&self, to: &str, subject: &str) -> Uuid {
        let mut tx = self.db.begin().await.unwrap();
        let id = outbox::add(
            &mut tx,
            EmailKind::Test,
            &address(to),
            None,
            &rendered(subject),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        outbox::notify(&self.queue, &[id]).await;
        id
    }

    /// Every message waiting in the queue.
    fn take_messages(&mut self) -> Vec<String> {
        let mut bodies = Vec::new();
        while let Ok(message) = self.received.try_recv() {
            bodies.push(message.body);
        }
        bodies
    }

    async fn deliver(&self, bodies: &[String]) -> SqsBatchResponse {
        let event = worker::event_for(
            bodies
                .iter()
                .enumerate()
                .map(|(i, body)| (format!("msg-{i}"), body.clone(), 1)),
        );
        worker::handle_batch(&self.deps, event).await
    }

    async fn row(&self, id: Uuid) -> EmailRow {
        let mut conn = self.db.acquire().await.unwrap();
        emails::find_email(&mut conn, id).await.unwrap().unwrap()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let mut conn = self.db.acquire().await.unwrap();
        shared::on_conn!(&mut conn, |c| sqlx::query_scalar(sql)
            .fetch_one(&mut *c)
            .await)
        .unwrap()
    }
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_outbox_row_commits_and_rolls_back_with_the_business_rows() {
    let h = Harness::new().await;
    let new_user = |email: &str| NewUser {
        email: address(email),
        password_hash: None,
        is_verified: false,
        is_staff: false,
        is_superuser: false,
    };

    // Rolled back: neither the user nor the email exists.
    let mut tx = h.db.begin().await.unwrap();
    users::insert_user(&mut tx, &new_user("gone@example.com"), clock::now())
        .await
        .unwrap();
    outbox::add(
        &mut tx,
        EmailKind::Test,
        &address("gone@example.com"),
        None,
        &rendered("Welcome"),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        h.count("select count(*) from users").await,
        0,
        "{}",
        backend()
    );
    assert_eq!(h.count("select count(*) from emails").await, 0);

    // Committed: both.
    let mut tx = h.db.begin().await.unwrap();
    let user = users::insert_user(&mut tx, &new_user("kept@example.com"), clock::now())
        .await
        .unwrap();
    let id = outbox::add(
        &mut tx,
        EmailKind::Test,
        &user.email,
        Some(user.id),
        &rendered("Welcome"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let row = h.row(id).await;
    assert_eq!(
        (row.status.as_str(), row.user_id, row.attempts),
        ("pending", Some(user.id), 0)
    );
    assert_eq!(h.count("select count(*) from users").await, 1);
}

#[tokio::test]
async fn a_queued_email_is_sent_once_and_its_row_records_the_provider_id() {
    let mut h = Harness::new().await;
    let id = h.queue_email("ada@example.com", "Hello").await;
    let messages = h.take_messages();
    assert_eq!(messages, [Message::SendEmail { email_id: id }.encode()]);

    let response = h.deliver(&messages).await;
    assert!(response.batch_item_failures.is_empty());
    let row = h.row(id).await;
    assert_eq!(row.status, "sent");
    assert_eq!(row.provider_message_id.as_deref(), Some("fake-1"));
    assert_eq!(row.attempts, 1);
    assert!(row.sent_at.is_some() && row.locked_until.is_none());
    let sent = h.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].subject.as_str()),
        ("ada@example.com", "Hello")
    );
    assert_eq!(sent[0].html.as_deref(), Some("<p>Hello</p>"));
}

#[tokio::test]
async fn a_batch_of_ten_with_three_malformed_records_reports_exactly_those_three() {
    let mut h = Harness::new().await;
    for i in 0..7 {
        h.queue_email(&format!("user{i}@example.com"), &format!("Email {i}"))
            .await;
    }
    let mut bodies = h.take_messages();
    assert_eq!(bodies.len(), 7);
    // Records 7, 8 and 9: not JSON, an unknown kind, a future version.
    bodies.push("{not json".to_owned());
    bodies.push(format!(
        r#"{{"v":1,"kind":"launch_rockets","email_id":"{}"}}"#,
        Uuid::now_v7()
    ));
    bodies.push(format!(
        r#"{{"v":9,"kind":"send_email","email_id":"{}"}}"#,
        Uuid::now_v7()
    ));

    let response = h.deliver(&bodies).await;
    assert_eq!(
        failed_ids(&response),
        ["msg-7", "msg-8", "msg-9"],
        "{}",
        backend()
    );
    assert_eq!(h.mailer.sent().len(), 7);
    assert_eq!(
        h.count("select count(*) from emails where status = 'sent'")
            .await,
        7
    );
    let mut subjects: Vec<String> = h.mailer.sent().into_iter().map(|m| m.subject).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 7, "each of the seven sent once");
}

#[tokio::test]
async fn a_message_delivered_twice_sends_one_email() {
    let mut h = Harness::new().await;
    let id = h.queue_email("ada@example.com", "Once").await;
    let messages = h.take_messages();
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    assert!(
        h.deliver(&messages).await.batch_item_failures.is_empty(),
        "duplicate acknowledged"
    );
    assert_eq!(h.mailer.sent().len(), 1);
    assert_eq!(h.row(id).await.attempts, 1);
}

#[tokio::test]
async fn ten_concurrent_deliveries_of_one_message_send_one_email() {
    let mut h = Harness::new().await;
    // A slow provider keeps the first claim open while the others arrive.
    h.mailer.set_delay(Duration::from_millis(50));
    let id = h.queue_email("ada@example.com", "Once").await;
    let body = h.take_messages().remove(0);

    // Ten records in one batch, and the same ten again from a second concurrent batch.
    let batch: Vec<String> = std::iter::repeat_n(body, 10).collect();
    let (a, b) = tokio::join!(h.deliver(&batch), h.deliver(&batch));
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    assert_eq!(h.mailer.sent().len(), 1, "{}", backend());
    assert_eq!(h.mailer.attempts(), 1);
    let row = h.row(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
}

#[tokio::test]
async fn a_transient_failure_is_reported_for_retry_and_counts_an_attempt() {
    let mut h = Harness::new().await;
    h.mailer.fail_next(2, FailureKind::Transient);
    let id = h.queue_email("ada@example.com", "Retry me").await;
    let messages = h.take_messages();

    for attempt in 1..=2 {
        let response = h.deliver(&messages).await;
        assert_eq!(failed_ids(&response), ["msg-0"], "attempt {attempt}");
        let row = h.row(id).await;
        assert_eq!(row.status, "pending", "back to pending for the retry");
        assert_eq!(row.attempts, attempt);
        assert!(row.last_error.as_deref().unwrap().contains("throttled"));
    }
    // The third delivery (SQS's retry) succeeds: attempts = k + 1.
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    let row = h.row(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 3));
    assert_eq!(h.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_ends_failed_and_is_not_retried() {
    let mut h = Harness::new().await;
    h.mailer.fail_next(1, FailureKind::Permanent);
    let id = h.queue_email("bounce@example.com", "Rejected").await;
    let messages = h.take_messages();

    let response = h.deliver(&messages).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "acknowledged, not retried"
    );
    let row = h.row(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert!(row.last_error.as_deref().unwrap().contains("rejected"));

    // A duplicate of the message does not try again.
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    assert_eq!(h.mailer.attempts(), 1);
}

#[tokio::test]
async fn with_the_queue_down_nothing_is_lost_and_the_sweep_sends_it_once() {
    let mut h = Harness::new().await;
    // The queue is down: the caller still succeeds and the row waits, pending.
    let (down, receiver) = Queue::local();
    drop(receiver);
    let mut tx = h.db.begin().await.unwrap();
    let id = outbox::add(
        &mut tx,
        EmailKind::Test,
        &address("ada@example.com"),
        None,
        &rendered("Later"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(outbox::notify(&down, &[id]).await, 0);
    assert_eq!(h.row(id).await.status, "pending");

    // A sweep that only takes rows older than now leaves a fresh row alone...
    let early = outbox::sweep(&h.db, &h.queue, clock::now() - outbox::STALE_AFTER)
        .await
        .unwrap();
    assert_eq!(early.requeued, 0);
    // ...and once it is stale, the sweep queues it; the worker sends it once.
    let report = outbox::sweep(&h.db, &h.queue, clock::now()).await.unwrap();
    assert_eq!(report.requeued, 1, "{}", backend());
    let messages = h.take_messages();
    assert_eq!(messages, [Message::SendEmail { email_id: id }.encode()]);
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    assert_eq!(h.row(id).await.status, "sent");

    // The swept row is sent: later sweeps do not queue it again.
    let again = outbox::sweep(&h.db, &h.queue, clock::now()).await.unwrap();
    assert_eq!(again.requeued, 0);
    assert_eq!(h.mailer.sent().len(), 1);
}

#[tokio::test]
async fn the_sweep_gives_up_on_a_row_out_of_attempts() {
    let mut h = Harness::new().await;
    h.mailer.fail_next(usize::MAX >> 48, FailureKind::Transient);
    let id = h.queue_email("ada@example.com", "Never").await;
    let messages = h.take_messages();
    for _ in 0..outbox::MAX_ATTEMPTS - 1 {
        assert_eq!(h.deliver(&messages).await.batch_item_failures.len(), 1);
    }
    let row = h.row(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("pending", outbox::MAX_ATTEMPTS - 1)
    );
    // The last allowed attempt fails too: the row is failed for good and acknowledged.
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    let row = h.row(id).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error
            .unwrap()
            .starts_with("gave up after 10 attempts")
    );
    assert_eq!(
        outbox::sweep(&h.db, &h.queue, clock::now())
            .await
            .unwrap()
            .requeued,
        0
    );
}

#[tokio::test]
async fn a_row_left_sending_by_a_dead_worker_is_swept_and_sent() {
    let mut h = Harness::new().await;
    let id = h.queue_email("ada@example.com", "Crash").await;
    h.take_messages();
    // A worker claimed it and died: the claim expired a minute ago.
    let past = clock::now() - chrono::TimeDelta::minutes(10);
    let mut conn = h.db.acquire().await.unwrap();
    emails::claim_email(&mut conn, id, past, past + chrono::TimeDelta::minutes(5))
        .await
        .unwrap()
        .unwrap();
    drop(conn);

    let report = outbox::sweep(&h.db, &h.queue, clock::now()).await.unwrap();
    assert_eq!(report.requeued, 1);
    let messages = h.take_messages();
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    let row = h.row(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));
}

#[tokio::test]
async fn the_database_down_fails_the_records_for_retry() {
    let h = Harness::new().await;
    let down = Deps {
        db: Db::connect_lazy(&shared::config::DatabaseConfig::new(
            shared::config::Secret::new("postgres://nobody@127.0.0.1:1/none"),
            shared::config::DatabaseKind::Postgres,
            1,
        ))
        .unwrap(),
        mailer: h.deps.mailer.clone(),
    };
    let body = Message::SendEmail {
        email_id: Uuid::now_v7(),
    }
    .encode();
    let response =
        worker::handle_batch(&down, worker::event_for([("m".to_owned(), body, 1)])).await;
    assert_eq!(failed_ids(&response), ["m"]);
}

#[tokio::test]
async fn the_committed_sqs_event_decodes_and_fails_only_its_malformed_record() {
    let h = Harness::new().await;
    let mut event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(include_str!(
        "../../../../events/sqs-batch-with-malformed-record.json"
    ))
    .unwrap();
    assert_eq!(event.records.len(), 2);
    // Point the first record at a real outbox row.
    let id = h.queue_email("ada@example.com", "From the event").await;
    event.records[0].body = Some(Message::SendEmail { email_id: id }.encode());

    let response = worker::handle_batch(&h.deps, event).await;
    assert_eq!(
        failed_ids(&response),
        ["2e1424d4-f796-459a-8184-9c92662be6da"]
    );
    assert_eq!(h.row(id).await.status, "sent");
    // The response serialises to what Lambda expects for ReportBatchItemFailures.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
}

/// Moves a row's claim into the past, as if its lease had run out (tests move time with SQL).
async fn expire_claim(db: &Db, id: Uuid) {
    let past = clock::now() - chrono::TimeDelta::minutes(1);
    let mut conn = db.acquire().await.unwrap();
    let moved = shared::execute!(
        &mut conn,
        sqlx::query("update emails set locked_until = $1 where id = $2 and status = 'sending'")
            .bind(past)
            .bind(id)
    )
    .unwrap();
    assert_eq!(moved, 1, "the row is still claimed");
}

#[tokio::test]
async fn a_worker_dying_between_send_and_mark_sent_causes_at_most_one_duplicate() {
    let mut h = Harness::new().await;
    let id = h.queue_email("ada@example.com", "Crash after send").await;
    let messages = h.take_messages();

    // The provider accepts the message, then the worker dies before it records `sent`.
    h.mailer.hang_after_next_sends(1);
    let (db, mailer) = (h.db.clone(), h.deps.mailer.clone());
    let crashed = tokio::spawn(async move { outbox::deliver(&db, &mailer, id).await });
    tokio::time::timeout(Duration::from_secs(30), async {
        while h.mailer.sent().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the send is recorded");
    crashed.abort();
    assert!(crashed.await.unwrap_err().is_cancelled());
    let row = h.row(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sending", 1));

    // SQS redelivers while the claim lease still holds: acknowledged, nothing sent.
    let during = outbox::deliver(&h.db, &h.deps.mailer, id).await.unwrap();
    assert_eq!(during, outbox::Delivery::ClaimedElsewhere, "{}", backend());
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    assert_eq!(h.mailer.sent().len(), 1);
    // The sweep leaves a row whose lease holds alone.
    let early = outbox::sweep(&h.db, &h.queue, clock::now()).await.unwrap();
    assert_eq!(early.requeued, 0);

    // The lease runs out: the sweep queues it and the worker sends it again (the one
    // duplicate at-least-once delivery allows), and records it.
    expire_claim(&h.db, id).await;
    let report = outbox::sweep(&h.db, &h.queue, clock::now()).await.unwrap();
    assert_eq!(report.requeued, 1);
    let swept = h.take_messages();
    assert!(h.deliver(&swept).await.batch_item_failures.is_empty());
    let row = h.row(id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));
    assert_eq!(h.mailer.sent().len(), 2, "exactly one duplicate");

    // Later redeliveries, of either message, send nothing.
    assert!(h.deliver(&messages).await.batch_item_failures.is_empty());
    assert!(h.deliver(&swept).await.batch_item_failures.is_empty());
    assert_eq!(
        outbox::deliver(&h.db, &h.deps.mailer, id).await.unwrap(),
        outbox::Delivery::AlreadySent
    );
    assert_eq!(
        outbox::sweep(&h.db, &h.queue, clock::now())
            .await
            .unwrap()
            .requeued,
        0
    );
    assert_eq!(h.mailer.sent().len(), 2);
}

#[tokio::test]
async fn a_sent_emails_lines_carry_the_sqs_message_id_and_the_email_id() {
    let mut h = Harness::new().await;
    let id = h.queue_email("ada@example.com", "Welcome").await;
    let bodies = h.take_messages();
    let (response, lines) = shared::metrics::capture::json_lines(h.deliver(&bodies)).await;
    assert!(failed_ids(&response).is_empty());
    let sent_log = lines
        .iter()
        .find(|l| l["message"] == "email sent")
        .unwrap_or_else(|| panic!("no `email sent` line in {lines:#?}"));
    let spans = &sent_log["spans"];
    assert_eq!(spans[0]["messageId"], "msg-0", "{sent_log}");
    assert_eq!(spans[1]["emailId"], id.to_string(), "{sent_log}");
    let metric = lines
        .iter()
        .find(|l| l.get("EmailsSent").is_some())
        .unwrap_or_else(|| panic!("no EmailsSent line in {lines:#?}"));
    assert_eq!(shared::metrics::check_emf(metric), Ok(()));
    assert_eq!(metric["messageId"], "msg-0");
    assert_eq!(metric["emailId"], id.to_string());
    assert_eq!(metric["Kind"], "test");
}
