//! Faults and load through the whole router, on the database under test: a database that is
//! down, saturated or locked answers 503 with the error body without hanging, and recovers
//! without a restart. (The 200-sign-up load tests are in `load.rs`: their 400 password hashes
//! would queue in front of these requests in the same process.)
//!
//! "Quick" is guarded, never timed: each request runs inside a `tokio::time::timeout` of three
//! times the pool's acquire timeout, so a request that hangs fails the test instead of the CI
//! job, and no assertion depends on the machine's speed.

use crate::common;

use std::future::Future;

use axum::http::StatusCode;
use common::{Reply, TestApp};
use shared::config::ACQUIRE_TIMEOUT;

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
    assert_eq!(
        reply
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5"),
        "{what}: a 503 says when to retry"
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
        // example-app:begin
        (
            "GET /api/classes",
            true,
            without_hanging("GET /api/classes", app.get("/api/classes")).await,
        ),
        // example-app:end
        (
            "POST /api/auth/signup",
            true,
            without_hanging("signup", app.post_json("/api/auth/signup", signup)).await,
        ),
        // example-app:begin
        (
            "GET /classes",
            false,
            without_hanging(
                "GET /classes",
                app.request(
                    axum::http::Method::GET,
                    "/classes",
                    &[("accept", "text/html")],
                ),
            )
            .await,
        ),
        // example-app:end
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
    // example-app:begin
    let reply = without_hanging("GET /api/classes", app.get("/api/classes")).await;
    assert_unavailable(&reply, true, "GET /api/classes with the pool exhausted");
    let page = without_hanging(
        "GET /classes",
        app.request(
            axum::http::Method::GET,
            "/classes",
            &[("accept", "text/html")],
        ),
    )
    .await;
    assert_unavailable(&page, false, "GET /classes with the pool exhausted");
    // example-app:end
    drop(held);
    // Same app, same pool: no restart.
    for path in [
        "/healthz",
        // example-app:begin
        "/api/classes",
        "/classes",
        // example-app:end
    ] {
        let reply = app.get(path).await;
        assert!(
            reply.status.is_success(),
            "{path} after recovery: {}",
            reply.status
        );
    }
    let signup =
        serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"});
    let reply = app.post_json("/api/auth/signup", signup).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "signup after recovery");
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

#[tokio::test]
async fn a_postgres_server_that_goes_away_and_comes_back_is_served_again_without_a_restart() {
    if shared::testing::backend() != "postgres" {
        // A SQLite database is a file in the process: it cannot go away while the app runs.
        // Its outage is the write lock above.
        eprintln!("PostgreSQL only: SQLite has no server to lose");
        return;
    }
    // The app reaches the server through a proxy the test takes down, as a restart or a
    // failover does: open connections cut, new ones refused.
    let test_db = shared::testing::TestDb::new().await;
    let mut url = url::Url::parse(test_db.config.url.expose()).unwrap();
    let target = tokio::net::lookup_host((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = common::proxy::TcpProxy::start(target);
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port())).unwrap();
    let through_proxy = shared::db::Db::connect_lazy(&shared::config::DatabaseConfig {
        url: shared::config::Secret::new(url.to_string()),
        ..test_db.config.clone()
    })
    .unwrap();
    let app = TestApp::with_pool(through_proxy, test_db);
    let signup =
        |email: &str| serde_json::json!({"email": email, "password": "correct horse battery"});

    // Up: the pool holds open connections to the server.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let reply = app
        .post_json("/api/auth/signup", signup("ada@example.com"))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);

    proxy.down();
    for (what, api, reply) in each_kind_of_request(&app).await {
        assert_unavailable(&reply, api, &format!("{what} with the server gone"));
    }
    let reply = without_hanging(
        "signup with the server gone",
        app.post_json("/api/auth/signup", signup("bob@example.com")),
    )
    .await;
    assert_unavailable(&reply, true, "signup with the server gone");

    proxy.up();
    // The same app and pool: its dead connections are replaced, nothing is restarted.
    for path in [
        "/healthz",
        // example-app:begin
        "/api/classes",
        "/classes",
        // example-app:end
    ] {
        let reply = without_hanging(path, app.get(path)).await;
        assert!(
            reply.status.is_success(),
            "{path} after the server came back: {} {}",
            reply.status,
            reply.body
        );
    }
    let reply = without_hanging(
        "signup after the server came back",
        app.post_json("/api/auth/signup", signup("bob@example.com")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    // Ada from before, Bob from after; nothing half-written while it was gone.
    assert_eq!(app.count("select count(*) from users").await, 2);
    assert_eq!(app.count("select count(*) from emails").await, 2);
}
