//! Account pages: sign up, verify the address, log in and out, reset the password, and the
//! account page (change the password, manage API tokens). Each calls the same use case as its
//! JSON twin in `crate::api`; only the rendering differs.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use shared::error::{Error, FieldErrors};
use shared::services::{accounts, sessions};
use uuid::Uuid;

use super::{Notice, Page, PageResult, SignedIn, with_status};
use crate::client::ClientIp;
use crate::error::WebError;
use crate::session::{SessionChange, safe_next, see_other};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", get(signup_form).post(signup))
        .route("/signup/sent", get(signup_sent))
        .route("/verify-email", get(verify_form).post(verify))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route(
            "/password-reset",
            get(reset_request_form).post(reset_request),
        )
        .route("/password-reset/sent", get(reset_request_sent))
        .route("/password-reset/confirm", get(reset_form).post(reset))
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/account/verification", post(resend_verification))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

/// A form shown again with what was wrong: 422, the entered values (never a password) and a
/// message per field.
fn invalid(page: Html<String>) -> Response {
    with_status(StatusCode::UNPROCESSABLE_ENTITY, page)
}

/// A page that only says something, with one link onwards.
async fn message(page: &Page, title: &str, text: &str, link: (&str, &str)) -> PageResult {
    let ctx = context! { title, text, link_href => link.0, link_label => link.1 };
    Ok(page.render("message.html", ctx).await?.into_response())
}

// ---- Sign up -----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignupForm {
    email: String,
    password: String,
}

async fn signup_form(page: Page) -> PageResult {
    if page.user().await?.is_some() {
        return Ok(see_other("/account", None));
    }
    let ctx = context! { email => "", errors => FieldErrors::new() };
    Ok(page.render("signup.html", ctx).await?.into_response())
}

async fn signup_sent(page: Page) -> PageResult {
    message(
        &page,
        "Check your inbox",
        &format!(
            "We sent you a link to confirm your address. It works for {} hours. \
             If the address already had an account, we sent it a reminder instead.",
            accounts::VERIFY_EMAIL_VALID.num_hours()
        ),
        ("/login", "Go to the login page"),
    )
    .await
}

async fn signup(
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<SignupForm>,
) -> PageResult {
    match accounts::signup(&state.db, &state.mailing(), &form.email, &form.password).await {
        // Redirected, so reloading the answer does not sign up (and email) again.
        Ok(()) => Ok(see_other("/signup/sent", None)),
        Err(Error::Invalid(errors)) => {
            let ctx = context! { email => form.email, errors };
            Ok(invalid(page.render("signup.html", ctx).await?))
        }
        Err(e) => Err(e.into()),
    }
}

// ---- Verify the address --------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

/// The link in the email shows a button rather than verifying on GET: mail scanners open
/// links, and would otherwise use up the single-use token before the person clicks.
async fn verify_form(page: Page, Query(query): Query<TokenQuery>) -> PageResult {
    if query.token.is_empty() {
        return Err(WebError(Error::BadRequest(
            "this verification link has no token; open the link from the email again".into(),
        )));
    }
    let ctx = context! { token => query.token };
    Ok(page.render("verify_email.html", ctx).await?.into_response())
}

async fn verify(
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<TokenQuery>,
) -> PageResult {
    let signed_in = page.user().await?;
    if let Err(e) = accounts::verify_email(&state.db, &form.token).await {
        let Error::BadRequest(text) = e else {
            return Err(e.into());
        };
        // A used or expired link: say so, and show the way to a new one.
        let onwards = if signed_in.is_some() {
            ("/account", "Get a new link from your account page")
        } else {
            ("/login?next=%2Faccount", "Log in to get a new link")
        };
        let page = message(&page, "This link cannot be used", &text, onwards).await?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let signed_in = signed_in.is_some();
    Ok(if signed_in {
        see_other("/account?notice=verified", None)
    } else {
        see_other("/login?notice=verified", None)
    })
}

// ---- Log in and out ------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    next: String,
    notice: String,
}

fn login_notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "verified" => "Your address is verified. Log in to continue.",
        "password-reset" => {
            "Your password is changed and every session was signed out. Log in with the new one."
        }
        "logged-out" => "You are logged out.",
        _ => return None,
    })
}

async fn login_form(page: Page, Query(query): Query<LoginQuery>) -> PageResult {
    let next = safe_next(&query.next);
    if page.user().await?.is_some() {
        // Already signed in: on to where the login was for (never back to a login page, which
        // would send the browser round in circles), as /signup does.
        let to = next.filter(|n| !is_login_page(n)).unwrap_or("/account");
        return Ok(see_other(to, None));
    }
    let ctx = context! {
        email => "",
        next => next.unwrap_or(""),
        notice => login_notice(&query.notice),
        error => None::<String>,
    };
    Ok(page.render("login.html", ctx).await?.into_response())
}

/// `/login` itself, with or without a query: a `next` that must not be followed by a visitor
/// who is already signed in.
fn is_login_page(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/') == "/login"
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    next: String,
}

async fn login(
    State(state): State<AppState>,
    page: Page,
    ClientIp(client): ClientIp,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let next = safe_next(&form.next);
    let error = match sessions::log_in(&state.db, &form.email, &form.password, &client).await {
        Ok((_, token)) => {
            // Logging in over another session (a shared computer) ends the old one.
            sessions::log_out(&state.db, page.visitor().token()).await?;
            let to = next.unwrap_or("/account");
            return Ok(see_other(to, Some(SessionChange::Start(token))));
        }
        Err(Error::Unauthenticated) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "That email and password do not match an account.".to_owned(),
            None,
        ),
        Err(Error::TooManyRequests { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed attempts. Try again in {} minutes, or reset your password.",
                retry_after_secs.div_ceil(60)
            ),
            Some(retry_after_secs),
        ),
        Err(e) => return Err(e.into()),
    };
    let (status, text, retry_after) = error;
    let ctx = context! {
        email => form.email,
        next => next.unwrap_or(""),
        notice => None::<String>,
        error => text,
    };
    let mut response = with_status(status, page.render("login.html", ctx).await?);
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(response)
}

/// Ends the session on the server and gives the browser a new anonymous token.
async fn logout(State(state): State<AppState>, page: Page) -> PageResult {
    sessions::log_out(&state.db, page.visitor().token()).await?;
    Ok(see_other(
        "/login?notice=logged-out",
        Some(SessionChange::End),
    ))
}

// ---- Password reset ------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct EmailForm {
    email: String,
}

/// A signed-in user changes the password on the account page (as /signup and /login, the
/// form is for visitors).
async fn reset_request_form(page: Page) -> PageResult {
    if page.user().await?.is_some() {
        return Ok(see_other("/account", None));
    }
    let ctx = context! { email => None::<String> };
    Ok(page
        .render("password_reset.html", ctx)
        .await?
        .into_response())
}

async fn reset_request(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Form(form): Form<EmailForm>,
) -> PageResult {
    accounts::request_password_reset(&state.db, &state.mailing(), &form.email, &client).await?;
    // Redirected, so reloading the answer does not send another email.
    Ok(see_other("/password-reset/sent", None))
}

async fn reset_request_sent(page: Page) -> PageResult {
    message(
        &page,
        "Check your inbox",
        &format!(
            "If the address has an account, a link to choose a new password is on its way. \
             It works for {} minutes.",
            accounts::RESET_PASSWORD_VALID.num_minutes()
        ),
        ("/login", "Back to the login page"),
    )
    .await
}

async fn reset_form(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<TokenQuery>,
) -> PageResult {
    if query.token.is_empty() {
        return Err(WebError(Error::BadRequest(
            "this reset link has no token; open the link from the email again".into(),
        )));
    }
    // A dead link says so now, not after a new password has been typed.
    if !accounts::reset_link_is_live(&state.db, &query.token).await? {
        return dead_reset_link(&page).await;
    }
    let ctx = context! { token => query.token, errors => FieldErrors::new() };
    Ok(page
        .render("password_reset_confirm.html", ctx)
        .await?
        .into_response())
}

/// A used, expired or unknown reset link (400), with the way to a new one.
async fn dead_reset_link(page: &Page) -> PageResult {
    let answer = message(
        page,
        "This link cannot be used",
        &format!(
            "This password reset link is used, expired or unknown. Each link works once, for \
             {} minutes. Ask for a new one and use the newest email.",
            accounts::RESET_PASSWORD_VALID.num_minutes()
        ),
        ("/password-reset", "Ask for a new link"),
    )
    .await?;
    Ok((StatusCode::BAD_REQUEST, answer).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResetForm {
    token: String,
    password: String,
}

/// Sets the new password; every session is revoked, this browser's included.
async fn reset(
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<ResetForm>,
) -> PageResult {
    match accounts::reset_password(&state.db, &form.token, &form.password).await {
        Ok(_) => Ok(see_other(
            "/login?notice=password-reset",
            Some(SessionChange::End),
        )),
        Err(Error::Invalid(errors)) => {
            let ctx = context! { token => form.token, errors };
            Ok(invalid(
                page.render("password_reset_confirm.html", ctx).await?,
            ))
        }
        // The link died while the form was open (used in another tab, expired).
        Err(Error::BadRequest(_)) => dead_reset_link(&page).await,
        Err(e) => Err(e.into()),
    }
}

// ---- The account page ----------------------------------------------------------------------

fn account_notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "verified" => "Your address is verified.",
        "password-changed" => {
            "Your password is changed. Every other session and API token was signed out."
        }
        "verification-sent" => "A new verification link is on its way.",
        "verification-recent" => {
            "We sent you a link less than five minutes ago: please use that one, or try again in a few minutes."
        }
        "token-revoked" => "The token is revoked.",
        _ => return None,
    })
}

/// What the account page shows besides its forms.
struct AccountPage<'a> {
    notice: Option<&'a str>,
    errors: FieldErrors,
    /// A token just created: shown this once.
    new_token: Option<String>,
}

async fn render_account(
    state: &AppState,
    signed_in: &SignedIn,
    page: AccountPage<'_>,
) -> Result<Html<String>, WebError> {
    let tz = state.config.time_zone;
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    let tokens: Vec<_> = accounts::list_api_tokens(&state.db, &signed_in.user)
        .await?
        .into_iter()
        .map(|t| {
            context! {
                id => t.id.to_string(),
                name => t.name,
                created_at => when(t.created_at),
                last_used_at => t.last_used_at.map(when),
                expires_at => t.expires_at.map(when),
            }
        })
        .collect();
    let ctx = context! {
        notice => page.notice,
        errors => page.errors,
        new_token => page.new_token,
        tokens,
        joined => when(signed_in.user.created_at),
    };
    signed_in.page.render("account.html", ctx).await
}

async fn account(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<Notice>,
) -> PageResult {
    let page = AccountPage {
        notice: account_notice(&query.notice),
        errors: FieldErrors::new(),
        new_token: None,
    };
    Ok(render_account(&state, &signed_in, page)
        .await?
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChangePasswordForm {
    current_password: String,
    new_password: String,
}

/// Changes the password; this session stays, every other one and every API token go.
async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<ChangePasswordForm>,
) -> PageResult {
    let changed = accounts::change_password(
        &state.db,
        &signed_in.user,
        signed_in.page.visitor().token(),
        &form.current_password,
        &form.new_password,
    )
    .await;
    match changed {
        Ok(()) => Ok(see_other("/account?notice=password-changed", None)),
        Err(Error::Invalid(errors)) => {
            let page = AccountPage {
                notice: None,
                errors,
                new_token: None,
            };
            Ok(invalid(render_account(&state, &signed_in, page).await?))
        }
        Err(e) => Err(e.into()),
    }
}

async fn resend_verification(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    signed_in: SignedIn,
) -> PageResult {
    // Signed in: the page may say plainly whether a link went out.
    let sent = accounts::resend_verification(
        &state.db,
        &state.mailing(),
        signed_in.user.email.as_str(),
        &client,
    )
    .await?;
    let notice = if sent {
        "verification-sent"
    } else {
        "verification-recent"
    };
    Ok(see_other(&format!("/account?notice={notice}"), None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewTokenForm {
    name: String,
    /// Empty for a token that never expires.
    expires_in_days: String,
}

/// Creates an API token and shows it once, on this response only (never stored in clear).
async fn create_token(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<NewTokenForm>,
) -> PageResult {
    let request = accounts::NewApiToken {
        name: &form.name,
        // Not a number: 0, which the use case refuses with its message.
        expires_in_days: match form.expires_in_days.trim() {
            "" => None,
            days => Some(days.parse().unwrap_or(0)),
        },
    };
    let (status, page) = match accounts::create_api_token(&state.db, &signed_in.user, &request)
        .await
    {
        Ok(token) => (
            StatusCode::OK,
            AccountPage {
                notice: Some("Your new token is below. Copy it now: it will not be shown again."),
                errors: FieldErrors::new(),
                new_token: Some(token),
            },
        ),
        Err(Error::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            AccountPage {
                notice: None,
                errors,
                new_token: None,
            },
        ),
        Err(e) => return Err(e.into()),
    };
    let mut response = with_status(status, render_account(&state, &signed_in, page).await?);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_token(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
) -> PageResult {
    accounts::revoke_api_token_by_id(&state.db, &signed_in.user, id).await?;
    Ok(see_other("/account?notice=token-revoked", None))
}
