//! The queue down at signup (a closed local queue, SQS unreachable, SQS that never answers):
//! the signup still succeeds, promptly, and its verification email waits `pending` in the
//! outbox; once the queue is back, the sweep and the worker deliver it exactly once.

use crate::common;

use std::time::Duration;

use common::{Stub, sdk_config};
use shared::config::Config;
use shared::mail::{FakeMailer, Mailer};
use shared::queue::{LocalMessage, Queue};
use shared::services::accounts::{self, Mailing};
use shared::services::outbox;
use shared::testing::{TestDb, backend, local_config};
use tokio::sync::mpsc::UnboundedReceiver;
use worker::Deps;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

struct App {
    test: TestDb,
    config: Config,
    mailer: FakeMailer,
    /// The queue once it is back, and what it received.
    queue: Queue,
    received: UnboundedReceiver<LocalMessage>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (queue, received) = Queue::local();
        Self {
            test: TestDb::new().await,
            config: local_config(dir.path(), &[]),
            mailer: FakeMailer::new(),
            queue,
            received,
            _dir: dir,
        }
    }

    /// Signs up as the web does (the same use case, the same arguments), with `queue` down.
    async fn sign_up_with(&self, queue: &Queue) {
        let mailing = Mailing {
            config: &self.config,
            queue,
        };
        tokio::time::timeout(
            Duration::from_secs(60),
            accounts::signup(&self.test.db, &mailing, EMAIL, PASSWORD),
        )
        .await
        .expect("the signup is not held by the queue")
        .expect("the signup succeeds without the queue");
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let mut conn = self.test.db.acquire().await.unwrap();
        shared::on_conn!(&mut conn, |c| sqlx::query_scalar(sql)
            .fetch_one(&mut *c)
            .await)
        .unwrap()
    }

    async fn statuses(&self) -> Vec<(String, String)> {
        let mut conn = self.test.db.acquire().await.unwrap();
        shared::on_conn!(&mut conn, |c| sqlx::query_as(
            "select kind, status from emails order by created_at"
        )
        .fetch_all(&mut *c)
        .await)
        .unwrap()
    }

    /// The queue is back: the sweep queues what waited, and the worker delivers it.
    async fn sweep_and_deliver(&mut self) -> usize {
        let report = outbox::sweep(&self.test.db, &self.queue, shared::clock::now())
            .await
            .unwrap();
        let mut bodies = Vec::new();
        while let Ok(message) = self.received.try_recv() {
            bodies.push(message.body);
        }
        assert_eq!(bodies.len(), report.requeued);
        let deps = Deps {
            db: self.test.db.clone(),
            mailer: Mailer::Fake(self.mailer.clone()),
        };
        let event = worker::event_for(
            bodies
                .into_iter()
                .enumerate()
                .map(|(i, body)| (format!("msg-{i}"), body, 1)),
        );
        let response = worker::handle_batch(&deps, event).await;
        assert!(response.batch_item_failures.is_empty());
        report.requeued
    }

    /// The whole story after a signup with the queue down.
    async fn assert_delivered_once_after_the_queue_returns(mut self) {
        assert_eq!(self.count("select count(*) from users").await, 1);
        assert_eq!(
            self.statuses().await,
            [("verify_email".to_owned(), "pending".to_owned())],
            "{}",
            backend()
        );
        assert!(self.mailer.sent().is_empty());

        assert_eq!(self.sweep_and_deliver().await, 1, "{}", backend());
        assert_eq!(
            self.statuses().await,
            [("verify_email".to_owned(), "sent".to_owned())]
        );
        let sent = self.mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, EMAIL);
        assert!(
            sent[0].text.contains("verify-email?token="),
            "{}",
            sent[0].text
        );

        // Nothing is left to queue: a second sweep sends nothing again.
        assert_eq!(self.sweep_and_deliver().await, 0);
        assert_eq!(self.mailer.sent().len(), 1);
    }
}

#[tokio::test]
async fn a_signup_with_the_local_queue_closed_succeeds_and_its_email_is_sent_once_later() {
    let app = App::new().await;
    let (down, receiver) = Queue::local();
    drop(receiver);
    app.sign_up_with(&down).await;
    app.assert_delivered_once_after_the_queue_returns().await;
}

#[tokio::test]
async fn a_signup_with_sqs_unreachable_succeeds_and_its_email_is_sent_once_later() {
    let app = App::new().await;
    // Nothing listens on port 1: every connection is refused.
    let endpoint = "http://127.0.0.1:1";
    let down = Queue::Sqs {
        client: aws_sdk_sqs::Client::new(&sdk_config(endpoint)),
        url: format!("{endpoint}/123456789012/app-worker"),
    };
    app.sign_up_with(&down).await;
    app.assert_delivered_once_after_the_queue_returns().await;
}

#[tokio::test]
async fn a_signup_with_sqs_not_answering_succeeds_once_the_send_times_out() {
    let app = App::new().await;
    // Connections are accepted and never answered: without a bound, the signup would wait
    // forever (the hang guard in `sign_up_with` fails it).
    let stub = Stub::silent();
    let down = Queue::Sqs {
        client: aws_sdk_sqs::Client::new(&sdk_config(&stub.endpoint)),
        url: format!("{}/123456789012/app-worker", stub.endpoint),
    };
    app.sign_up_with(&down).await;
    assert!(!stub.requests().is_empty(), "the send was tried");
    app.assert_delivered_once_after_the_queue_returns().await;
}
