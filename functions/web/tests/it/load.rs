//! Load through the whole router, on the database under test: 200 concurrent sign-ups lose
//! nothing and answer no 5xx; what they queue is delivered by the worker's handler.

use crate::common;

use axum::http::StatusCode;
use common::TestApp;
use shared::mail::{FakeMailer, Mailer};

/// Hands every queued message to the worker's handler in SQS-sized batches until nothing is
/// left; returns how many messages it handled.
async fn drain_through_the_worker(app: &TestApp, mailer: &FakeMailer) -> usize {
    let deps = worker::Deps {
        db: app.database().clone(),
        mailer: Mailer::Fake(mailer.clone()),
    };
    let mut handled = 0;
    loop {
        let bodies = app.drain_queued();
        if bodies.is_empty() {
            return handled;
        }
        for chunk in bodies.chunks(10) {
            let event = worker::event_for(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, body)| (format!("m-{handled}-{i}"), body.clone(), 1)),
            );
            let response = worker::handle_batch(&deps, event).await;
            assert!(response.batch_item_failures.is_empty(), "a record failed");
            handled += chunk.len();
        }
    }
}

/// 200 sign-ups started together, the i-th for `email(i)`; each must answer 202.
async fn signups_at_once(app: &TestApp, email: impl Fn(usize) -> String) {
    let replies = futures_util::future::join_all((0..200).map(|i| {
        app.post_json(
            "/api/auth/signup",
            serde_json::json!({"email": email(i), "password": "correct horse battery"}),
        )
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
}

#[tokio::test]
async fn two_hundred_concurrent_signups_make_two_hundred_users_and_two_hundred_emails() {
    let app = TestApp::new().await;
    signups_at_once(&app, |i| format!("user{i}@example.com")).await;
    assert_eq!(app.count("select count(*) from users").await, 200);
    let mailer = FakeMailer::new();
    assert_eq!(drain_through_the_worker(&app, &mailer).await, 200);
    assert_eq!(
        app.count("select count(*) from emails where status = 'sent'")
            .await,
        200
    );
    let mut to: Vec<String> = mailer.sent().into_iter().map(|m| m.to).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 200, "one email to each address");
}

#[tokio::test]
async fn two_hundred_concurrent_signups_with_one_address_make_one_user_and_one_verification() {
    let app = TestApp::new().await;
    signups_at_once(&app, |_| "ada@example.com".to_owned()).await;
    assert_eq!(app.count("select count(*) from users").await, 1);
    let mailer = FakeMailer::new();
    drain_through_the_worker(&app, &mailer).await;
    let verifications = mailer
        .sent()
        .iter()
        .filter(|m| m.text.contains("verify-email?token="))
        .count();
    assert_eq!(verifications, 1, "{}", shared::testing::backend());
    // Nothing else: the 199 others found a minutes-old unverified account, whose verification
    // email is the answer.
    assert_eq!(
        mailer.sent().len(),
        1,
        "{} emails",
        shared::testing::backend()
    );
}

#[tokio::test]
async fn a_second_signup_for_an_older_account_waits_for_the_first_so_one_account_exists_email_goes()
{
    use shared::testing::faults::Fault;
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    // Registered two hours ago: a sign-up with its address gets "you already have an account",
    // at most once an hour.
    let two_hours_ago = chrono::Utc::now() - chrono::TimeDelta::hours(2);
    app.set_time("update users set created_at = $1", two_hours_ago)
        .await;
    app.set_time("update emails set created_at = $1", two_hours_ago)
        .await;
    let signup = || {
        app.post_json(
            "/api/auth/signup",
            serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}),
        )
    };

    // The first sign-up stops with its email written and not committed...
    let fault = Fault::new("signup: account-exists email written, not committed");
    // Boxed, so that dropping it below drops the future (and its transaction) too.
    let mut first = Box::pin(fault.run(signup()));
    tokio::select! {
        _ = &mut first => panic!("the first sign-up ran past its fault point"),
        () = fault.reached() => {}
    }
    // ...so a second one, which would read "none sent this hour" and send another, must wait
    // for it (on PostgreSQL the account's row is locked; SQLite's writer holds the database).
    let second = tokio::time::timeout(std::time::Duration::from_secs(3), signup()).await;
    assert!(
        second.is_err(),
        "{}: the second sign-up did not wait for the first",
        shared::testing::backend()
    );
    // The first crashes (its transaction rolls back); the next one sends the one email.
    drop(first);
    assert_eq!(signup().await.status, StatusCode::ACCEPTED);
    assert_eq!(signup().await.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.count("select count(*) from emails where kind = 'account_exists'")
            .await,
        1,
        "{}",
        shared::testing::backend()
    );
}
