//! Errors as the contract shows them.
//!
//! Handlers return [`WebError`] (a `shared::Error` with an HTTP status). Its response carries
//! an [`ErrorBody`] in the response extensions; the [`render_errors`] layer then writes that
//! body as JSON (`{"error": {"code", "message", "fields"}}`) for `/api/` and clients asking
//! for JSON, or as an HTML page for browsers. Errors produced outside our handlers (axum's
//! extractor rejections, 405s, panics) go through the same layer, so every error looks the
//! same. Internal causes are logged with their whole chain and never sent to the client.

use std::any::Any;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Serialize;
use shared::error::{Error, FieldErrors};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::AppState;

/// The `Retry-After` of a 503, in seconds: the pool's acquire timeout. A 503 mostly means the
/// request already waited that long for a database connection (the pool full, or the server
/// refusing new connections); a client that retries sooner lands in the same wait. A small
/// constant, not a promise: docs/scaling.md has what frees connections and when.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = shared::db::ACQUIRE_TIMEOUT.as_secs();

/// What a handler returns on failure.
#[derive(Debug)]
pub struct WebError(pub Error);

impl WebError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self(Error::NotFound(message.into()))
    }
    pub fn unexpected(e: anyhow::Error) -> Self {
        Self(Error::Unexpected(e))
    }
}

impl<E: Into<Error>> From<E> for WebError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// The `error` object of the contract; kept in the response extensions until rendered.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "FieldErrors::is_empty")]
    pub fields: FieldErrors,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message, fields) = match self.0 {
            Error::BadRequest(m) => (StatusCode::BAD_REQUEST, m, FieldErrors::new()),
            Error::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "authentication required".to_owned(),
                FieldErrors::new(),
            ),
            Error::Forbidden(m) => (StatusCode::FORBIDDEN, m, FieldErrors::new()),
            Error::NotFound(m) => (StatusCode::NOT_FOUND, m, FieldErrors::new()),
            Error::Conflict(m) => (StatusCode::CONFLICT, m, FieldErrors::new()),
            Error::Invalid(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "some fields are invalid".to_owned(),
                fields,
            ),
            e @ Error::TooManyRequests { retry_after_secs } => {
                let mut response = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    e.to_string(),
                    FieldErrors::new(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                return response;
            }
            Error::Unavailable(cause) => {
                tracing::error!(error = format!("{cause:#}"), "dependency unavailable");
                let mut response = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a service this request needs is unavailable; try again shortly".to_owned(),
                    FieldErrors::new(),
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
                );
                return response;
            }
            Error::Unexpected(cause) => {
                tracing::error!(error = format!("{cause:#}"), "unexpected error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an unexpected error occurred".to_owned(),
                    FieldErrors::new(),
                )
            }
        };
        error_response(status, message, fields)
    }
}

/// A response whose body the [`render_errors`] layer writes.
fn error_response(status: StatusCode, message: String, fields: FieldErrors) -> Response {
    let body = ErrorBody {
        code: code_for(status),
        message,
        fields,
    };
    let mut response = json_error(status, &body);
    response.extensions_mut().insert(body);
    response
}

fn json_error(status: StatusCode, body: &ErrorBody) -> Response {
    (status, axum::Json(Envelope { error: body })).into_response()
}

/// The router's fallback: nothing at this path.
pub async fn not_found() -> WebError {
    WebError::not_found("nothing lives at this address")
}

/// A route's answer to a method it does not take: the router adds `Allow`, [`render_errors`]
/// the body.
pub async fn method_not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

/// The span of a request, which every log line of the request carries: its method and path,
/// never the query string. One-time tokens travel there (`/verify-email?token=`,
/// `/password-reset/confirm?token=`), and tower-http's `DefaultMakeSpan` records the whole URI,
/// which put them in the logs. The path is borrowed, not copied.
fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// The layers every request runs inside, outermost first: request tracing (method and path),
/// error rendering, host and HTTPS checks with the security headers, CORS (for preflights and
/// requests other than OPTIONS), the body size limit, panic catching.
///
/// They wrap the routes once, as one service, rather than through `Router::layer`, which
/// builds a copy of every layer for each of the ~60 routes when the Lambda starts. So they
/// also see what the router itself answers (404, 405).
pub fn layers(routes: Router<AppState>, state: AppState) -> Router {
    let service = ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::security::hosts_and_https,
        ))
        .layer(middleware::map_response(
            crate::security::cors_for_allowed_origins_only,
        ))
        // Back to axum's `Response` (tower-http's layers change its body type), which the
        // middleware above takes.
        .map_response(IntoResponse::into_response)
        .layer(crate::security::PreflightsOnlyLayer::new(
            crate::security::cors(&state.config),
        ))
        .layer(RequestBodyLimitLayer::new(state.config.max_request_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .service(routes.with_state::<()>(state));
    Router::new().fallback_service(service)
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = detail, "handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "an unexpected error occurred".to_owned(),
        FieldErrors::new(),
    )
}

/// JSON for the API and for clients that ask for it; HTML for everyone else.
fn wants_json(path: &str, headers: &HeaderMap) -> bool {
    if path == "/api" || path.starts_with("/api/") {
        return true;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// Gives every 4xx/5xx response the contract's body, as JSON or as an HTML page.
async fn render_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let json = wants_json(request.uri().path(), request.headers());
    let name = crate::session::cookie_name(&state.config);
    let sid = crate::session::session_token(request.headers(), name).map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let error = match parts.extensions.remove::<ErrorBody>() {
        Some(error) => error,
        // A handler that chose its own error document (e.g. /healthz's JSON 503) keeps it.
        None if has_document(&parts.headers) => return Response::from_parts(parts, body),
        None => {
            // Made outside our handlers: an axum rejection (plain text) or an empty 405.
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            let message = if status.is_client_error() && !text.is_empty() {
                text
            } else {
                default_message(status).to_owned()
            };
            ErrorBody {
                code: code_for(status),
                message,
                fields: FieldErrors::new(),
            }
        }
    };
    // Keep headers such as Retry-After and Allow; the body and its type are replaced.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let rendered = if json {
        json_error(status, &error)
    } else {
        // The navigation shows who is logged in, except on 5xx pages: the database may be
        // what failed, and the page must not wait for it.
        let visitor = match sid {
            Some(sid) if status.is_client_error() => {
                match shared::services::sessions::session_user(&state.db, &sid).await {
                    Ok(Some(user)) => Some((user, crate::session::csrf_token(&state.config, &sid))),
                    _ => None,
                }
            }
            _ => None,
        };
        let shows_visitor = visitor.is_some();
        let mut page = html_error(&state, status, &error, visitor);
        if shows_visitor {
            // As the session layer marks its pages: this one names who is signed in. (404s and
            // 405s are answered outside that layer, and shared caches may keep them.)
            let headers = page.headers_mut();
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
            headers.append(header::VARY, HeaderValue::from_static("Cookie"));
        }
        page
    };
    let (rendered_parts, rendered_body) = rendered.into_parts();
    parts.headers.extend(rendered_parts.headers);
    Response::from_parts(parts, rendered_body)
}

fn has_document(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"))
}

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "nothing lives at this address",
        405 => "this address does not accept that method",
        503 => "a service this request needs is unavailable; try again shortly",
        s if s >= 500 => "an unexpected error occurred",
        _ => "the request could not be handled",
    }
}

fn html_error(
    state: &AppState,
    status: StatusCode,
    error: &ErrorBody,
    visitor: Option<(shared::domain::User, String)>,
) -> Response {
    let title = match status.as_u16() {
        404 => "Page not found",
        s if s >= 500 => "Something went wrong",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let page = state.templates.render_string(
        "error.html",
        context! {
            status => status.as_u16(),
            title,
            message => &error.message,
            user => visitor.as_ref().map(|(u, _)| crate::pages::nav_user(u)),
            csrf_token => visitor.as_ref().map(|(_, token)| token),
        },
    );
    match page {
        Ok(html) => (status, Html(html)).into_response(),
        // The error page itself failed: plain text, still the right status.
        Err(_) => (status, Body::from(format!("{} {title}", status.as_u16()))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt as _;

    /// The router with `routes` inside our layers, and what must live as long as it.
    async fn app_with(
        routes: Router<AppState>,
    ) -> (Router, shared::testing::TestDb, tempfile::TempDir) {
        let test = shared::testing::TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let config = shared::config::Config::from_vars(
            &shared::config::Profile::Local {
                data_dir: dir.path().to_path_buf(),
            },
            &shared::config::Vars::default(),
        )
        .unwrap();
        let (queue, _) = shared::queue::Queue::local();
        let state = AppState::new(config, test.db.clone(), queue);
        (layers(routes, state), test, dir)
    }

    async fn get_path(app: Router, path: &str) -> (StatusCode, HeaderMap, String) {
        let response = app
            .oneshot(
                Request::get(path)
                    .header(header::HOST, "localhost")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_gives_a_500_page_for_browsers_and_json_for_the_api() {
        async fn boom() -> &'static str {
            panic!("secret internal detail")
        }
        let routes = Router::new()
            .route("/boom", get(boom))
            .route("/api/boom", get(boom));
        let (app, _db, _dir) = app_with(routes).await;

        let (status, headers, body) = get_path(app.clone(), "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(body.contains("Something went wrong"), "{body}");
        assert!(!body.contains("secret internal detail"));

        let (status, _, body) = get_path(app, "/api/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal");
        assert!(!body.contains("secret internal detail"));
    }

    #[tokio::test]
    async fn a_503_keeps_its_retry_after_as_an_html_page_and_as_json() {
        async fn down() -> WebError {
            WebError(Error::Unavailable(anyhow::anyhow!(
                "pool timed out while waiting for an open connection"
            )))
        }
        let routes = Router::new()
            .route("/down", get(down))
            .route("/api/down", get(down));
        let (app, _db, _dir) = app_with(routes).await;

        for (path, content_type) in [("/down", "text/html"), ("/api/down", "application/json")] {
            let (status, headers, body) = get_path(app.clone(), path).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(headers[header::RETRY_AFTER], "5", "{path}");
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with(content_type),
                "{path}: {headers:?}"
            );
            assert!(!body.contains("pool timed out"), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn each_error_variant_maps_to_its_status_and_code() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::BadRequest("bad page".into()), 400, "bad_request"),
            (Error::Unauthenticated, 401, "unauthenticated"),
            (Error::Forbidden("staff only".into()), 403, "forbidden"),
            (Error::NotFound("no class".into()), 404, "not_found"),
            (Error::Conflict("taken".into()), 409, "conflict"),
            (
                Error::invalid("email", "enter an email address"),
                422,
                "invalid",
            ),
            (
                Error::TooManyRequests {
                    retry_after_secs: 30,
                },
                429,
                "too_many_requests",
            ),
            (
                Error::Unavailable(anyhow::anyhow!("connection refused to 10.0.0.5")),
                503,
                "unavailable",
            ),
            (
                Error::Unexpected(anyhow::anyhow!("syntax error at or near \"selec\"")),
                500,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            let shown = format!("{error:?}");
            let response = WebError(error).into_response();
            assert_eq!(response.status().as_u16(), status, "{shown}");
            let body = response.extensions().get::<ErrorBody>().unwrap().clone();
            assert_eq!(body.code, code, "{shown}");
            assert!(
                !body.message.contains("10.0.0.5") && !body.message.contains("selec"),
                "{shown}"
            );
            match status {
                429 => assert_eq!(response.headers()[header::RETRY_AFTER], "30"),
                503 => assert_eq!(response.headers()[header::RETRY_AFTER], "5"),
                _ => assert!(
                    !response.headers().contains_key(header::RETRY_AFTER),
                    "{shown}"
                ),
            }
            if status == 422 {
                assert_eq!(body.fields["email"], "enter an email address");
            }
        }
    }
}
