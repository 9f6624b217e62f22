//! Notes: each user reads and changes their own, and nobody else's.

use uuid::Uuid;

use crate::clock;
use crate::db::Db;
use crate::domain::User;
use crate::error::{Error, Result};
use crate::guide::domain::notes::{Note, NoteBody};
use crate::guide::store::notes as store;
use crate::pagination::{Page, PageRequest};

/// Adds a note for `user`; a refused body is a 422 that names the `body` field.
pub async fn add_note(db: &Db, user: &User, body: &str) -> Result<Note> {
    let body = NoteBody::parse(body).map_err(|e| Error::invalid("body", e.0))?;
    let mut conn = db.acquire().await?;
    let note = store::insert_note(&mut conn, user.id, &body, clock::now()).await?;
    tracing::info!(note_id = %note.id, user_id = %user.id, "note added");
    Ok(note)
}

pub async fn list_notes(db: &Db, user: &User, request: PageRequest) -> Result<Page<Note>> {
    let mut conn = db.acquire().await?;
    let count = store::count_notes(&mut conn, user.id).await?;
    request.check(count)?;
    let notes = store::list_notes(&mut conn, user.id, request.limit(), request.offset()).await?;
    Ok(Page::new(request, count, notes))
}

/// Archives one of `user`'s notes. Someone else's note is as unknown as a missing one (404),
/// so ids reveal nothing.
pub async fn archive_note(db: &Db, user: &User, id: Uuid) -> Result<()> {
    let mut conn = db.acquire().await?;
    if !store::archive_note(&mut conn, user.id, id, clock::now()).await? {
        return Err(Error::NotFound("no such note".into()));
    }
    tracing::info!(note_id = %id, user_id = %user.id, "note archived");
    Ok(())
}
