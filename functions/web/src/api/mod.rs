//! The JSON API. Every route answers JSON, errors included (`{"error": {...}}`), and
//! authenticates with `Authorization: Bearer <token>` or `Token <token>` only: never a cookie.

// example-app:begin
mod classes;

// example-app:end
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shared::domain::User;
use shared::error::Error;
use shared::services::accounts;
use uuid::Uuid;

use crate::client::ClientIp;
use crate::error::WebError;
use crate::state::AppState;

/// Routes with their full paths (`/api/...`); an unknown `/api/` path gets the JSON 404 from the
/// router's fallback.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/verify", post(verify))
        .route("/api/auth/verify/resend", post(resend_verification))
        .route("/api/auth/token", post(create_token).delete(revoke_token))
        .route("/api/auth/password-reset", post(password_reset))
        .route(
            "/api/auth/password-reset/confirm",
            post(password_reset_confirm),
        )
        .route("/api/me", get(me))
        .route("/api/me/password", post(change_password))
        // example-app:begin
        .merge(classes::routes())
    // example-app:end
}

/// The OpenAPI 3 document of this API (`assets/openapi.json`; a test keeps it and the routes
/// in step).
pub const OPENAPI: &str = include_str!("../../../../assets/openapi.json");

async fn openapi() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    message: &'static str,
}

/// A JSON request body, which must be an object as the OpenAPI document says. serde's derived
/// structs also accept an array of their fields in order (`[]` for one whose fields all have
/// defaults: a PATCH with `[]` answered 200), so an array, or any other non-object, is refused
/// with 422 after axum's own checks (415 without a JSON content type, 400 for malformed JSON,
/// 422 for the wrong fields, each with axum's message).
pub struct JsonObject<T>(pub T);

impl<S, T> FromRequest<S> for JsonObject<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        // The body size limit wraps the body: reading past it fails here with 413.
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response())?;
        let request = Request::from_parts(parts, Body::from(bytes.clone()));
        let Json(value) = Json::<T>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "Failed to deserialize the JSON body into the target type: the body must be a JSON object",
            )
                .into_response());
        }
        Ok(Self(value))
    }
}

/// 202 with the same body whatever the outcome, so the answer reveals nothing.
fn accepted(message: &'static str) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted",
            message,
        }),
    )
}

/// `POST /api/auth/signup`: 202 whether or not the address was registered.
async fn signup(
    State(state): State<AppState>,
    JsonObject(body): JsonObject<Credentials>,
) -> Result<(StatusCode, Json<Accepted>), WebError> {
    accounts::signup(&state.db, &state.mailing(), &body.email, &body.password).await?;
    Ok(accepted(
        "check your inbox for a link to confirm your address",
    ))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

/// `POST /api/auth/verify`: uses the token from the verification email.
async fn verify(
    State(state): State<AppState>,
    JsonObject(body): JsonObject<TokenBody>,
) -> Result<Json<Me>, WebError> {
    let user = accounts::verify_email(&state.db, &body.token).await?;
    Ok(Json(Me::from(&user)))
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

/// `POST /api/auth/password-reset`: 202 whether or not the address has an account.
async fn password_reset(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonObject(body): JsonObject<EmailBody>,
) -> Result<(StatusCode, Json<Accepted>), WebError> {
    accounts::request_password_reset(&state.db, &state.mailing(), &body.email, &client).await?;
    Ok(accepted(
        "if this address has an account, a reset link is on its way",
    ))
}

/// `POST /api/auth/verify/resend`: 202 for any address; an unverified account gets a new
/// link, at most every five minutes.
async fn resend_verification(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonObject(body): JsonObject<EmailBody>,
) -> Result<(StatusCode, Json<Accepted>), WebError> {
    accounts::resend_verification(&state.db, &state.mailing(), &body.email, &client).await?;
    Ok(accepted(
        "if this address has an unverified account, a new link is on its way",
    ))
}

#[derive(Deserialize)]
struct ResetBody {
    token: String,
    password: String,
}

/// `POST /api/auth/password-reset/confirm`: a new password; every session and token revoked.
async fn password_reset_confirm(
    State(state): State<AppState>,
    JsonObject(body): JsonObject<ResetBody>,
) -> Result<Json<Me>, WebError> {
    let user = accounts::reset_password(&state.db, &body.token, &body.password).await?;
    Ok(Json(Me::from(&user)))
}

#[derive(Serialize)]
struct NewToken {
    token: String,
}

#[derive(Deserialize)]
struct TokenRequest {
    email: String,
    password: String,
    /// Shown in the account page's token list.
    #[serde(default)]
    name: Option<String>,
    /// Days until the token stops working; absent or null: until revoked.
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// `POST /api/auth/token`: email + password (and optionally a name and a lifetime in days)
/// -> a new API token.
async fn create_token(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonObject(body): JsonObject<TokenRequest>,
) -> Result<(StatusCode, Json<NewToken>), WebError> {
    let request = accounts::NewApiToken {
        name: body.name.as_deref().unwrap_or("api"),
        expires_in_days: body.expires_in_days,
    };
    let token =
        accounts::issue_api_token(&state.db, &body.email, &body.password, &request, &client)
            .await?;
    Ok((StatusCode::CREATED, Json(NewToken { token })))
}

/// `DELETE /api/auth/token`: revokes the token that authenticates this request.
async fn revoke_token(
    State(state): State<AppState>,
    bearer: BearerToken,
) -> Result<StatusCode, WebError> {
    accounts::revoke_api_token(&state.db, &bearer.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Me {
    id: Uuid,
    email: String,
    is_verified: bool,
    is_staff: bool,
    is_superuser: bool,
}

impl From<&User> for Me {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.to_string(),
            is_verified: u.is_verified,
            is_staff: u.is_staff,
            is_superuser: u.is_superuser,
        }
    }
}

/// `GET /api/me`.
async fn me(user: ApiUser) -> Json<Me> {
    Json(Me::from(&user.user))
}

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /api/me/password`: 204; every other session and token of the account is revoked.
async fn change_password(
    State(state): State<AppState>,
    user: ApiUser,
    JsonObject(body): JsonObject<ChangePassword>,
) -> Result<StatusCode, WebError> {
    accounts::change_password(
        &state.db,
        &user.user,
        &user.token,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token in `Authorization: Bearer <token>` or Django REST framework's `Token <token>`.
pub struct BearerToken(pub String);

/// Parses an `Authorization` value; `None` for any other scheme or a malformed token.
pub fn parse_authorization(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
        return None;
    }
    let token = token.trim();
    shared::crypto::is_token_shaped(token).then_some(token)
}

/// A 401 that tells the client how to authenticate.
pub struct Unauthenticated;

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        let mut response = WebError(Error::Unauthenticated).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = Unauthenticated;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_authorization)
            .map(|t| Self(t.to_owned()))
            .ok_or(Unauthenticated)
    }
}

/// The active user behind the request's API token, and that token.
pub struct ApiUser {
    pub user: User,
    pub token: String,
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match accounts::authenticate_api_token(&state.db, &token).await {
            Ok(user) => Ok(Self { user, token }),
            Err(Error::Unauthenticated) => Err(Unauthenticated.into_response()),
            Err(e) => Err(WebError(e).into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_accepts_bearer_and_drf_token_schemes_only() {
        let token = "a".repeat(64);
        for value in [
            format!("Bearer {token}"),
            format!("Token {token}"),
            format!("bearer  {token}"),
        ] {
            assert_eq!(parse_authorization(&value), Some(token.as_str()), "{value}");
        }
        for value in [
            format!("Basic {token}"),
            token.clone(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {}", "a".repeat(63)),
            format!("Bearer {}g", "a".repeat(63)),
            format!("Bearer {token} extra"),
        ] {
            assert_eq!(parse_authorization(&value), None, "{value:?}");
        }
    }
}
