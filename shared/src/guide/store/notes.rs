//! `notes`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Exec;
use crate::guide::domain::notes::{Note, NoteBody};
use crate::{execute, on_conn};

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: Uuid,
    user_id: Uuid,
    body: String,
    created_at: DateTime<Utc>,
}

impl From<NoteRow> for Note {
    fn from(r: NoteRow) -> Self {
        Note {
            id: r.id,
            user_id: r.user_id,
            body: r.body,
            created_at: r.created_at,
        }
    }
}

pub async fn insert_note(
    exec: &mut impl Exec,
    user_id: Uuid,
    body: &NoteBody,
    now: DateTime<Utc>,
) -> sqlx::Result<Note> {
    let id = Uuid::now_v7();
    execute!(
        exec,
        sqlx::query("insert into notes (id, user_id, body, created_at) values ($1, $2, $3, $4)")
            .bind(id)
            .bind(user_id)
            .bind(body.as_str())
            .bind(now)
    )?;
    Ok(Note {
        id,
        user_id,
        body: body.as_str().to_owned(),
        created_at: now,
    })
}

pub async fn count_notes(exec: &mut impl Exec, user_id: Uuid) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from notes where user_id = $1 and archived_at is null")
            .bind(user_id)
            .fetch_one(&mut *c)
            .await
    })
}

/// A page of a user's notes, newest first.
pub async fn list_notes(
    exec: &mut impl Exec,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Note>> {
    let rows: Vec<NoteRow> = on_conn!(exec, |c| {
        sqlx::query_as(
            "select id, user_id, body, created_at from notes \
             where user_id = $1 and archived_at is null \
             order by created_at desc, id desc limit $2 offset $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(rows.into_iter().map(Note::from).collect())
}

/// Archives one of the user's notes; false when they have no such note (the owner is part of
/// the statement, so another user's id changes nothing).
pub async fn archive_note(
    exec: &mut impl Exec,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let archived = execute!(
        exec,
        sqlx::query(
            "update notes set archived_at = $3 \
             where id = $1 and user_id = $2 and archived_at is null",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
    )?;
    Ok(archived > 0)
}

/// Deletes up to `limit` notes archived before `cutoff`; returns how many it deleted.
pub async fn delete_archived_notes(
    exec: &mut impl Exec,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<u64> {
    execute!(
        exec,
        sqlx::query(
            "delete from notes where id in \
             (select id from notes where archived_at < $1 limit $2)",
        )
        .bind(cutoff)
        .bind(limit)
    )
}
