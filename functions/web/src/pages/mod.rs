//! HTML pages. Every route here runs inside [`session::layer`](crate::session::layer): its
//! handler takes a [`Page`] (or [`SignedIn`], or the admin's `Admin`), renders through
//! [`Page::render`], and its forms are CSRF-checked before the handler runs.

mod accounts;
pub mod admin;
/// `/docs/api`: the API reference, rendered from the OpenAPI document.
mod api_docs;
// example-app:begin
pub(crate) mod classes;
// example-app:end
/// Pages that exist only with DEBUG on (the development mailbox).
mod dev;
/// The extractor every page handler takes, and the one render.
mod page;

pub use page::{Page, SignedIn};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Value, context};
use serde::Deserialize;
use shared::config::DatabaseKind;
use shared::pagination;

use crate::error::WebError;
use crate::paging::PageQuery;
use crate::state::AppState;

pub fn routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/", get(home))
        .route("/docs/api", get(api_docs::page))
        .merge(accounts::routes())
        // example-app:begin
        .merge(classes::routes())
        // example-app:end
        .merge(admin::routes(state));
    // The development mailbox is a page like the others (the navigation shows who is signed
    // in), so it runs inside the session layer too.
    if state.config.debug {
        routes.merge(dev::routes())
    } else {
        routes
    }
}

/// What a page handler returns: the page (or a redirect), or the error the error layer shows.
pub(crate) type PageResult = Result<Response, WebError>;

/// `?notice=` after an action: the key of one of a page's fixed messages (never text from the
/// URL).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Notice {
    pub notice: String,
}

/// A time as pages show it, in the site's time zone.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// The pager a list template shows (`_pager.html`).
pub(crate) fn pager<T>(query: &PageQuery, page: &pagination::Page<T>) -> Value {
    context! {
        page => page.page,
        total_pages => page.total_pages,
        count => page.count,
        next => page.has_next().then(|| query.url(page.page + 1)),
        previous => page.has_previous().then(|| query.url(page.page - 1)),
    }
}

/// A page with a status other than 200 (a form shown again with its errors, ...).
fn with_status(status: StatusCode, page: Html<String>) -> Response {
    (status, page).into_response()
}

async fn home(State(state): State<AppState>, page: Page) -> Result<Html<String>, WebError> {
    // Which backend runs is for the developer (DEBUG on), not for visitors of a deployed site.
    let database = state.config.debug.then(|| match state.db.kind() {
        DatabaseKind::Sqlite => "SQLite",
        DatabaseKind::Postgres => "PostgreSQL",
    });
    page.render("home.html", context! { database }).await
}
