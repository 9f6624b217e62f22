//! Browser sessions and CSRF protection for the HTML pages.
//!
//! **One cookie.** Every browser holds a random token in `sid` (`__Host-sid` when the site is
//! served over HTTPS: the prefix forces `Secure`, `Path=/` and no `Domain`, so a sibling
//! subdomain cannot plant it). Before login it is only an anonymous id: nothing is stored, so a
//! visitor costs no database write. Login replaces it with a new token whose SHA-256 keys a row
//! in `sessions` (a token planted before login is worthless after it); logout deletes that row
//! and replaces the token again. The cookie is `HttpOnly` and `SameSite=Lax`.
//!
//! **CSRF.** Every form carries `csrf_token`, an HMAC-SHA256 of the cookie's token under
//! `SECRET_KEY`: bound to this browser's session, and unforgeable without the cookie (which
//! scripts cannot read). The [`layer`] checks every state-changing request to a page before
//! its handler runs, so no form can forget it (a method the route does not take never reaches
//! the layer: the router answers 405 first, see `crate::router`):
//! 1. `Origin` (or, when a browser sends none, `Referer`) must be one of ours: `SITE_URL`, the
//!    origin the request was made to (its host already passed `ALLOWED_HOSTS`), or one of
//!    `CORS_ALLOWED_ORIGINS`. Missing or foreign: 403.
//! 2. The `csrf_token` form field (or an `X-CSRF-Token` header) must match the cookie. Missing
//!    or wrong: 403.
//!
//! The JSON API does not use any of this: it authenticates with `Authorization` headers only,
//! which a foreign page cannot make a browser send.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use hmac::{KeyInit, Mac};
use shared::config::Config;
use shared::crypto::is_token_shaped;
use shared::db::Db;
use shared::domain::User;
use shared::error::Error;
use shared::services::sessions::{self, SESSION_TTL};
use tokio::sync::OnceCell;

use crate::error::WebError;
use crate::state::AppState;

/// The form field (and header) that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
const CSRF_HEADER: &str = "x-csrf-token";

/// The browser behind a page request: its session token and the CSRF token bound to it.
#[derive(Clone)]
pub struct Visitor {
    sid: String,
    /// The token was made for this request (the browser sent none): no session can match it.
    fresh: bool,
    pub csrf_token: String,
    /// The session's user, looked up once per request however many callers ask (the guard,
    /// the handler, the page's navigation); clones of the visitor share it.
    user: Arc<OnceCell<Option<User>>>,
}

/// What a handler asks the [`layer`] to do with the session cookie (a response extension).
#[derive(Clone)]
pub enum SessionChange {
    /// Logged in: the cookie now holds this new session token.
    Start(String),
    /// Logged out (or signed out by a password reset): the cookie gets a fresh anonymous token.
    End,
}

/// The cookie's name: `__Host-sid` when the site is HTTPS, `sid` otherwise (a `__Host-` cookie
/// needs `Secure`, which a browser refuses on plain-HTTP localhost).
pub fn cookie_name(config: &Config) -> &'static str {
    if secure(config) { "__Host-sid" } else { "sid" }
}

fn secure(config: &Config) -> bool {
    config.force_https || config.site_url.scheme() == "https"
}

/// The session token from the request's `Cookie` headers, if there is one of the shape we make.
pub fn session_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && is_token_shaped(c.value()))
        .map(|c| c.value_raw().unwrap_or_default())
        .filter(|v| is_token_shaped(v))
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn csrf_mac(config: &Config, sid: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(config.secret_key.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"csrf:");
    mac.update(sid.as_bytes());
    mac
}

/// The CSRF token for a session token.
fn csrf_token(config: &Config, sid: &str) -> String {
    hex::encode(csrf_mac(config, sid).finalize().into_bytes())
}

/// Whether `submitted` is the CSRF token of `sid` (compared in constant time).
fn csrf_matches(config: &Config, sid: &str, submitted: &str) -> bool {
    hex::decode(submitted.trim())
        .is_ok_and(|bytes| csrf_mac(config, sid).verify_slice(&bytes).is_ok())
}

/// The layer around every page route: gives the request a [`Visitor`], refuses a cross-site
/// state-changing request (403), and writes the session cookie.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = &state.config;
    let name = cookie_name(config);
    let (sid, fresh) = match session_token(request.headers(), name) {
        Some(sid) => (sid.to_owned(), false),
        None => (shared::crypto::random_token(32), true),
    };
    let request = if is_safe(request.method()) {
        request
    } else {
        match check_request(config, &sid, fresh, request).await {
            Ok(request) => request,
            Err(refusal) => return refusal,
        }
    };
    let mut request = request;
    let visitor = Visitor::new(config, sid.clone(), fresh);
    request.extensions_mut().insert(visitor.clone());

    let mut response = next.run(request).await;
    if response.status().is_client_error() {
        // The error layer's page shows this visitor, its user already looked up.
        response.extensions_mut().insert(visitor);
    }
    let cookie_value = match response.extensions_mut().remove::<SessionChange>() {
        Some(SessionChange::Start(token)) => token,
        Some(SessionChange::End) => shared::crypto::random_token(32),
        // Set on every page so the browser's expiry slides with the server's.
        None => sid,
    };
    let cookie = Cookie::build((name, cookie_value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(config))
        .max_age(cookie::time::Duration::seconds(SESSION_TTL.num_seconds()));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
    // Pages carry a per-browser token: no shared cache may keep them.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
    response
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The origin and token checks for a state-changing request; returns the request (its body
/// restored) or the 403.
async fn check_request(
    config: &Config,
    sid: &str,
    fresh: bool,
    request: Request,
) -> Result<Request, Response> {
    let forbidden = |message: &str| WebError(Error::Forbidden(message.to_owned())).into_response();
    check_origin(config, &request).map_err(|m| forbidden(&m))?;
    if fresh {
        // No cookie: no form of ours was loaded in this browser (or cookies are off).
        return Err(forbidden(
            "this form has expired or cookies are disabled; reload the page and try again",
        ));
    }
    let from_header = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request, submitted) = match from_header {
        Some(token) => (request, Some(token)),
        None => {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, config.max_request_bytes)
                .await
                .map_err(|_| {
                    WebError(Error::BadRequest(
                        "the request body could not be read or is too large".into(),
                    ))
                    .into_response()
                })?;
            let is_form = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            let token = is_form
                .then(|| {
                    form_urlencoded::parse(&bytes)
                        .find(|(k, _)| k == CSRF_FIELD)
                        .map(|(_, v)| v.into_owned())
                })
                .flatten();
            (Request::from_parts(parts, Body::from(bytes)), token)
        }
    };
    match submitted {
        Some(token) if csrf_matches(config, sid, &token) => Ok(request),
        Some(_) => Err(forbidden(
            "this form has expired (the security token does not match); reload the page and try again",
        )),
        None => Err(forbidden("the form's security token is missing")),
    }
}

/// `Origin`, else `Referer`, must be one of ours (module docs).
fn check_origin(config: &Config, request: &Request) -> Result<(), String> {
    let headers = request.headers();
    let origin = match headers.get(header::ORIGIN) {
        Some(value) => value.to_str().unwrap_or("null").to_owned(),
        None => {
            let Some(referer) = headers.get(header::REFERER) else {
                return Err("the request says neither where it comes from (Origin) nor which page sent it (Referer)".into());
            };
            referer
                .to_str()
                .ok()
                .and_then(|r| url::Url::parse(r).ok())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|| "null".to_owned())
        }
    };
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("{}://{}", crate::security::forwarded_proto(headers), host));
    let ours = origin == config.site_url.origin().ascii_serialization()
        || own.as_deref() == Some(origin.as_str())
        || config.cors_allowed_origins.contains(&origin);
    if ours {
        Ok(())
    } else {
        Err(format!(
            "a form from {origin} cannot change anything here (cross-site request refused)"
        ))
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, WebError> {
        parts.extensions.get::<Visitor>().cloned().ok_or_else(|| {
            WebError::unexpected(anyhow::anyhow!(
                "a page handler ran outside the session layer"
            ))
        })
    }
}

impl Visitor {
    fn new(config: &Config, sid: String, fresh: bool) -> Self {
        Self {
            csrf_token: csrf_token(config, &sid),
            sid,
            fresh,
            user: Arc::default(),
        }
    }

    /// The browser that sent this session token (from its cookie).
    pub fn with_token(config: &Config, sid: String) -> Self {
        Self::new(config, sid, false)
    }

    /// A visitor whose session is not looked up: it shows as signed out.
    pub fn anonymous() -> Self {
        Self {
            sid: String::new(),
            fresh: true,
            csrf_token: String::new(),
            user: Arc::default(),
        }
    }

    /// The session token, which opens the session and is kept by a password change.
    pub fn token(&self) -> &str {
        &self.sid
    }

    /// The signed-in user, if the token opens a live session. A token made for this request
    /// opens none, so a first-time visitor costs no database round trip (the lookup also
    /// slides a session's expiry: an `update` on every page).
    pub async fn user(&self, db: &Db) -> Result<Option<User>, WebError> {
        if self.fresh {
            return Ok(None);
        }
        let user = self
            .user
            .get_or_try_init(|| sessions::session_user(db, &self.sid))
            .await?;
        Ok(user.clone())
    }
}

/// Sends a visitor who is not signed in to the login page, and back here afterwards: to this
/// page for a GET, to `after_post` for a form (which cannot be replayed).
pub fn login_redirect(method: &Method, uri: &axum::http::Uri, after_post: &str) -> Response {
    let back = if method == Method::GET {
        uri.path_and_query().map_or("/", |p| p.as_str())
    } else {
        after_post
    };
    let target = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", back)
        .finish();
    Redirect::to(&format!("/login?{target}")).into_response()
}

/// A redirect after a form (303, so the browser follows with GET), optionally changing the
/// session.
pub fn see_other(to: &str, change: Option<SessionChange>) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response();
    if let Some(change) = change {
        response.extensions_mut().insert(change);
    }
    response
}

/// A local path to return to after login; anything that could lead off-site becomes `None`.
pub fn safe_next(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        for ok in ["/", "/account", "/admin/users?page=2"] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "https://evil.tld/",
            "//evil.tld",
            "/\\evil.tld",
            "\\\\evil.tld",
            "/a\\b",
            "/x\r\nSet-Cookie: a=b",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_session_token_is_read_only_from_a_well_formed_cookie_of_our_name() {
        let token = "ab".repeat(32);
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            format!("other=1; sid={token}; theme=dark").parse().unwrap(),
        );
        assert_eq!(session_token(&headers, "sid"), Some(token.as_str()));
        assert_eq!(session_token(&headers, "__Host-sid"), None);
        for bad in [
            "sid=short",
            "sid=",
            "sid",
            "sid=\"quoted\"",
            &format!("sid={token}x"),
        ] {
            let mut headers = HeaderMap::new();
            headers.append(header::COOKIE, bad.parse().unwrap());
            assert_eq!(session_token(&headers, "sid"), None, "{bad}");
        }
    }
}
