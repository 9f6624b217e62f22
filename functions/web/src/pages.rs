//! HTML pages.

use axum::extract::State;
use axum::response::Html;
use minijinja::context;
use shared::config::DatabaseKind;

use crate::{AppState, WebError};

pub async fn home(State(state): State<AppState>) -> Result<Html<String>, WebError> {
    let database = match state.db.kind() {
        DatabaseKind::Sqlite => "SQLite",
        DatabaseKind::Postgres => "PostgreSQL",
    };
    state.templates.render("home.html", context! { database })
}
