//! The router, in process, exactly as the Lambda and the local server build it.

use crate::common;

use axum::http::{Method, StatusCode, header};
use common::TestApp;
use tower::ServiceExt as _;

#[tokio::test]
async fn the_home_page_is_html_and_links_a_stylesheet_that_is_served_and_cached() {
    let app = TestApp::new().await;
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    // example-app:begin
    assert!(page.body.contains("Book a place in a class"));
    // example-app:end

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
    assert_eq!(reply.headers["retry-after"], "5");
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
    for path in ["/api/nope", "/api", "/api/me/1/nope"] {
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

    // A browser gets the same error as a page. (Pages answer a method they do not take the
    // same way, before their CSRF check: tests/security.rs.)
    let page = app
        .request(Method::POST, "/healthz", &[("accept", "text/html")])
        .await;
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.content_type().starts_with("text/html"));
}

#[tokio::test]
async fn an_api_gateway_http_api_event_reaches_the_router_through_lambda_http() {
    // The same conversion the Lambda main's `lambda_http::run` applies to each invocation.
    let event = include_str!("../../../../events/apigw-http-get-healthz.json");
    let request = lambda_http::request::from_str(event).expect("a valid HTTP API event");
    let app = TestApp::with_vars(&[(
        "ALLOWED_HOSTS",
        "abc123def4.execute-api.us-east-1.amazonaws.com",
    )])
    .await;
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
    let db = &app.db.as_ref().unwrap().db;
    let mut tx = db.begin().await.unwrap();
    let rendered = shared::mail::Rendered {
        subject: "Welcome <b>Ada</b>".into(),
        text: "Verify: https://app.example.com/verify?token=abc.\nNot a link: javascript:alert(1)"
            .into(),
        html: "<p onclick=\"x\">Hi</p>".into(),
    };
    let to = shared::domain::EmailAddress::parse("ada@example.com").unwrap();
    shared::services::outbox::add(
        &mut tx,
        shared::domain::EmailKind::Test,
        &to,
        None,
        &rendered,
    )
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
    // Its link can be followed with a click; only http(s) links are made clickable.
    assert!(
        page.body
            .contains("href=\"https:&#x2f;&#x2f;app.example.com&#x2f;verify?token=abc\">"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("href=\"javascript"));
    assert!(
        page.body
            .contains("srcdoc=\"&lt;p onclick=&quot;x&quot;&gt;Hi"),
        "HTML part kept inert"
    );
    assert!(page.body.contains("sandbox=\"\""));
    assert!(page.body.contains(">pending<"));

    let production = TestApp::production().await;
    let reply = production
        .request(
            Method::GET,
            "/_dev/mail",
            &[("host", "app.example.com"), ("x-forwarded-proto", "https")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
}

/// Every `src="..."` and `href="..."` value of a page.
fn links(body: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| body.split(attr).skip(1))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_api_reference_page_lists_every_operation_of_the_document_without_outside_links() {
    let app = TestApp::new().await;
    let page = app.get("/docs/api").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.content_type().starts_with("text/html"));

    // As a browser shows it: minijinja escapes `/` (and quotes) in what it prints.
    let text = page
        .body
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let doc = app.get("/api/openapi.json").await.json();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let shown = format!(">{path}</code>");
        assert!(text.contains(&shown), "{path} is not on the page");
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(
                page.body.contains(&format!("<article id=\"{id}\"")),
                "{method} {path} ({id}) is not on the page"
            );
        }
    }
    assert_eq!(page.body.matches("<article id=").count(), operations);
    // The request body's fields, the statuses and the security of one operation.
    for expected in [
        ">422</span>",
        "Bearer token",
        // example-app:begin
        "duration_minutes",
        "integer, 1 to 10000",
        ">201</span>",
        "page_size",
        // example-app:end
    ] {
        assert!(text.contains(expected), "{expected} is missing");
    }

    let links = links(&page.body);
    assert!(links.iter().any(|l| l == "/api/openapi.json"), "{links:?}");
    for link in &links {
        assert!(
            (link.starts_with('/') && !link.starts_with("//")) || link.starts_with('#'),
            "a link out of the app: {link}"
        );
    }
    assert!(!page.body.contains("<script"), "no script");

    let home = app.get("/").await;
    assert!(
        home.body.contains("href=\"/docs/api\""),
        "the footer links it"
    );
}
