//! Web security through the whole router: allowed hosts, forced HTTPS, security headers, CORS
//! and the body size limit.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use common::TestApp;

const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");
const HOST: (&str, &str) = ("host", "app.example.com");

#[tokio::test]
async fn each_poisoned_host_gets_400_in_the_error_shape() {
    let app = TestApp::production().await;
    for host in [
        "example.com@evil.tld",
        "app.example.com:dr.frankenstein@evil.tld",
        "app.example.com:80/badpath",
        "app.example.com: recovermypassword.com",
        "other.com",
        "app.example.com..",
        "app.example.com.evil.tld",
    ] {
        let page = app
            .request(Method::GET, "/", &[("host", host), HTTPS])
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{host}");
        assert!(
            page.body.contains("invalid Host header"),
            "{host}: {}",
            page.body
        );
        assert!(!page.body.contains("evil.tld\""), "never echoed as a link");
        let api = app
            .request(Method::GET, "/api/x", &[("host", host), HTTPS])
            .await;
        assert_eq!(api.status, StatusCode::BAD_REQUEST, "{host}");
        assert_eq!(api.json()["error"]["code"], "bad_request", "{host}");
    }
    let ok = app.request(Method::GET, "/", &[HOST, HTTPS]).await;
    assert_eq!(ok.status, StatusCode::OK);
    let with_port = app
        .request(Method::GET, "/", &[("host", "app.example.com:443"), HTTPS])
        .await;
    assert_eq!(with_port.status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_without_a_host_is_refused() {
    let app = TestApp::production().await;
    // The harness adds `Host: localhost`, which is not allowed in production either.
    let reply = app.request(Method::GET, "/", &[HTTPS]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn force_https_redirects_pages_refuses_the_api_and_sends_hsts() {
    let app = TestApp::production().await;
    let page = app
        .request(
            Method::GET,
            "/healthz?verbose=1",
            &[HOST, ("x-forwarded-proto", "http")],
        )
        .await;
    assert_eq!(page.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        page.headers[header::LOCATION],
        "https://app.example.com/healthz?verbose=1"
    );
    // Without a proxy header the request came over plain HTTP.
    let bare = app.request(Method::GET, "/", &[HOST]).await;
    assert_eq!(bare.status, StatusCode::MOVED_PERMANENTLY);

    let api = app
        .request(
            Method::POST,
            "/api/auth/token",
            &[HOST, ("x-forwarded-proto", "http")],
        )
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN, "no redirect for the API");
    assert!(
        api.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTPS")
    );

    let secure = app.request(Method::GET, "/", &[HOST, HTTPS]).await;
    assert_eq!(secure.status, StatusCode::OK);
    let hsts = secure.headers[header::STRICT_TRANSPORT_SECURITY]
        .to_str()
        .unwrap();
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");
}

/// The headers every answer carries, whatever produced it.
fn assert_security_headers(reply: &common::Reply, what: &str) {
    let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    assert_eq!(
        reply.headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff",
        "{what}"
    );
    assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY", "{what}");
    assert_eq!(
        reply.headers[header::REFERRER_POLICY],
        "same-origin",
        "{what}"
    );
    assert_eq!(
        reply.headers["cross-origin-opener-policy"], "same-origin",
        "{what}"
    );
}

#[tokio::test]
async fn under_force_https_every_answer_has_hsts_and_the_security_headers_even_refusals() {
    let app = TestApp::with_vars(&[]).await; // the production set: FORCE_HTTPS on
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode);
    let cases: [Case; 6] = [
        ("/", &[HOST, HTTPS], StatusCode::OK),
        ("/api/missing", &[HOST, HTTPS], StatusCode::NOT_FOUND),
        ("/healthz", &[HOST, HTTPS], StatusCode::OK),
        // Refused or redirected before routing:
        (
            "/",
            &[("host", "evil.example.net"), HTTPS],
            StatusCode::BAD_REQUEST,
        ),
        ("/classes", &[HOST], StatusCode::MOVED_PERMANENTLY),
        ("/api/me", &[HOST], StatusCode::FORBIDDEN),
    ];
    for (path, headers, status) in cases {
        let reply = app.request(Method::GET, path, headers).await;
        let what = format!("{path} {headers:?}");
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert_security_headers(&reply, &what);
        assert_eq!(
            reply.headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000; includeSubDomains",
            "{what}"
        );
    }
}

#[tokio::test]
async fn without_force_https_plain_http_is_served_and_no_hsts_is_sent() {
    let app = TestApp::new().await;
    let reply = app.get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        !reply
            .headers
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    for path in ["/", "/healthz", "/missing", "/api/missing"] {
        let reply = app.get(path).await;
        assert_security_headers(&reply, path);
    }
    // The development mailbox shows inline-styled email HTML: its own, wider style policy.
    let mailbox = app.get("/_dev/mail").await;
    let csp = mailbox.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("style-src 'self' 'unsafe-inline'"), "{csp}");
}

#[tokio::test]
async fn cors_answers_allowlisted_origins_only() {
    let app = TestApp::with_vars(&[("CORS_ALLOWED_ORIGINS", "https://allowed.com")]).await;
    let preflight = |origin: &'static str| {
        let app = &app;
        async move {
            app.request(
                Method::OPTIONS,
                "/api/me",
                &[
                    HOST,
                    HTTPS,
                    ("origin", origin),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
            )
            .await
        }
    };
    let allowed = preflight("https://allowed.com").await;
    assert_eq!(
        allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://allowed.com"
    );
    assert!(
        allowed.headers[header::VARY]
            .to_str()
            .unwrap()
            .contains("origin")
    );
    assert!(
        !allowed
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
    );
    let methods = allowed.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("DELETE"), "{methods}");

    // Look-alikes get nothing at all: no Access-Control-* header of any kind.
    for origin in [
        "https://allowed.com.evil.com",
        "https://allowed.com:8443",
        "https://sub.allowed.com",
        "https://allowed.co",
        "null",
        "http://allowed.com",
        "https://evil.com",
    ] {
        let reply = preflight(origin).await;
        let cors: Vec<&str> = reply
            .headers
            .keys()
            .map(|name| name.as_str())
            .filter(|name| name.starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{origin} got CORS headers: {cors:?}");
    }

    let simple = app
        .request(
            Method::GET,
            "/healthz",
            &[HOST, HTTPS, ("origin", "https://allowed.com")],
        )
        .await;
    assert_eq!(
        simple.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://allowed.com"
    );
    let foreign = app
        .request(
            Method::GET,
            "/healthz",
            &[HOST, HTTPS, ("origin", "https://evil.com")],
        )
        .await;
    assert!(
        !foreign
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_in_the_error_shape() {
    let app = TestApp::with_vars(&[("MAX_REQUEST_BYTES", "2048")]).await;
    let big = "x".repeat(4096);
    let reply = app
        .send(
            Method::POST,
            "/api/auth/signup",
            &[
                HOST,
                HTTPS,
                ("content-type", "application/json"),
                ("content-length", "4096"),
            ],
            Body::from(big),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"]["code"], "payload_too_large");
}
