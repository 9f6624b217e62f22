//! The one application error. Each variant maps to an HTTP status in `web`; the CLI prints
//! its message. Internal causes (`Unavailable`, `Unexpected`) are logged, never shown.

use std::collections::BTreeMap;

/// Field name -> message, for forms and the `fields` of JSON errors.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or bad credentials (401).
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// (404)
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored, e.g. a taken email (409).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but invalid fields (422).
    #[error("some fields are invalid")]
    Invalid(FieldErrors),
    /// Rate limited (429).
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    TooManyRequests { retry_after_secs: u64 },
    /// A dependency (database, queue) is down or saturated (503).
    #[error("a service this request needs is unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else (500).
    #[error("an unexpected error occurred")]
    Unexpected(#[source] anyhow::Error),
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::from([(field.to_owned(), message.into())]))
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        // A database error wrapped with context still means "database down" (or "bad
        // character") when it is one.
        match e.downcast_ref::<sqlx::Error>() {
            Some(db) if is_unavailable(db) => Self::Unavailable(e),
            Some(db) if is_unstorable_text(db) => Self::BadRequest(UNSTORABLE_TEXT.into()),
            _ => Self::Unexpected(e),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e.into())
        } else if is_unstorable_text(&e) {
            Self::BadRequest(UNSTORABLE_TEXT.into())
        } else {
            Self::Unexpected(e.into())
        }
    }
}

const UNSTORABLE_TEXT: &str =
    "the request contains a character that cannot be stored or searched (a NUL)";

/// PostgreSQL refusing a character in text (a NUL: SQLSTATE 22021 or 22P05). Fields people
/// type are checked before they reach the database (`domain::check_text`, 422 naming the
/// field); this keeps anything that slips past, a query parameter say, a 400 and never a 500.
fn is_unstorable_text(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some()
        && db.code().as_deref().is_some_and(|c| matches!(c, "22021" | "22P05")))
}

/// Errors that mean the database cannot be reached right now, rather than a bad query.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some()
        && db.code().as_deref().is_some_and(|c|
            // PostgreSQL: cannot connect now / too many connections / admin shutdown / the
            // password or user refused (a rotated secret not yet re-read, a misconfiguration:
            // an outage either way, not a bug in the request).
            matches!(c, "57P03" | "53300" | "57P01" | "28P01" | "28000")))
        || sqlite_locked(e)
}

/// SQLite: the database is locked by another writer past the busy timeout (SQLITE_BUSY,
/// SQLITE_LOCKED and their extended codes).
#[cfg(feature = "sqlite")]
fn sqlite_locked(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6)))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_locked(_: &sqlx::Error) -> bool {
    false
}

/// True for a unique-constraint violation, which callers turn into 409 or 422.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
