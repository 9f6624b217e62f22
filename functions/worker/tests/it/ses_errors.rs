//! `SesMailer` against a stub speaking SES v2's `SendEmail` wire format: throttling and 5xx are
//! transient and retried by SQS, one SES call per worker attempt (so `attempts` = k + 1 after k
//! failures); a rejection is permanent and never retried.

use crate::common;

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use common::{Reply, Stub, sdk_config};
use shared::domain::{EmailAddress, EmailKind};
use shared::mail::{FailureKind, Mailer, OutgoingEmail, Rendered, SesMailer};
use shared::queue::Message;
use shared::services::outbox;
use shared::store::emails::{self, EmailRow};
use shared::testing::{TestDb, backend};
use uuid::Uuid;
use worker::Deps;

const SEND_EMAIL: &str = "POST /v2/email/outbound-emails HTTP/1.1";

fn mailer(stub: &Stub) -> SesMailer {
    SesMailer::new(&sdk_config(&stub.endpoint), "noreply@example.com")
}

fn email() -> OutgoingEmail {
    OutgoingEmail {
        to: "ada@example.com".into(),
        subject: "Hello".into(),
        text: "Hello, Ada".into(),
        html: None,
    }
}

#[tokio::test]
async fn each_ses_answer_is_classified_after_exactly_one_call() {
    let cases = [
        (
            Reply::error(429, "TooManyRequestsException"),
            FailureKind::Transient,
        ),
        (Reply::error(500, "InternalFailure"), FailureKind::Transient),
        (
            Reply::error(503, "ServiceUnavailable"),
            FailureKind::Transient,
        ),
        (Reply::error(400, "MessageRejected"), FailureKind::Permanent),
        (
            Reply::error(400, "BadRequestException"),
            FailureKind::Permanent,
        ),
    ];
    for (reply, expected) in cases {
        let what = format!("{} {:?}", reply.status, reply.error_type);
        let stub = Stub::answering(vec![reply]);
        let error = tokio::time::timeout(Duration::from_secs(60), mailer(&stub).send(&email()))
            .await
            .expect("no hang")
            .expect_err(&what);
        assert_eq!(error.kind, expected, "{what}: {error}");
        // The SDK did not retry on its own: SQS redelivery is the retry.
        let requests = stub.requests();
        assert_eq!(requests.len(), 1, "{what}: one call per send");
        assert_eq!(requests[0].line, SEND_EMAIL);
    }

    let stub = Stub::answering(vec![Reply::sent("stub-message-1")]);
    let sent = mailer(&stub).send(&email()).await.unwrap();
    assert_eq!(sent.provider_message_id, "stub-message-1");
    let body: serde_json::Value = serde_json::from_str(&stub.requests()[0].body).unwrap();
    assert_eq!(body["FromEmailAddress"], "noreply@example.com");
    assert_eq!(body["Destination"]["ToAddresses"][0], "ada@example.com");
    assert_eq!(body["Content"]["Simple"]["Subject"]["Data"], "Hello");
}

#[tokio::test]
async fn a_silent_ses_fails_the_send_as_transient_instead_of_holding_the_worker() {
    let stub = Stub::silent();
    let error = tokio::time::timeout(
        shared::mail::SES_SEND_TIMEOUT * 6,
        mailer(&stub).send(&email()),
    )
    .await
    .expect("the send gives up by itself")
    .expect_err("no answer is no success");
    assert_eq!(error.kind, FailureKind::Transient, "{error}");
    assert_eq!(stub.requests().len(), 1);
}

/// An outbox row and the message naming it, on a fresh database.
struct Outbox {
    test: TestDb,
    id: Uuid,
    body: String,
}

impl Outbox {
    async fn new() -> Self {
        let test = TestDb::new().await;
        let rendered = Rendered {
            subject: "Hello".into(),
            text: "Hello, Ada".into(),
            html: "<p>Hello, Ada</p>".into(),
        };
        let mut tx = test.db.begin().await.unwrap();
        let to = EmailAddress::parse("ada@example.com").unwrap();
        let id = outbox::add(&mut tx, EmailKind::Test, &to, None, &rendered)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let body = Message::SendEmail { email_id: id }.encode();
        Self { test, id, body }
    }

    /// What SQS does: deliver the message to the worker, with `Mailer::Ses` on the stub.
    async fn deliver(&self, stub: &Stub) -> SqsBatchResponse {
        let deps = Deps {
            db: self.test.db.clone(),
            mailer: Mailer::Ses(mailer(stub)),
        };
        let event = worker::event_for([("msg-1".to_owned(), self.body.clone(), 1)]);
        tokio::time::timeout(Duration::from_secs(60), worker::handle_batch(&deps, event))
            .await
            .expect("no hang")
    }

    async fn row(&self) -> EmailRow {
        let mut conn = self.test.db.acquire().await.unwrap();
        emails::find_email(&mut conn, self.id)
            .await
            .unwrap()
            .unwrap()
    }
}

#[tokio::test]
async fn ses_throttling_and_5xx_k_times_is_delivered_on_retry_with_k_plus_one_attempts() {
    let o = Outbox::new().await;
    let failures = [
        Reply::error(429, "TooManyRequestsException"),
        Reply::error(500, "InternalFailure"),
        Reply::error(503, "ServiceUnavailable"),
    ];
    let k = failures.len();
    let mut replies = failures.to_vec();
    replies.push(Reply::sent("stub-message-1"));
    let stub = Stub::answering(replies);

    for attempt in 1..=k {
        let response = o.deliver(&stub).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["msg-1"], "attempt {attempt} is retried by SQS");
        let row = o.row().await;
        assert_eq!(
            (row.status.as_str(), row.attempts),
            ("pending", attempt as i32),
            "{}",
            backend()
        );
        assert_eq!(stub.requests().len(), attempt, "one SES call per attempt");
    }
    let response = o.deliver(&stub).await;
    assert!(response.batch_item_failures.is_empty());
    let row = o.row().await;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("sent", k as i32 + 1),
        "{}",
        backend()
    );
    assert_eq!(row.provider_message_id.as_deref(), Some("stub-message-1"));
    assert_eq!(stub.requests().len(), k + 1);
    // A duplicate of the message does not call SES again.
    assert!(o.deliver(&stub).await.batch_item_failures.is_empty());
    assert_eq!(stub.requests().len(), k + 1);
}

#[tokio::test]
async fn an_ses_rejection_fails_the_row_for_good_and_is_not_retried() {
    let o = Outbox::new().await;
    let stub = Stub::answering(vec![
        Reply::error(400, "MessageRejected"),
        Reply::sent("never"),
    ]);
    let response = o.deliver(&stub).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "acknowledged, not retried"
    );
    let row = o.row().await;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("failed", 1),
        "{}",
        backend()
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("MessageRejected"),
        "{:?}",
        row.last_error
    );
    // A duplicate of the message, and a sweep, do not try again.
    assert!(o.deliver(&stub).await.batch_item_failures.is_empty());
    let (queue, mut queued) = shared::queue::Queue::local();
    let swept = outbox::sweep(&o.test.db, &queue, shared::clock::now())
        .await
        .unwrap();
    assert_eq!(swept.requeued, 0);
    assert!(queued.try_recv().is_err());
    assert_eq!(stub.requests().len(), 1);
}
