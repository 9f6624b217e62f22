//! Web security through the whole router: allowed hosts, forced HTTPS, security headers, CORS
//! and the body size limit.

use crate::common;

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
        ("/signup", &[HOST], StatusCode::MOVED_PERMANENTLY),
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

/// What a log subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn with_access_log_off_a_request_writes_no_line_at_info() {
    use shared::config::{LogConfig, LogFormat};
    // As in Lambda, where API Gateway's access log has the request.
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::local_config(dir.path());
    config.log.access_log = false;
    let app = TestApp::with_config(config, dir).await;
    let buffer = LogBuffer::default();
    let log = LogConfig {
        filter: "info".to_owned(),
        format: LogFormat::Json,
        access_log: false,
        xray_daemon: None,
    };
    let subscriber = shared::telemetry::subscriber(&log, buffer.clone(), false);
    let guard = tracing::subscriber::set_default(subscriber);
    assert_eq!(app.get("/login").await.status, StatusCode::OK);
    drop(guard);
    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logged.contains("/login"),
        "an access line was written: {logged}"
    );
}

#[tokio::test]
async fn one_time_tokens_in_a_query_string_never_reach_the_request_log() {
    use shared::config::{LogConfig, LogFormat};
    let app = TestApp::new().await;
    let secret = "SECRET123".repeat(8);
    // JSON as CloudWatch gets it in Lambda, text as `cargo run` prints it; `info` is the
    // default level in both.
    for format in [LogFormat::Json, LogFormat::Text] {
        let buffer = LogBuffer::default();
        let log = LogConfig {
            filter: "info".to_owned(),
            format,
            access_log: true,
            xray_daemon: None,
        };
        let subscriber = shared::telemetry::subscriber(&log, buffer.clone(), false);
        let guard = tracing::subscriber::set_default(subscriber);
        for path in ["/verify-email", "/password-reset/confirm"] {
            let reply = app.get(&format!("{path}?token={secret}")).await;
            assert_ne!(reply.status, StatusCode::NOT_FOUND, "{path}");
        }
        drop(guard);
        let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        for path in ["/verify-email", "/password-reset/confirm"] {
            assert!(
                logged.contains(path),
                "{format:?}: {path} not logged: {logged}"
            );
        }
        assert!(
            logged.contains("GET"),
            "{format:?}: method not logged: {logged}"
        );
        assert!(
            !logged.contains("SECRET123") && !logged.contains("token="),
            "{format:?}: the token was logged: {logged}"
        );
    }
}

#[tokio::test]
async fn a_request_with_two_host_headers_gets_400() {
    let app = TestApp::production().await;
    let cases = [
        (
            ["app.example.com", "evil.tld"],
            "the first allowed, the second foreign",
        ),
        (
            ["evil.tld", "app.example.com"],
            "the first foreign, the second allowed",
        ),
        (
            ["app.example.com", "app.example.com"],
            "the same allowed host twice",
        ),
    ];
    for ([first, second], case) in cases {
        let headers = [("host", first), ("host", second), HTTPS];
        let page = app.request(Method::GET, "/", &headers).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            page.body
        );
        assert!(page.content_type().starts_with("text/html"), "{case}");
        assert!(page.body.contains("Host"), "{case}: {}", page.body);
        let api = app.request(Method::GET, "/api/me", &headers).await;
        assert_eq!(api.status, StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(api.json()["error"]["code"], "bad_request", "{case}");
    }
}

#[tokio::test]
async fn an_absolute_request_target_must_name_the_allowed_host_the_host_header_names() {
    let app = TestApp::with_vars(&[("ALLOWED_HOSTS", "app.example.com,www.example.com")]).await;
    let cases = [
        (
            "http://evil.tld/login",
            "app.example.com",
            StatusCode::BAD_REQUEST,
            "a foreign host in the target",
        ),
        (
            "https://www.example.com/login",
            "app.example.com",
            StatusCode::BAD_REQUEST,
            "two allowed hosts that disagree",
        ),
        (
            "https://app.example.com:8443/login",
            "app.example.com",
            StatusCode::BAD_REQUEST,
            "the same name on another port",
        ),
        (
            "https://app.example.com@evil.tld/login",
            "app.example.com",
            StatusCode::BAD_REQUEST,
            "userinfo in the target",
        ),
        (
            "https://app.example.com/login",
            "app.example.com",
            StatusCode::OK,
            "the same host",
        ),
        (
            "https://APP.Example.com/login",
            "app.example.com",
            StatusCode::OK,
            "the same host in other case",
        ),
        // lambda_http builds the URI from the Host header with the URL parser, which drops a
        // default port.
        (
            "https://app.example.com/login",
            "app.example.com:443",
            StatusCode::OK,
            "a default port on one side only",
        ),
        ("/login", "app.example.com", StatusCode::OK, "origin form"),
    ];
    for (target, host, status, case) in cases {
        let reply = app
            .request(Method::GET, target, &[("host", host), HTTPS])
            .await;
        assert_eq!(reply.status, status, "{case}: {}", reply.body);
        if status == StatusCode::BAD_REQUEST {
            assert!(reply.content_type().starts_with("text/html"), "{case}");
        }
    }

    // HTTP/2 sends no Host header: the target's host alone decides.
    for (target, status) in [
        ("https://app.example.com/login", StatusCode::OK),
        ("https://evil.tld/login", StatusCode::BAD_REQUEST),
    ] {
        let request = axum::http::Request::get(target)
            .header(HTTPS.0, HTTPS.1)
            .body(Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app.router.clone(), request)
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{target} without a Host header");
    }
}

#[tokio::test]
async fn production_answers_name_neither_the_version_nor_the_database_backend() {
    let version = env!("CARGO_PKG_VERSION");
    let app = TestApp::production().await;
    let health = app.request(Method::GET, "/healthz", &[HOST, HTTPS]).await;
    assert_eq!(health.status, StatusCode::OK);
    let json = health.json();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["database", "status"], "{json}");
    for path in ["/", "/login", "/missing", "/api/missing"] {
        let reply = app.request(Method::GET, path, &[HOST, HTTPS]).await;
        assert!(!reply.body.contains(version), "{path} shows the version");
        assert!(
            !reply.body.contains("Running on"),
            "{path} names the backend"
        );
    }

    // With DEBUG on (the local default) a developer sees both.
    let local = TestApp::new().await;
    assert_eq!(local.get("/healthz").await.json()["version"], version);
    let home = local.get("/").await;
    assert!(
        home.body.contains(&format!("version {version}")),
        "{}",
        home.body
    );
    assert!(
        home.body.contains("Running on SQLite") || home.body.contains("Running on PostgreSQL"),
        "{}",
        home.body
    );
}

#[tokio::test]
async fn a_method_a_route_does_not_take_gets_405_with_allow_and_the_error_body() {
    let app = TestApp::new().await;
    let foo = Method::from_bytes(b"FOO").unwrap();
    // (method, path, the methods the route takes, JSON body (else the HTML page))
    let cases: Vec<(Method, &str, &[&str], bool)> = vec![
        (Method::PUT, "/login", &["GET", "HEAD", "POST"], false),
        (Method::DELETE, "/login", &["GET", "HEAD", "POST"], false),
        (Method::PATCH, "/login", &["GET", "HEAD", "POST"], false),
        (foo.clone(), "/login", &["GET", "HEAD", "POST"], false),
        (Method::OPTIONS, "/login", &["GET", "HEAD", "POST"], false),
        (Method::POST, "/", &["GET", "HEAD"], false),
        (Method::DELETE, "/account/tokens/1/revoke", &["POST"], false),
        (Method::PUT, "/api/me", &["GET", "HEAD"], true),
        // example-app:begin
        (foo.clone(), "/api/classes", &["GET", "HEAD", "POST"], true),
        // example-app:end
        (Method::OPTIONS, "/api/me", &["GET", "HEAD"], true),
        (Method::GET, "/api/auth/signup", &["POST"], true),
        (Method::DELETE, "/healthz", &["GET", "HEAD"], false),
        (Method::OPTIONS, "/healthz", &["GET", "HEAD"], false),
        (foo, "/healthz", &["GET", "HEAD"], false),
        (Method::POST, "/static/app.css", &["GET", "HEAD"], false),
        (Method::OPTIONS, "/static/app.css", &["GET", "HEAD"], false),
    ];
    for (method, path, allowed, json) in cases {
        let case = format!("{method} {path}");
        let reply = app.request(method, path, &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{case}: {}",
            reply.body
        );
        let allow = reply
            .headers
            .get(header::ALLOW)
            .unwrap_or_else(|| panic!("{case}: no Allow header"))
            .to_str()
            .unwrap();
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        listed.sort_unstable();
        let mut expected = allowed.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected, "{case}");
        if json {
            assert_eq!(
                reply.json()["error"]["code"],
                "method_not_allowed",
                "{case}"
            );
        } else {
            assert!(reply.content_type().starts_with("text/html"), "{case}");
            assert!(
                reply.body.contains("does not accept that method"),
                "{case}: {}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn an_options_request_from_an_allowed_origin_without_a_preflight_method_gets_405() {
    let app = TestApp::with_vars(&[("CORS_ALLOWED_ORIGINS", "https://allowed.com")]).await;
    let reply = app
        .request(
            Method::OPTIONS,
            "/api/me",
            &[HOST, HTTPS, ("origin", "https://allowed.com")],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn an_error_page_that_shows_who_is_signed_in_is_kept_out_of_shared_caches() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = common::Browser::new(&app);
    browser.log_in("ada@example.com", common::PASSWORD).await;
    let cookie = browser.cookie.clone().unwrap();
    // Answered outside the session layer, which marks the pages it serves private.
    for (method, path) in [(Method::PUT, "/login"), (Method::GET, "/missing")] {
        let case = format!("{method} {path}");
        let reply = app
            .request(
                method,
                path,
                &[("cookie", &cookie), ("accept", "text/html")],
            )
            .await;
        assert!(reply.status.is_client_error(), "{case}: {}", reply.status);
        assert!(
            reply.body.contains("ada@example.com"),
            "{case}: no navigation"
        );
        let cache = reply.headers[header::CACHE_CONTROL].to_str().unwrap();
        assert!(cache.contains("private"), "{case}: {cache}");
        let vary: Vec<&str> = reply
            .headers
            .get_all(header::VARY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            vary.iter().any(|v| v.eq_ignore_ascii_case("cookie")),
            "{case}: {vary:?}"
        );
    }
}
