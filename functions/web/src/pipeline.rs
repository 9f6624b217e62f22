//! The request pipeline: what every request passes through on its way to a handler and back.
//! [`around`] wraps the router in it once; in the order a request meets it:
//!
//! 1. A span with API Gateway's request id ([`crate::request_ids`]), around everything else,
//!    so every log and metric line of the request carries it.
//! 2. The API Gateway stage prefix comes off the path ([`crate::stage`]), before routing.
//! 3. A tracing span with the method and path, which every log line of the request carries,
//!    and the access line when the response leaves (`ACCESS_LOG`).
//! 4. Error rendering: every 4xx and 5xx leaves with the contract's body, as JSON for the API
//!    and clients asking for it, as an HTML page for browsers ([`crate::error`]).
//! 5. Allowed hosts and HTTPS, and the security headers on every answer ([`crate::security`]).
//! 6. CORS, for the configured origins only; an OPTIONS request that is no preflight goes on
//!    to the router (which answers 405).
//! 7. The body size limit (413).
//! 8. Panics become a 500.
//! 9. The router: a method a route does not take gets 405 with `Allow`; the pages run inside
//!    the session layer ([`crate::session`]), the API authenticates per handler.
//!
//! The layers wrap the routes once, as one service, rather than through `Router::layer`,
//! which builds a copy of every layer for each of the ~60 routes when the Lambda starts. So
//! they also see what the router itself answers (404, 405).

use std::any::Any;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use shared::error::FieldErrors;
use tower::util::Either;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Cors, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::{self, ErrorBody};
use crate::pages::Page;
use crate::session::{self, Visitor};
use crate::state::AppState;
use crate::{request_ids, security, stage};

/// `routes` inside the whole pipeline (module docs), as the app that serves requests.
pub fn around(routes: Router<AppState>, state: AppState) -> Router {
    // A method a route does not take gets 405 with `Allow` before any of the route's layers:
    // `Router::layer` and `route_layer` both wrap each route's 405 fallback too, so the pages'
    // CSRF check answered `PUT /login` with 403 (and the admin's guard with its own refusal).
    // This replaces that wrapped fallback on every route added before.
    let routes = routes.method_not_allowed_fallback(method_not_allowed);
    // The access line (`ACCESS_LOG`: off in Lambda, where API Gateway's access log has it).
    let access = if state.config.log.access_log {
        Level::INFO
    } else {
        Level::DEBUG
    };
    let service = ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(access)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::hosts_and_https,
        ))
        .layer(middleware::map_response(
            security::cors_for_allowed_origins_only,
        ))
        // Back to axum's `Response` (tower-http's layers change its body type), which the
        // middleware above takes.
        .map_response(IntoResponse::into_response)
        .layer(PreflightsOnlyLayer::new(security::cors(&state.config)))
        .layer(RequestBodyLimitLayer::new(state.config.max_request_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .service(routes.with_state::<()>(state));
    // The stage comes off the path before routing (a layer inside a Router runs after it).
    Router::new()
        .fallback_service(tower::util::MapRequest::new(service, stage::strip))
        .layer(middleware::from_fn(request_ids::layer))
}

/// A route's answer to a method it does not take: the router adds `Allow`, [`render_errors`]
/// the body.
async fn method_not_allowed() -> StatusCode {
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

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = detail, "handler panicked");
    error::error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "an unexpected error occurred".to_owned(),
        FieldErrors::new(),
    )
}

/// JSON for the API and for clients that ask for it; HTML for everyone else.
fn wants_json(path: &str, headers: &HeaderMap) -> bool {
    if security::is_api_path(path) {
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
    let sid = if json {
        None
    } else {
        let name = session::cookie_name(&state.config);
        session::session_token(request.headers(), name).map(str::to_owned)
    };
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
            ErrorBody::for_status(status, String::from_utf8_lossy(&text).trim())
        }
    };
    // Keep headers such as Retry-After and Allow; the body and its type are replaced.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let rendered = if json {
        error::json_error(status, &error)
    } else {
        // A page's own visitor (the session layer hands it on, its user looked up already),
        // else the one of the cookie: 404s and 405s are answered outside the session layer.
        let visitor = parts
            .extensions
            .remove::<Visitor>()
            .or_else(|| sid.map(|sid| Visitor::with_token(&state.config, sid)));
        html_error(&state, status, &error, visitor).await
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

/// An error as a page like the others. The navigation shows who is signed in, except on 5xx
/// pages: the database may be what failed, and the page must not wait for it.
async fn html_error(
    state: &AppState,
    status: StatusCode,
    error: &ErrorBody,
    visitor: Option<Visitor>,
) -> Response {
    let visitor = visitor
        .filter(|_| status.is_client_error())
        .unwrap_or_else(Visitor::anonymous);
    let mut page = Page::new(state, visitor);
    let signed_in = match page.user().await {
        Ok(user) => user.is_some(),
        // The lookup failed: the page still shows the error, as to a visitor not signed in.
        Err(_) => {
            page = Page::new(state, Visitor::anonymous());
            false
        }
    };
    let title = error::page_title(status);
    let ctx = context! { status => status.as_u16(), title, message => &error.message };
    let mut response = match page.render("error.html", ctx).await {
        Ok(html) => (status, html).into_response(),
        // The error page itself failed: plain text, still the right status.
        Err(_) => (status, Body::from(format!("{} {title}", status.as_u16()))).into_response(),
    };
    if signed_in {
        // As the session layer marks its pages: this one names who is signed in. (404s and
        // 405s are answered outside that layer, and shared caches may keep them.)
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
    response
}

/// tower-http's [`CorsLayer`] answers every OPTIONS request itself, as a preflight (200, empty
/// body), even one without `Access-Control-Request-Method`, which is no preflight. This layer
/// sends only real preflights and requests of other methods through it; any other OPTIONS goes
/// straight to the router, which answers 405 with `Allow` as for any method a route does not
/// take.
#[derive(Clone)]
struct PreflightsOnlyLayer(CorsLayer);

impl PreflightsOnlyLayer {
    fn new(cors: CorsLayer) -> Self {
        Self(cors)
    }
}

impl<S: Clone> Layer<S> for PreflightsOnlyLayer {
    type Service = PreflightsOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PreflightsOnly {
            // Two `Either`s of one type, so that both calls return the same future type.
            cors: Either::Left(self.0.layer(inner.clone())),
            plain: Either::Right(inner),
        }
    }
}

/// The service of [`PreflightsOnlyLayer`].
#[derive(Clone)]
struct PreflightsOnly<S> {
    cors: Either<Cors<S>, S>,
    plain: Either<Cors<S>, S>,
}

impl<S, B, R> Service<axum::http::Request<B>> for PreflightsOnly<S>
where
    S: Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = <Either<Cors<S>, S> as Service<axum::http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        std::task::ready!(self.plain.poll_ready(cx))?;
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let to_cors = request.method() != Method::OPTIONS
            || request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if to_cors {
            self.cors.call(request)
        } else {
            self.plain.call(request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WebError;
    use axum::routing::get;
    use shared::error::Error;
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
        (around(routes, state), test, dir)
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
}
