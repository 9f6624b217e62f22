//! `email_tokens` (single-use links) and `api_tokens`. Only SHA-256 hashes of tokens are stored.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Exec;
use crate::domain::{ApiToken, TokenPurpose};
use crate::{execute, on_conn};

pub async fn insert_email_token(
    exec: &mut impl Exec,
    token_hash: &str,
    user_id: Uuid,
    purpose: TokenPurpose,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "insert into email_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .bind(expires_at)
    )?;
    Ok(())
}

/// Uses a token: atomically marks it used if it exists for `purpose`, is unused and has not
/// expired, and returns its user. A second use, or two concurrent ones, find `None`.
pub async fn use_email_token(
    exec: &mut impl Exec,
    token_hash: &str,
    purpose: TokenPurpose,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update email_tokens set used_at = $3 \
             where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3 \
             returning user_id",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&mut *c)
        .await
    })
}

/// Ends every unused token of `purpose` for a user (marks it used); returns how many. A
/// password change or a deactivation calls this for reset links: a link seen in a mailbox
/// must not outlive the password it was sent to replace.
pub async fn void_email_tokens(
    exec: &mut impl Exec,
    user_id: Uuid,
    purpose: TokenPurpose,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    execute!(
        exec,
        sqlx::query(
            "update email_tokens set used_at = $3 \
             where user_id = $1 and purpose = $2 and used_at is null",
        )
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
    )
}

/// The user of a token that could be used now, without using it.
pub async fn find_live_email_token(
    exec: &mut impl Exec,
    token_hash: &str,
    purpose: TokenPurpose,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "select user_id from email_tokens \
             where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&mut *c)
        .await
    })
}

/// `expires_at`: `None` for a token valid until revoked.
pub async fn insert_api_token(
    exec: &mut impl Exec,
    token_hash: &str,
    user_id: Uuid,
    name: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    execute!(
        exec,
        sqlx::query(
            "insert into api_tokens (id, user_id, token_hash, name, created_at, expires_at) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(user_id)
        .bind(token_hash)
        .bind(name)
        .bind(now)
        .bind(expires_at)
    )?;
    Ok(id)
}

/// The user an API token belongs to, if the token is live and the account active. Records the
/// use (`last_used_at`) in the same statement.
pub async fn touch_api_token(
    exec: &mut impl Exec,
    token_hash: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update api_tokens set last_used_at = $2 \
             where token_hash = $1 and (expires_at is null or expires_at > $2) \
             and user_id in (select id from users where is_active) \
             returning user_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *c)
        .await
    })
}

/// Revokes one token; true when it existed.
pub async fn delete_api_token(exec: &mut impl Exec, token_hash: &str) -> sqlx::Result<bool> {
    let deleted = execute!(
        exec,
        sqlx::query("delete from api_tokens where token_hash = $1").bind(token_hash)
    )?;
    Ok(deleted > 0)
}

#[derive(sqlx::FromRow)]
struct ApiTokenRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

/// A user's API tokens, newest first.
pub async fn list_api_tokens(exec: &mut impl Exec, user_id: Uuid) -> sqlx::Result<Vec<ApiToken>> {
    let rows: Vec<ApiTokenRow> = on_conn!(exec, |c| {
        sqlx::query_as(
            "select id, name, created_at, last_used_at, expires_at from api_tokens \
             where user_id = $1 order by created_at desc, id desc",
        )
        .bind(user_id)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|r| ApiToken {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
        })
        .collect())
}

/// Revokes a token by id, only if it belongs to `user_id`; true when it did.
pub async fn delete_api_token_of_user(
    exec: &mut impl Exec,
    id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<bool> {
    let deleted = execute!(
        exec,
        sqlx::query("delete from api_tokens where id = $1 and user_id = $2")
            .bind(id)
            .bind(user_id)
    )?;
    Ok(deleted > 0)
}
