//! Notes in the JSON API: the token's user reads and changes their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::guide::domain::notes::Note;
use shared::guide::services::notes;
use uuid::Uuid;

use super::{ApiUser, JsonObject};
use crate::error::WebError;
use crate::paging::{PageBody, PageQuery};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/notes", get(list).post(create))
        .route("/api/notes/{id}/archive", post(archive))
}

#[derive(Serialize)]
pub struct NoteJson {
    id: Uuid,
    body: String,
    created_at: DateTime<Utc>,
}

impl From<Note> for NoteJson {
    fn from(n: Note) -> Self {
        Self {
            id: n.id,
            body: n.body,
            created_at: n.created_at,
        }
    }
}

#[derive(Deserialize)]
struct NewNote {
    body: String,
}

/// `GET /api/notes`: the caller's notes, newest first, paginated.
async fn list(
    State(state): State<AppState>,
    api: ApiUser,
    query: PageQuery,
) -> Result<Json<PageBody<NoteJson>>, WebError> {
    let page = notes::list_notes(&state.db, &api.user, query.request).await?;
    Ok(Json(query.body(page.map(NoteJson::from))))
}

/// `POST /api/notes`: 201 with the note; a refused body is 422 naming `body`.
async fn create(
    State(state): State<AppState>,
    api: ApiUser,
    JsonObject(new): JsonObject<NewNote>,
) -> Result<(StatusCode, Json<NoteJson>), WebError> {
    let note = notes::add_note(&state.db, &api.user, &new.body).await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

/// `POST /api/notes/{id}/archive`: 204; another user's note is a 404.
async fn archive(
    State(state): State<AppState>,
    api: ApiUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, WebError> {
    notes::archive_note(&state.db, &api.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
