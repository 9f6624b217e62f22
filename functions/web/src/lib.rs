//! The web function: HTML pages and the JSON API, as one axum [`Router`].
//!
//! [`router`] builds it; the Lambda `main`, the local server and the tests all call it, so the
//! tests exercise exactly what ships.

/// The JSON API under `/api/`.
pub mod api;
/// The caller's address, from the platform, for rate limits.
pub mod client;
/// The error type handlers return, and how an error looks as JSON or as a page.
pub mod error;
/// The worked example of `docs/first-model.md` (notes), compiled with the tests only.
#[cfg(test)]
mod guide;
/// `/healthz`.
mod health;
/// One Lambda event in, its Lambda response out (the Lambda main and `cargo run -- invoke web`).
pub mod lambda;
/// HTML pages.
mod pages;
/// `?page=&page_size=` and the absolute `next` / `previous` links of lists.
pub mod paging;
/// What every request passes through, in order: request ids, tracing, error rendering, hosts
/// and HTTPS, CORS, the body limit, panics.
pub mod pipeline;
/// API Gateway's request id on every log line of a request (the pipeline's outermost step).
pub mod request_ids;
/// Allowed hosts, forced HTTPS, CORS, security headers, the body size limit.
pub mod security;
/// Browser sessions (the cookie) and CSRF protection for the pages.
pub mod session;
/// API Gateway stage prefixes: removed before routing, kept for links.
pub mod stage;
/// What every handler can reach: configuration, database, templates.
pub mod state;
/// The content-hashed stylesheet, embedded in the binary.
pub mod stylesheet;
/// minijinja templates embedded in the binary.
pub mod templates;

// The worked example runs the web tests' harness, which names this crate `web`.
#[cfg(test)]
extern crate self as web;

use axum::Router;
use axum::middleware;
use axum::routing::get;

pub use error::WebError;
pub use pages::admin::{AdminRoute, route_list as admin_routes};
pub use state::AppState;

/// The whole application: the routes, inside the [`pipeline`].
pub fn router(state: AppState) -> Router {
    let pages = pages::routes(&state).layer(middleware::from_fn_with_state(
        state.clone(),
        session::layer,
    ));
    let routes = Router::new()
        .merge(pages)
        .route("/healthz", get(health::healthz))
        .route("/static/{file}", get(stylesheet::serve))
        .merge(api::routes())
        .fallback(error::not_found);
    pipeline::around(routes, state)
}
