//! `/notes`: the signed-in user's notes, a form to add one, a button to archive each.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{Value, context};
use serde::Deserialize;
use shared::error::{Error, FieldErrors};
use shared::guide::services::notes;
use uuid::Uuid;

use super::{PageResult, SignedIn, pager};
use crate::paging::PageQuery;
use crate::session::see_other;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/notes", get(list).post(add))
        .route("/notes/{id}/archive", post(archive))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NoteForm {
    body: String,
}

/// The list with the form; a refused note comes back in the form with its error (422).
async fn render(
    state: &AppState,
    signed_in: &SignedIn,
    query: &PageQuery,
    form: &NoteForm,
    errors: &FieldErrors,
) -> PageResult {
    let listed = notes::list_notes(&state.db, &signed_in.user, query.request).await?;
    let items: Vec<Value> = listed
        .results
        .iter()
        .map(|n| context! { id => n.id.to_string(), body => &n.body })
        .collect();
    let ctx = context! {
        notes => items,
        pager => pager(query, &listed),
        body => &form.body,
        errors,
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = signed_in.page.render("notes.html", ctx).await?;
    Ok((status, html).into_response())
}

async fn list(State(state): State<AppState>, signed_in: SignedIn, query: PageQuery) -> PageResult {
    render(
        &state,
        &signed_in,
        &query,
        &NoteForm::default(),
        &FieldErrors::new(),
    )
    .await
}

/// Adds a note, then back to the list (post, redirect, get).
async fn add(
    State(state): State<AppState>,
    signed_in: SignedIn,
    query: PageQuery,
    Form(form): Form<NoteForm>,
) -> PageResult {
    match notes::add_note(&state.db, &signed_in.user, &form.body).await {
        Ok(_) => Ok(see_other("/notes", None)),
        Err(Error::Invalid(errors)) => render(&state, &signed_in, &query, &form, &errors).await,
        Err(e) => Err(e.into()),
    }
}

async fn archive(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
) -> PageResult {
    notes::archive_note(&state.db, &signed_in.user, id).await?;
    Ok(see_other("/notes", None))
}
