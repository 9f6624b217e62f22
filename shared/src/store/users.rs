//! The `users` table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Conn, Exec, Tx};
use crate::domain::{EmailAddress, EmailKind, TokenPurpose, User};
use crate::store::tokens;
use crate::{execute, on_conn};

/// The columns [`UserRow`] reads (a macro so queries stay `&'static str` via `concat!`).
macro_rules! columns {
    () => {
        "id, email, password_hash, is_verified, is_active, is_staff, is_superuser, \
         created_at, updated_at, last_login_at"
    };
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    password_hash: Option<String>,
    is_verified: bool,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: EmailAddress::from_stored(r.email),
            password_hash: r.password_hash,
            is_verified: r.is_verified,
            is_active: r.is_active,
            is_staff: r.is_staff,
            is_superuser: r.is_superuser,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
        }
    }
}

/// What a new account starts with.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: EmailAddress,
    pub password_hash: Option<String>,
    pub is_verified: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// Inserts a user. A taken email fails with a unique violation
/// ([`is_unique_violation`](crate::error::is_unique_violation)).
pub async fn insert_user(
    exec: &mut impl Exec,
    new: &NewUser,
    now: DateTime<Utc>,
) -> sqlx::Result<User> {
    let sql = concat!(
        "insert into users (id, email, password_hash, is_verified, is_active, is_staff, \
         is_superuser, created_at, updated_at) \
         values ($1, $2, $3, $4, true, $5, $6, $7, $7) returning ",
        columns!()
    );
    let row: UserRow = on_conn!(exec, |c| {
        sqlx::query_as(sql)
            .bind(Uuid::now_v7())
            .bind(new.email.as_str())
            .bind(new.password_hash.as_deref())
            .bind(new.is_verified)
            .bind(new.is_staff)
            .bind(new.is_superuser)
            .bind(now)
            .fetch_one(&mut *c)
            .await
    })?;
    Ok(row.into())
}

pub async fn find_user_by_email(
    exec: &mut impl Exec,
    email: &EmailAddress,
) -> sqlx::Result<Option<User>> {
    let sql = concat!("select ", columns!(), " from users where lower(email) = $1");
    let row: Option<UserRow> = on_conn!(exec, |c| {
        sqlx::query_as(sql)
            .bind(email.as_str())
            .fetch_optional(&mut *c)
            .await
    })?;
    Ok(row.map(User::from))
}

pub async fn find_user_by_id(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<Option<User>> {
    let sql = concat!("select ", columns!(), " from users where id = $1");
    let row: Option<UserRow> = on_conn!(exec, |c| {
        sqlx::query_as(sql).bind(id).fetch_optional(&mut *c).await
    })?;
    Ok(row.map(User::from))
}

/// Gives an existing account the superuser (and staff, verified, active) flags.
pub async fn promote_to_superuser(
    exec: &mut impl Exec,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "update users set is_superuser = true, is_staff = true, is_verified = true, \
             is_active = true, updated_at = $2 where id = $1",
        )
        .bind(id)
        .bind(now)
    )?;
    Ok(())
}

pub async fn count_users(exec: &mut impl Exec) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from users")
            .fetch_one(&mut *c)
            .await
    })
}

/// Marks the address verified; true when the account exists.
pub async fn mark_user_verified(
    exec: &mut impl Exec,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = execute!(
        exec,
        sqlx::query("update users set is_verified = true, updated_at = $2 where id = $1")
            .bind(id)
            .bind(now)
    )?;
    Ok(updated > 0)
}

/// Locks a user's row until `tx` ends (PostgreSQL's `for update`), so two requests that
/// read and then write on the account's behalf ("was an email sent this hour? no: send one")
/// go one after the other instead of both reading "no". SQLite needs nothing: its write
/// transactions (`begin immediate`) already hold the whole database.
pub async fn lock_user(tx: &mut Tx, id: Uuid) -> sqlx::Result<()> {
    match tx.conn() {
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(_) => Ok(()),
        Conn::Postgres(c) => sqlx::query("select id from users where id = $1 for update")
            .bind(id)
            .execute(c)
            .await
            .map(|_| ()),
    }
}

/// Whether an email of `kind` went to `to_address` since `since` (to avoid repeating one).
pub async fn recent_email_exists(
    exec: &mut impl Exec,
    to_address: &str,
    kind: EmailKind,
    since: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(count_recent_emails(exec, to_address, kind, since).await? > 0)
}

/// How many emails of `kind` went to `to_address` since `since`.
pub async fn count_recent_emails(
    exec: &mut impl Exec,
    to_address: &str,
    kind: EmailKind,
    since: DateTime<Utc>,
) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "select count(*) from emails where to_address = $1 and kind = $2 and created_at > $3",
        )
        .bind(to_address)
        .bind(kind.as_str())
        .bind(since)
        .fetch_one(&mut *c)
        .await
    })
}

pub async fn set_password_hash(
    exec: &mut impl Exec,
    id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
            .bind(id)
            .bind(password_hash)
            .bind(now)
    )?;
    Ok(())
}

/// Ends every session and revokes every API token of a user, except the session or API token
/// whose hash is `keep_token_hash` (the one making a request that should stay signed in), and
/// ends every unused password-reset link. Returns how many sessions and API tokens went.
///
/// Every password change (reset, account page, API, the deploy hook's takeover) and every
/// deactivation calls this in its transaction, so none of them can forget a credential.
pub async fn revoke_credentials(
    exec: &mut impl Exec,
    id: Uuid,
    keep_token_hash: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    tokens::void_email_tokens(exec, id, TokenPurpose::ResetPassword, now).await?;
    // Stored hashes are never empty, so '' keeps nothing.
    let keep = keep_token_hash.unwrap_or("");
    let sessions = execute!(
        exec,
        sqlx::query("delete from sessions where user_id = $1 and token_hash <> $2")
            .bind(id)
            .bind(keep)
    )?;
    let tokens = execute!(
        exec,
        sqlx::query("delete from api_tokens where user_id = $1 and token_hash <> $2")
            .bind(id)
            .bind(keep)
    )?;
    Ok(sessions + tokens)
}

pub async fn record_login(exec: &mut impl Exec, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query("update users set last_login_at = $2 where id = $1")
            .bind(id)
            .bind(now)
    )?;
    Ok(())
}

/// The admin's user search. `email_like` is a pattern from
/// [`contains_pattern`](crate::store::admin::contains_pattern); a `None` flag matches either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFilter {
    pub email_like: String,
    pub verified: Option<bool>,
    pub staff: Option<bool>,
    pub active: Option<bool>,
}

/// Every user.
impl Default for UserFilter {
    fn default() -> Self {
        Self {
            email_like: "%".into(),
            verified: None,
            staff: None,
            active: None,
        }
    }
}

macro_rules! user_filter {
    () => {
        " from users where lower(email) like $1 escape '\\' \
          and ($2 is null or is_verified = $2) and ($3 is null or is_staff = $3) \
          and ($4 is null or is_active = $4)"
    };
}

pub async fn count_filtered_users(exec: &mut impl Exec, filter: &UserFilter) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(concat!("select count(*)", user_filter!()))
            .bind(&filter.email_like)
            .bind(filter.verified)
            .bind(filter.staff)
            .bind(filter.active)
            .fetch_one(&mut *c)
            .await
    })
}

/// Newest accounts first.
pub async fn list_filtered_users(
    exec: &mut impl Exec,
    filter: &UserFilter,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<User>> {
    let rows: Vec<UserRow> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            columns!(),
            user_filter!(),
            " order by created_at desc, id desc limit $5 offset $6"
        ))
        .bind(&filter.email_like)
        .bind(filter.verified)
        .bind(filter.staff)
        .bind(filter.active)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(rows.into_iter().map(User::from).collect())
}

/// Sets `is_active`; true when the account exists.
pub async fn set_user_active(
    exec: &mut impl Exec,
    id: Uuid,
    active: bool,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = execute!(
        exec,
        sqlx::query("update users set is_active = $2, updated_at = $3 where id = $1")
            .bind(id)
            .bind(active)
            .bind(now)
    )?;
    Ok(updated > 0)
}

/// Sets `is_staff`; true when the account exists.
pub async fn set_user_staff(
    exec: &mut impl Exec,
    id: Uuid,
    staff: bool,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = execute!(
        exec,
        sqlx::query("update users set is_staff = $2, updated_at = $3 where id = $1")
            .bind(id)
            .bind(staff)
            .bind(now)
    )?;
    Ok(updated > 0)
}

/// A user's live sessions and API tokens, counted.
pub async fn count_credentials(
    exec: &mut impl Exec,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<(i64, i64)> {
    on_conn!(exec, |c| {
        sqlx::query_as(
            "select (select count(*) from sessions where user_id = $1 and expires_at > $2), \
                    (select count(*) from api_tokens where user_id = $1 \
                        and (expires_at is null or expires_at > $2))",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&mut *c)
        .await
    })
}

/// Deletes an account; true when it existed. The database cascades its sessions, API tokens
/// and email tokens, and keeps its emails with `user_id` set null (the migrations' `on delete`
/// clauses).
// example-app:begin
/// Its bookings go too: release their places first
/// ([`release_places_of_user`](crate::store::classes::release_places_of_user)).
// example-app:end
pub async fn delete_user(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<bool> {
    let deleted = execute!(
        exec,
        sqlx::query("delete from users where id = $1").bind(id)
    )?;
    Ok(deleted > 0)
}
