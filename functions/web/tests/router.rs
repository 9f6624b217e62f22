//! The router, in process, exactly as the Lambda and the local server build it.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use shared::config::{Config, DatabaseConfig, DatabaseKind, Profile, Secret, Vars};
use shared::db::Db;
use shared::testing::TestDb;
use tower::ServiceExt as _;

struct TestApp {
    router: Router,
    _db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

fn local_config(dir: &std::path::Path) -> Config {
    Config::from_vars(
        &Profile::Local {
            data_dir: dir.to_path_buf(),
        },
        &Vars::default(),
    )
    .unwrap()
}

impl TestApp {
    /// The app on a fresh, migrated database, with DEBUG on as `cargo run` has it.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::with_config(local_config(dir.path()), dir).await
    }

    /// With a production configuration (DEBUG off).
    async fn production() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_vars(
            &Profile::Local {
                data_dir: dir.path().to_path_buf(),
            },
            &Vars::from_pairs(shared::testing::production_vars()),
        )
        .unwrap();
        Self::with_config(config, dir).await
    }

    async fn with_config(config: Config, dir: tempfile::TempDir) -> Self {
        let db = TestDb::new().await;
        let state = web::AppState::with_db(config, db.db.clone()).unwrap();
        Self {
            router: web::router(state),
            _db: Some(db),
            _dir: dir,
        }
    }

    /// The app with a database that refuses connections.
    fn with_database_down() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect_lazy(&DatabaseConfig {
            url: Secret::new("postgres://nobody@127.0.0.1:1/none"),
            kind: DatabaseKind::Postgres,
            max_connections: 1,
        })
        .unwrap();
        let state = web::AppState::with_db(local_config(dir.path()), db).unwrap();
        Self {
            router: web::router(state),
            _db: None,
            _dir: dir,
        }
    }

    async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[]).await
    }
}

#[tokio::test]
async fn the_home_page_is_html_and_links_a_stylesheet_that_is_served_and_cached() {
    let app = TestApp::new().await;
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    assert!(page.body.contains("It works."));

    let href = page
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a stylesheet link");
    assert!(
        href.starts_with("/static/app.") && href.ends_with(".css"),
        "content-hashed name: {href}"
    );
    let css = app.get(href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.content_type(), "text/css; charset=utf-8");
    assert_eq!(
        css.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(css.body.contains("tailwindcss"), "the Tailwind build");
    // Every class the page uses made it into the purged stylesheet.
    assert!(css.body.contains(".bg-indigo-50"));
}

#[tokio::test]
async fn an_old_or_unknown_stylesheet_name_is_a_404() {
    let app = TestApp::new().await;
    let reply = app.get("/static/app.000000000000.css").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn healthz_reports_the_database_as_json() {
    let app = TestApp::new().await;
    let reply = app.get("/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    let json = reply.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["database"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn healthz_answers_503_when_the_database_is_down() {
    let app = TestApp::with_database_down();
    let reply = app.get("/healthz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["database"], "unavailable");
}

#[tokio::test]
async fn an_unknown_page_gets_the_html_404_page() {
    let app = TestApp::new().await;
    let reply = app.get("/no/such/page").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.content_type().starts_with("text/html"));
    assert!(reply.body.contains("Page not found"));
    assert!(
        reply.body.contains("<link rel=\"stylesheet\""),
        "uses the layout"
    );
}

#[tokio::test]
async fn an_unknown_api_path_gets_the_json_error_shape() {
    let app = TestApp::new().await;
    for path in ["/api/nope", "/api", "/api/classes/1/nope"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.content_type(), "application/json", "{path}");
        let json = reply.json();
        assert_eq!(json["error"]["code"], "not_found", "{path}");
        assert!(json["error"]["message"].is_string(), "{path}");
        assert_eq!(json.as_object().unwrap().len(), 1, "only `error`: {json}");
    }
}

#[tokio::test]
async fn a_client_asking_for_json_gets_json_errors_outside_the_api_too() {
    let app = TestApp::new().await;
    let reply = app
        .request(Method::GET, "/missing", &[("accept", "application/json")])
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_in_the_error_shape_and_keeps_the_allow_header() {
    let app = TestApp::new().await;
    let reply = app
        .request(
            Method::DELETE,
            "/healthz",
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
    assert!(reply.headers.contains_key(header::ALLOW));

    let page = app.request(Method::POST, "/", &[]).await;
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.content_type().starts_with("text/html"));
}

#[tokio::test]
async fn an_api_gateway_http_api_event_reaches_the_router_through_lambda_http() {
    // The same conversion the Lambda main's `lambda_http::run` applies to each invocation.
    let event = include_str!("../../../events/apigw-http-get-healthz.json");
    let request = lambda_http::request::from_str(event).expect("a valid HTTP API event");
    let app = TestApp::new().await;
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["database"], "ok");
}

#[tokio::test]
async fn the_development_mailbox_shows_the_outbox_escaped_and_only_with_debug() {
    let app = TestApp::new().await;
    let db = &app._db.as_ref().unwrap().db;
    let mut tx = db.begin().await.unwrap();
    let rendered = shared::mail::Rendered {
        subject: "Welcome <b>Ada</b>".into(),
        text: "Verify: https://app.example.com/verify?token=abc".into(),
        html: "<p onclick=\"x\">Hi</p>".into(),
    };
    let to = shared::domain::EmailAddress::parse("ada@example.com").unwrap();
    shared::services::outbox::add(&mut tx, "test", &to, None, &rendered)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let page = app.get("/_dev/mail").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada@example.com"));
    assert!(
        page.body.contains("Welcome &lt;b&gt;Ada&lt;&#x2f;b&gt;"),
        "subject escaped"
    );
    assert!(
        page.body
            .contains("https:&#x2f;&#x2f;app.example.com&#x2f;verify?token=abc")
    );
    assert!(
        page.body
            .contains("srcdoc=\"&lt;p onclick=&quot;x&quot;&gt;Hi"),
        "HTML part kept inert"
    );
    assert!(page.body.contains("sandbox=\"\""));
    assert!(page.body.contains(">pending<"));

    let production = TestApp::production().await;
    assert_eq!(
        production.get("/_dev/mail").await.status,
        StatusCode::NOT_FOUND
    );
}
