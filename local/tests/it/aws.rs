//! The AWS-facing parts against moto's server, a local emulator that speaks the real SQS and
//! SES v2 APIs. `.ci/run` starts it (scripts/aws-emulator.sh) and exports `AWS_EMULATOR_URL`
//! and `AWS_ENDPOINT_URL`; the code under test finds it through the standard endpoint variable,
//! as it would find any endpoint. They are `#[ignore]`d with the reason, so a plain `cargo test`
//! reports them as not run (never as passed); `.ci/run` runs them with `--ignored` on both
//! databases, and without the emulator they fail.

use std::io::{Read as _, Write as _};

use shared::domain::{EmailAddress, EmailKind};
use shared::mail::{FailureKind, FakeMailer, Mailer, OutgoingEmail, Rendered, SesMailer};
use shared::queue::{Message, Queue};
use shared::services::outbox;
use shared::store::emails;
use shared::testing::TestDb;
use uuid::Uuid;

async fn sdk() -> aws_config::SdkConfig {
    shared::aws::sdk_config().await
}

async fn new_queue() -> (aws_sdk_sqs::Client, String) {
    let client = aws_sdk_sqs::Client::new(&sdk().await);
    let name = format!("worker-{}", Uuid::now_v7().simple());
    let url = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (client, url)
}

/// moto's record of every message SES accepted.
fn sent_by_ses(emulator: &str) -> Vec<serde_json::Value> {
    let authority = emulator.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET /moto-api/data.json HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

async fn verify_sender(address: &str) {
    aws_sdk_sesv2::Client::new(&sdk().await)
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
        .unwrap();
}

fn rendered(subject: &str) -> Rendered {
    Rendered {
        subject: subject.to_owned(),
        text: format!("{subject} (text)"),
        html: format!("<p>{subject} (html)</p>"),
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn a_message_our_producer_sends_is_received_from_sqs_and_handled_by_the_worker() {
    shared::testing::require_aws_emulator();
    let test = TestDb::new().await;
    let (client, url) = new_queue().await;
    let queue = Queue::Sqs {
        client: client.clone(),
        url: url.clone(),
    };

    let mut tx = test.db.begin().await.unwrap();
    let to = EmailAddress::parse("ada@example.com").unwrap();
    let id = outbox::add(
        &mut tx,
        EmailKind::Test,
        &to,
        None,
        &rendered("Through SQS"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(outbox::notify(&queue, &[id]).await, 1);

    // What arrived on the emulator's queue is our versioned message.
    let mailer = FakeMailer::new();
    let deps = worker::Deps {
        db: test.db.clone(),
        mailer: Mailer::Fake(mailer.clone()),
    };
    let (received, failed) = local::worker_loop::poll_sqs_once(&deps, &client, &url, 2)
        .await
        .unwrap();
    assert_eq!((received, failed), (1, 0));
    assert_eq!(mailer.sent().len(), 1);
    assert_eq!(mailer.sent()[0].subject, "Through SQS");
    let mut conn = test.db.acquire().await.unwrap();
    assert_eq!(
        emails::find_email(&mut conn, id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "sent"
    );

    // Handled messages are deleted: the queue is empty now.
    let (received, _) = local::worker_loop::poll_sqs_once(&deps, &client, &url, 1)
        .await
        .unwrap();
    assert_eq!(received, 0);
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn a_malformed_message_on_sqs_stays_on_the_queue_for_retry() {
    shared::testing::require_aws_emulator();
    let test = TestDb::new().await;
    let (client, url) = new_queue().await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("{not json")
        .send()
        .await
        .unwrap();
    let deps = worker::Deps {
        db: test.db.clone(),
        mailer: Mailer::Fake(FakeMailer::new()),
    };
    let (received, failed) = local::worker_loop::poll_sqs_once(&deps, &client, &url, 2)
        .await
        .unwrap();
    assert_eq!((received, failed), (1, 1));
    // Not deleted: SQS delivers it again (and, after maxReceiveCount, to the dead-letter queue).
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    let in_flight = attributes
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        })
        .cloned();
    assert_eq!(in_flight.as_deref(), Some("1"));
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn the_ses_mailer_sends_and_the_emulator_shows_the_message() {
    let emulator = shared::testing::require_aws_emulator();
    let from = format!("sender-{}@example.com", Uuid::now_v7().simple());
    verify_sender(&from).await;
    let mailer = SesMailer::new(&sdk().await, &from);
    let subject = format!("Hello from SES {}", Uuid::now_v7());
    let sent = mailer
        .send(&OutgoingEmail {
            to: "ada@example.com".into(),
            subject: subject.clone(),
            text: "plain text".into(),
            html: Some("<p>html</p>".into()),
        })
        .await
        .unwrap();
    assert!(!sent.provider_message_id.is_empty());

    let messages = sent_by_ses(&emulator);
    let ours = messages
        .iter()
        .find(|m| m["subject"] == subject.as_str())
        .unwrap_or_else(|| panic!("not in the emulator: {messages:?}"));
    assert_eq!(ours["id"], sent.provider_message_id.as_str());
    assert_eq!(ours["source"], from.as_str());
    assert_eq!(ours["destinations"]["ToAddresses"][0], "ada@example.com");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn ses_refusing_an_unverified_sender_is_a_permanent_failure() {
    shared::testing::require_aws_emulator();
    let mailer = SesMailer::new(&sdk().await, "never-verified@example.org");
    let err = mailer
        .send(&OutgoingEmail {
            to: "ada@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Permanent, "{err}");
    assert!(err.message.contains("MessageRejected"), "{err}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn the_whole_pipeline_outbox_sqs_worker_ses() {
    let emulator = shared::testing::require_aws_emulator();
    let test = TestDb::new().await;
    let (client, url) = new_queue().await;
    let from = format!("app-{}@example.com", Uuid::now_v7().simple());
    verify_sender(&from).await;
    let deps = worker::Deps {
        db: test.db.clone(),
        mailer: Mailer::Ses(SesMailer::new(&sdk().await, &from)),
    };
    let queue = Queue::Sqs {
        client: client.clone(),
        url: url.clone(),
    };
    let subject = format!("Pipeline {}", Uuid::now_v7());
    let mut tx = test.db.begin().await.unwrap();
    let to = EmailAddress::parse("grace@example.com").unwrap();
    let id = outbox::add(&mut tx, EmailKind::Test, &to, None, &rendered(&subject))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outbox::notify(&queue, &[id]).await;
    // The same message delivered twice (SQS is at least once) still sends one email.
    queue
        .send(&Message::SendEmail { email_id: id })
        .await
        .unwrap();

    let mut received = 0;
    for _ in 0..5 {
        received += local::worker_loop::poll_sqs_once(&deps, &client, &url, 1)
            .await
            .unwrap()
            .0;
        if received == 2 {
            break;
        }
    }
    assert_eq!(received, 2);
    let mut conn = test.db.acquire().await.unwrap();
    let row = emails::find_email(&mut conn, id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    let ours: Vec<_> = sent_by_ses(&emulator)
        .into_iter()
        .filter(|m| m["subject"] == subject.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "sent once");
    assert_eq!(ours[0]["id"].as_str(), row.provider_message_id.as_deref());
}
