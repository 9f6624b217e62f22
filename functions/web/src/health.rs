//! `GET /healthz`: is this instance able to serve? JSON, 200 or 503:
//! `{"status": "ok"|"unavailable", "database": "ok"|"unavailable"}`, plus the version with DEBUG
//! on.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    database: &'static str,
    /// With DEBUG on only: a version tells an attacker which known flaws to try.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    // Bounded: a health check that hangs is worse than one that says "unavailable".
    let ping = tokio::time::timeout(Duration::from_secs(3), state.db.ping()).await;
    let database_ok = match ping {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            false
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within 3 s");
            false
        }
    };
    let (code, status, database) = if database_ok {
        (StatusCode::OK, "ok", "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "unavailable",
        )
    };
    let mut response = (
        code,
        Json(Health {
            status,
            database,
            version: state.config.debug.then_some(env!("CARGO_PKG_VERSION")),
        }),
    )
        .into_response();
    if !database_ok {
        // Like every other 503 (crate::error).
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
        );
    }
    response
}
