//! `sessions`: server-side sessions for HTML pages, keyed by the SHA-256 of the cookie's token.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Exec;
use crate::{execute, on_conn};

pub async fn insert_session(
    exec: &mut impl Exec,
    token_hash: &str,
    user_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "insert into sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             values ($1, $2, $3, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
    )?;
    Ok(())
}

/// The user of a live session of an active account, extending the session to `expires_at`
/// (sliding expiry) in the same statement.
pub async fn touch_session(
    exec: &mut impl Exec,
    token_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update sessions set last_seen_at = $2, expires_at = $3 \
             where token_hash = $1 and expires_at > $2 \
             and user_id in (select id from users where is_active) \
             returning user_id",
        )
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .fetch_optional(&mut *c)
        .await
    })
}

/// Ends one session; true when it existed.
pub async fn delete_session(exec: &mut impl Exec, token_hash: &str) -> sqlx::Result<bool> {
    let deleted = execute!(
        exec,
        sqlx::query("delete from sessions where token_hash = $1").bind(token_hash)
    )?;
    Ok(deleted > 0)
}
