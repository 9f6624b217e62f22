//! Faults and load through the whole router, on the database under test: a database that is
//! down, saturated or locked answers 503 with the error body without hanging, and recovers
//! without a restart; 200 concurrent sign-ups lose nothing.
//!
//! "Quick" is guarded, never timed: each request runs inside a `tokio::time::timeout` of three
//! times the pool's acquire timeout, so a request that hangs fails the test instead of the CI
//! job, and no assertion depends on the machine's speed.

mod common;

use std::future::Future;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp};
use shared::db::ACQUIRE_TIMEOUT;
use shared::mail::{FakeMailer, Mailer};

/// Runs a request, failing the test if it has not answered well after the pool gave up.
async fn without_hanging(what: &str, request: impl Future<Output = Reply>) -> Reply {
    tokio::time::timeout(3 * ACQUIRE_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {:?}", 3 * ACQUIRE_TIMEOUT))
}

/// The 503 of the contract: the JSON error body for the API, the error page for pages.
fn assert_unavailable(reply: &Reply, api: bool, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        reply.body
    );
    if api {
        assert_eq!(reply.json()["error"]["code"], "unavailable", "{what}");
    } else {
        assert!(reply.content_type().starts_with("text/html"), "{what}");
        assert!(
            reply.body.contains("try again shortly"),
            "{what}: {}",
            reply.body
        );
    }
    for leak in ["sqlx", "pool", "127.0.0.1", "connection refused"] {
        assert!(
            !reply.body.to_lowercase().contains(leak),
            "{what} leaks {leak:?}"
        );
    }
}

/// A request to the API, a form post to the API and a page: each kind of handler.
async fn each_kind_of_request(app: &TestApp) -> Vec<(&'static str, bool, Reply)> {
    let signup =
        serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"});
    vec![
        (
            "GET /api/classes",
            true,
            without_hanging("GET /api/classes", app.get("/api/classes")).await,
        ),
        (
            "POST /api/auth/signup",
            true,
            without_hanging("signup", app.post_json("/api/auth/signup", signup)).await,
        ),
        (
            "GET /classes",
            false,
            without_hanging(
                "GET /classes",
                app.request(Method::GET, "/classes", &[("accept", "text/html")]),
            )
            .await,
        ),
    ]
}

#[tokio::test]
async fn with_the_database_down_every_kind_of_request_gets_503_with_the_error_body() {
    let app = TestApp::with_database_down();
    for (what, api, reply) in each_kind_of_request(&app).await {
        assert_unavailable(&reply, api, what);
    }
}

#[tokio::test]
async fn with_every_pooled_connection_taken_requests_get_503_and_then_recover() {
    let app = TestApp::new().await;
    // The test pool holds 5 connections (shared::testing::TestDb): take them all.
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(app.database().acquire().await.unwrap());
    }
    let reply = without_hanging("GET /api/classes", app.get("/api/classes")).await;
    assert_unavailable(&reply, true, "GET /api/classes with the pool exhausted");
    let page = without_hanging(
        "GET /classes",
        app.request(Method::GET, "/classes", &[("accept", "text/html")]),
    )
    .await;
    assert_unavailable(&page, false, "GET /classes with the pool exhausted");
    drop(held);
    // Same app, same pool: no restart.
    for (what, _, reply) in each_kind_of_request(&app).await {
        assert!(
            reply.status.is_success(),
            "{what} after recovery: {}",
            reply.status
        );
    }
}

#[tokio::test]
async fn a_database_locked_by_another_writer_gets_503_then_recovers() {
    if shared::testing::backend() != "sqlite" {
        // PostgreSQL locks rows, not the database: a sign-up does not wait on another
        // writer. Its outage cases are the two tests above.
        eprintln!("SQLite only: PostgreSQL has no database-wide write lock");
        return;
    }
    let app = TestApp::new().await;
    let writer = app.database().begin().await.unwrap(); // `begin immediate`: the write lock
    let signup =
        serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"});
    let reply = without_hanging(
        "signup while locked",
        app.post_json("/api/auth/signup", signup.clone()),
    )
    .await;
    assert_unavailable(&reply, true, "signup while another writer holds the lock");
    assert_eq!(app.count("select count(*) from users").await, 0);
    drop(writer);
    let reply = app.post_json("/api/auth/signup", signup).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.count("select count(*) from users").await, 1);
}

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

#[tokio::test]
async fn two_hundred_concurrent_signups_make_two_hundred_users_and_two_hundred_emails() {
    let app = TestApp::new().await;
    let replies = futures_util::future::join_all((0..200).map(|i| {
        app.post_json(
            "/api/auth/signup",
            serde_json::json!({"email": format!("user{i}@example.com"), "password": "correct horse battery"}),
        )
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
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
    let replies = futures_util::future::join_all((0..200).map(|_| {
        app.post_json(
            "/api/auth/signup",
            serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}),
        )
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
    assert_eq!(app.count("select count(*) from users").await, 1);
    let mailer = FakeMailer::new();
    drain_through_the_worker(&app, &mailer).await;
    let verifications = mailer
        .sent()
        .iter()
        .filter(|m| m.text.contains("verify-email?token="))
        .count();
    assert_eq!(verifications, 1, "{}", shared::testing::backend());
    // The owner may also be told once that someone tried to sign up with their address.
    assert!(
        mailer.sent().len() <= 2,
        "{} emails to one address",
        mailer.sent().len()
    );
}
