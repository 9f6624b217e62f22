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

/// When a session may be used and extended (see [`touch_session`]).
pub struct Lifetime {
    pub now: DateTime<Utc>,
    /// The new expiry of a session that is extended (sliding expiry).
    pub expires_at: DateTime<Utc>,
    /// Only sessions created after this are extended: an older one keeps its expiry, which is
    /// then never later than its absolute end.
    pub extend_if_created_after: DateTime<Utc>,
    /// Sessions created before this are over, whatever their expiry says.
    pub created_after: DateTime<Utc>,
}

/// The user of a live session of an active account, extending the session in the same
/// statement. The absolute lifetime is kept without date arithmetic in SQL (which SQLite and
/// PostgreSQL spell differently), and `expires_at` stays the truth that `purge-expired` and
/// the admin's counts read.
pub async fn touch_session(
    exec: &mut impl Exec,
    token_hash: &str,
    lifetime: &Lifetime,
) -> sqlx::Result<Option<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update sessions set last_seen_at = $2, \
                 expires_at = case when created_at > $4 then $3 else expires_at end \
             where token_hash = $1 and expires_at > $2 and created_at > $5 \
             and user_id in (select id from users where is_active) \
             returning user_id",
        )
        .bind(token_hash)
        .bind(lifetime.now)
        .bind(lifetime.expires_at)
        .bind(lifetime.extend_if_created_after)
        .bind(lifetime.created_after)
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

/// A live session as the admin lists it. `token_hash` stays inside `shared`: the admin's pages
/// name a session by a handle derived from it (`services::admin`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A user's unexpired sessions, most recently seen first.
pub async fn list_sessions_of_user(
    exec: &mut impl Exec,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<SessionRow>> {
    on_conn!(exec, |c| {
        sqlx::query_as(
            "select token_hash, created_at, last_seen_at, expires_at from sessions \
             where user_id = $1 and expires_at > $2 order by last_seen_at desc, token_hash",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&mut *c)
        .await
    })
}
