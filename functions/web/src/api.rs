//! The JSON API. Every route answers JSON, errors included (`{"error": {...}}`).

use axum::Router;

use crate::AppState;

/// Routes with their full paths (`/api/...`). Resources arrive with the accounts and classes
/// issues; an unknown `/api/` path gets the JSON 404 from the router's fallback.
pub fn routes() -> Router<AppState> {
    Router::new()
}
