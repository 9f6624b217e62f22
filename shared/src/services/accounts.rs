//! Accounts: creating users and superusers.

use anyhow::Context as _;

use crate::clock;
use crate::crypto;
use crate::db::Db;
use crate::domain::{EmailAddress, Password, User};
use crate::error::{Error, Result, is_unique_violation};
use crate::store::users::{self, NewUser};

/// `createsuperuser`: a verified, active staff superuser. A taken email is a conflict.
pub async fn create_superuser(db: &Db, email: &EmailAddress, password: &Password) -> Result<User> {
    let password_hash = crypto::hash_password(password).await?;
    let new = NewUser {
        email: email.clone(),
        password_hash: Some(password_hash),
        is_verified: true,
        is_staff: true,
        is_superuser: true,
    };
    let mut tx = db.begin().await?;
    let user = match users::insert_user(&mut tx, &new, clock::now()).await {
        Ok(user) => user,
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::Conflict(format!(
                "a user with email {email} already exists"
            )));
        }
        Err(e) => {
            return Err(Error::from(
                anyhow::Error::new(e).context("inserting a superuser"),
            ));
        }
    };
    tx.commit().await.context("committing the new superuser")?;
    tracing::info!(user_id = %user.id, "superuser created");
    Ok(user)
}

/// What [`ensure_superuser`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// The account existed; it now has the superuser flags. Its password is left alone.
    AlreadyExisted,
}

/// The deploy hook's `createsuperuser`: idempotent, so it can run on every deploy. An existing
/// account keeps its password (changing it on deploy would undo a user's own change).
pub async fn ensure_superuser(
    db: &Db,
    email: &EmailAddress,
    password: &Password,
) -> Result<Ensured> {
    let mut conn = db.acquire().await?;
    if let Some(user) = users::find_user_by_email(&mut conn, email).await? {
        if !user.is_superuser || !user.is_staff || !user.is_active {
            users::promote_to_superuser(&mut conn, user.id, clock::now()).await?;
        }
        return Ok(Ensured::AlreadyExisted);
    }
    drop(conn);
    match create_superuser(db, email, password).await {
        Ok(_) => Ok(Ensured::Created),
        // Created concurrently by another deploy step: the same outcome.
        Err(Error::Conflict(_)) => Ok(Ensured::AlreadyExisted),
        Err(e) => Err(e),
    }
}
