//! Sessions for HTML pages: log in with a password, find the user of a session, log out.
//!
//! The browser holds a random token; the database holds its SHA-256 (so a leaked table holds
//! no live session). Sessions slide: each use extends one by [`SESSION_TTL`], up to
//! [`SESSION_MAX_AGE`] after the login, when the person must log in again (a stolen cookie
//! that is kept in use does not live forever).

use chrono::TimeDelta;

use crate::clock;
use crate::crypto;
use crate::db::Db;
use crate::domain::User;
use crate::error::Result;
use crate::services::accounts;
use crate::store::{sessions, users};

/// How long a session lasts without being used (Django's default, two weeks).
pub const SESSION_TTL: TimeDelta = TimeDelta::days(14);
/// The longest a session lasts however often it is used (the absolute lifetime).
pub const SESSION_MAX_AGE: TimeDelta = TimeDelta::days(30);

/// Checks the credentials (with the brute-force limit of [`accounts::check_login`]) and starts
/// a new session; returns the user and the session token for the cookie. A new token at every
/// login, so a session id planted before login is worthless after it.
pub async fn log_in(db: &Db, email: &str, password: &str, client: &str) -> Result<(User, String)> {
    let user = accounts::check_login(db, email, password, client).await?;
    let token = crypto::random_token(32);
    let now = clock::now();
    let mut conn = db.acquire().await?;
    sessions::insert_session(
        &mut conn,
        &crypto::hash_token(&token),
        user.id,
        now,
        now + SESSION_TTL,
    )
    .await?;
    tracing::info!(user_id = %user.id, "logged in");
    Ok((user, token))
}

/// The active user whose live session this token opens, if any; extends the session.
pub async fn session_user(db: &Db, token: &str) -> Result<Option<User>> {
    let now = clock::now();
    let mut conn = db.acquire().await?;
    let lifetime = sessions::Lifetime {
        now,
        expires_at: now + SESSION_TTL,
        // Extending a session created at `c` to `now + SESSION_TTL` is allowed while that
        // stays within `c + SESSION_MAX_AGE`.
        extend_if_created_after: now + SESSION_TTL - SESSION_MAX_AGE,
        created_after: now - SESSION_MAX_AGE,
    };
    let Some(user_id) =
        sessions::touch_session(&mut conn, &crypto::hash_token(token), &lifetime).await?
    else {
        return Ok(None);
    };
    Ok(users::find_user_by_id(&mut conn, user_id)
        .await?
        .filter(|u| u.is_active))
}

/// Ends the session on the server, so a copied cookie stops working too.
pub async fn log_out(db: &Db, token: &str) -> Result<()> {
    let mut conn = db.acquire().await?;
    sessions::delete_session(&mut conn, &crypto::hash_token(token)).await?;
    Ok(())
}
