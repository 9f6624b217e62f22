//! What a page handler starts from: a [`Page`] (the app, the browser behind the request, and
//! who is signed in) with the one [`Page::render`] every page goes through, error pages
//! included; [`SignedIn`] for the pages that need a user.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Value, context};
use shared::db::Db;
use shared::domain::User;

use crate::error::WebError;
use crate::session::{Visitor, login_redirect};
use crate::state::AppState;
use crate::templates::Templates;

/// A page request: what rendering needs of the app (the database for the user, the
/// templates), the [`Visitor`], and its signed-in user, looked up at the first call that needs
/// it and then kept for the rest of the request (a visitor without a session cookie costs no
/// lookup at all).
#[derive(Clone)]
pub struct Page {
    db: Db,
    templates: Arc<Templates>,
    visitor: Visitor,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        Ok(Self::new(state, visitor))
    }
}

impl Page {
    pub(crate) fn new(state: &AppState, visitor: Visitor) -> Self {
        Self {
            db: state.db.clone(),
            templates: state.templates.clone(),
            visitor,
        }
    }

    /// The browser behind the request (its session token, for logging in and out).
    pub fn visitor(&self) -> &Visitor {
        &self.visitor
    }

    /// The signed-in user, if any.
    pub async fn user(&self) -> Result<Option<User>, WebError> {
        self.visitor.user(&self.db).await
    }

    /// Renders template `name` with `ctx` and what every page shows: the signed-in user (for
    /// the navigation) and the CSRF token for its forms. The user is the visitor's own, looked
    /// up here, so no page can forget it (a page once showed "Log in" to a signed-in user).
    pub async fn render(&self, name: &str, ctx: Value) -> Result<Html<String>, WebError> {
        let user = self.user().await?;
        let ctx = context! {
            csrf_token => &self.visitor.csrf_token,
            user => user.as_ref().map(nav_user),
            ..ctx
        };
        let html = self
            .templates
            .render(name, ctx)
            .map_err(|e| WebError::unexpected(e.0))?;
        Ok(Html(html))
    }
}

/// What the navigation shows of the signed-in user.
fn nav_user(u: &User) -> Value {
    context! {
        email => u.email.as_str(),
        is_verified => u.is_verified,
        is_staff => u.is_staff,
        is_superuser => u.is_superuser,
    }
}

/// A page request with a signed-in user; anyone else is sent to the login page and back.
pub struct SignedIn {
    pub page: Page,
    pub user: User,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let page = Page::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match page.user().await.map_err(IntoResponse::into_response)? {
            Some(user) => Ok(Self { page, user }),
            None => Err(login_redirect(&parts.method, &parts.uri, "/account")),
        }
    }
}
