//! `GET /healthz`: is this instance able to serve? JSON, 200 or 503.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    database: &'static str,
    version: &'static str,
}

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
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
    (
        code,
        Json(Health {
            status,
            database,
            version: env!("CARGO_PKG_VERSION"),
        }),
    )
}
