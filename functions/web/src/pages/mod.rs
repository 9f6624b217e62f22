//! HTML pages. Every route here runs inside [`session::layer`](crate::session::layer): it has
//! a [`Visitor`] and its forms are CSRF-checked before the handler runs.

mod accounts;
pub mod admin;
/// `/docs/api`: the API reference, rendered from the OpenAPI document.
mod api_docs;
pub(crate) mod classes;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Value, context};
use shared::config::DatabaseKind;
use shared::domain::User;
use shared::pagination::Page;

use crate::paging::PageQuery;
use crate::session::Visitor;
use crate::{AppState, WebError};

pub fn routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/", get(home))
        .route("/docs/api", get(api_docs::page))
        .merge(accounts::routes())
        .merge(classes::routes())
        .merge(admin::routes(state));
    // The development mailbox is a page like the others (the navigation shows who is signed
    // in), so it runs inside the session layer too.
    if state.config.debug {
        routes.merge(crate::dev::routes())
    } else {
        routes
    }
}

/// Renders a page with what every page shows: the signed-in user (for the navigation) and the
/// CSRF token for its forms. The user is the visitor's own, looked up here, so no page can
/// forget it (a page once showed "Log in" to a signed-in user); the lookup is made once per
/// request however often it is asked for.
pub(crate) async fn render(
    state: &AppState,
    visitor: &Visitor,
    name: &str,
    ctx: Value,
) -> Result<Html<String>, WebError> {
    let user = visitor.user(state).await?;
    render_for(state, visitor, user.as_ref(), name, ctx)
}

/// [`render`] for a handler that already holds the signed-in user (the admin's guard).
fn render_signed_in(
    state: &AppState,
    visitor: &Visitor,
    user: &User,
    name: &str,
    ctx: Value,
) -> Result<Html<String>, WebError> {
    render_for(state, visitor, Some(user), name, ctx)
}

fn render_for(
    state: &AppState,
    visitor: &Visitor,
    user: Option<&User>,
    name: &str,
    ctx: Value,
) -> Result<Html<String>, WebError> {
    let user = user.map(nav_user);
    state
        .templates
        .render(
            name,
            context! { csrf_token => &visitor.csrf_token, user, ..ctx },
        )
        .map(Html)
        .map_err(|e| WebError::unexpected(e.0))
}

/// What the navigation shows of the signed-in user (`user` in every page, error pages too).
pub(crate) fn nav_user(u: &User) -> Value {
    context! {
        email => u.email.as_str(),
        is_verified => u.is_verified,
        is_staff => u.is_staff,
        is_superuser => u.is_superuser,
    }
}

/// A time as pages show it, in the site's time zone.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// The pager a list template shows (`_pager.html`).
fn pager<T>(query: &PageQuery, page: &Page<T>) -> Value {
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

async fn home(State(state): State<AppState>, visitor: Visitor) -> Result<Html<String>, WebError> {
    // Which backend runs is for the developer (DEBUG on), not for visitors of a deployed site.
    let database = state.config.debug.then(|| match state.db.kind() {
        DatabaseKind::Sqlite => "SQLite",
        DatabaseKind::Postgres => "PostgreSQL",
    });
    render(&state, &visitor, "home.html", context! { database }).await
}
