//! The web function: HTML pages and the JSON API, as one axum [`Router`].
//!
//! [`router`] builds it; the Lambda `main`, the local server and the tests all call it, so the
//! tests exercise exactly what ships.

/// The JSON API under `/api/`.
pub mod api;
/// The caller's address, from the platform, for rate limits.
pub mod client;
/// Pages that exist only with DEBUG on (the development mailbox).
mod dev;
/// The error type handlers return, and the layer that renders errors as HTML or JSON.
pub mod error;
/// `/healthz`.
mod health;
/// One Lambda event in, its Lambda response out (the Lambda main and `cargo run -- invoke web`).
pub mod lambda;
/// HTML pages.
mod pages;
/// `?page=&page_size=` and the absolute `next` / `previous` links of lists.
pub mod paging;
/// API Gateway's request id on every log line of a request.
pub mod request_ids;
/// Allowed hosts, forced HTTPS, CORS, security headers, the body size limit.
pub mod security;
/// Browser sessions (the cookie) and CSRF protection for the pages.
pub mod session;
/// API Gateway stage prefixes: removed before routing, kept for links.
pub mod stage;
/// What every handler can reach: configuration, database, templates.
pub mod state;
/// minijinja templates embedded in the binary, and the content-hashed stylesheet.
pub mod templates;

use axum::Router;
use axum::middleware;
use axum::routing::get;

pub use error::WebError;
pub use pages::admin::{AdminRoute, route_list as admin_routes};
pub use state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let pages = pages::routes(&state).layer(middleware::from_fn_with_state(
        state.clone(),
        session::layer,
    ));
    let routes = Router::new()
        .merge(pages)
        .route("/healthz", get(health::healthz))
        .route("/static/{file}", get(templates::stylesheet))
        .merge(api::routes())
        .fallback(error::not_found);
    // A method a route does not take gets 405 with `Allow` before any of the route's layers:
    // `Router::layer` and `route_layer` both wrap each route's 405 fallback too, so the pages'
    // CSRF check answered `PUT /login` with 403 (and the admin's guard with its own refusal).
    // This replaces that wrapped fallback on every route added above.
    let routes = routes.method_not_allowed_fallback(error::method_not_allowed);
    // The stage comes off the path before routing (a layer inside a Router runs after it).
    let app = error::layers(routes, state);
    Router::new()
        .fallback_service(tower::util::MapRequest::new(app, stage::strip))
        .layer(middleware::from_fn(request_ids::layer))
}
