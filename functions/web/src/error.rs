//! Errors as the contract shows them.
//!
//! Handlers return [`WebError`] (a `shared::Error` with an HTTP status). Its response carries
//! an [`ErrorBody`] in the response extensions; the pipeline's error layer
//! ([`crate::pipeline`]) then writes that body as JSON (`{"error": {"code", "message",
//! "fields"}}`) for `/api/` and clients asking for JSON, or as an HTML page for browsers.
//! Errors produced outside our handlers (axum's extractor rejections, 405s, panics) go through
//! the same layer, so every error looks the same. Internal causes are logged with their whole
//! chain and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::error::{Error, FieldErrors};

/// The `Retry-After` of a 503, in seconds: the pool's acquire timeout. A 503 mostly means the
/// request already waited that long for a database connection (the pool full, or the server
/// refusing new connections); a client that retries sooner lands in the same wait. A small
/// constant, not a promise: docs/scaling.md has what frees connections and when.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = shared::config::ACQUIRE_TIMEOUT.as_secs();

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

/// A response whose body the pipeline's error layer writes.
pub(crate) fn error_response(status: StatusCode, message: String, fields: FieldErrors) -> Response {
    let body = ErrorBody {
        code: code_for(status),
        message,
        fields,
    };
    let mut response = json_error(status, &body);
    response.extensions_mut().insert(body);
    response
}

/// The contract's JSON error document.
pub(crate) fn json_error(status: StatusCode, body: &ErrorBody) -> Response {
    (status, axum::Json(Envelope { error: body })).into_response()
}

/// The router's fallback: nothing at this path.
pub async fn not_found() -> WebError {
    WebError::not_found("nothing lives at this address")
}

impl ErrorBody {
    /// The body of an error made outside our handlers (an axum rejection, which says what was
    /// wrong in plain text, or an empty 405): the text of a client error, else a message of
    /// our own for the status.
    pub(crate) fn for_status(status: StatusCode, text: &str) -> Self {
        let message = if status.is_client_error() && !text.is_empty() {
            text.to_owned()
        } else {
            default_message(status).to_owned()
        };
        Self {
            code: code_for(status),
            message,
            fields: FieldErrors::new(),
        }
    }
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

/// The title of an error's HTML page.
pub(crate) fn page_title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "Page not found",
        s if s >= 500 => "Something went wrong",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_variant_maps_to_its_status_and_code() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::BadRequest("bad page".into()), 400, "bad_request"),
            (Error::Unauthenticated, 401, "unauthenticated"),
            (Error::Forbidden("staff only".into()), 403, "forbidden"),
            (Error::NotFound("no such user".into()), 404, "not_found"),
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
