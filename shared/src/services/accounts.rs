//! Accounts: sign-up with email verification, API tokens, superusers.

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::clock;
use crate::config::Config;
use crate::crypto;
use crate::db::{Db, PooledConn, Tx};
use crate::domain::{ApiToken, EmailAddress, EmailKind, Password, TokenPurpose, User, check_text};
use crate::error::{Error, FieldErrors, Result, is_unique_violation};
use crate::mail;
use crate::metrics::{self, Metric};
use crate::queue::Queue;
use crate::services::outbox;
use crate::store::users::{self, NewUser};
use crate::store::{throttle, tokens};

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
    /// No account had this email: a verified, staff superuser now has it, with the password.
    Created,
    /// An active staff superuser had this email; nothing changed, its password included (a
    /// different `SUPERUSER_PASSWORD` on a later deploy is ignored).
    AlreadyExisted,
    /// Another account had this email (ordinary, or a superuser deactivated or without staff):
    /// it is now an active, verified staff superuser, its password is `SUPERUSER_PASSWORD`,
    /// and its sessions and API tokens were revoked.
    Promoted,
}

/// The deploy hook's `createsuperuser`: idempotent, so it can run on every deploy.
/// - No account with `email`: one is created (verified, staff, superuser) with `password`.
/// - An active staff superuser with `email`: left alone; it keeps its own password (setting
///   it on every deploy would undo the admin's own change).
/// - Any other account with `email`: taken over, not just promoted. Anyone can sign up with
///   the admin's address before the first deploy, so promoting it as it is would hand the
///   admin flags to whoever chose its password: its password becomes `password` and
///   everything logged in to it is signed out.
pub async fn ensure_superuser(
    db: &Db,
    email: &EmailAddress,
    password: &Password,
) -> Result<Ensured> {
    let existing = {
        let mut conn = db.acquire().await?;
        users::find_user_by_email(&mut conn, email).await?
    };
    if let Some(user) = existing {
        if user.is_superuser && user.is_staff && user.is_active {
            return Ok(Ensured::AlreadyExisted);
        }
        let password_hash = crypto::hash_password(password).await?;
        let mut tx = db.begin().await?;
        let now = clock::now();
        users::set_password_hash(&mut tx, user.id, &password_hash, now).await?;
        users::revoke_credentials(&mut tx, user.id, None, now).await?;
        users::promote_to_superuser(&mut tx, user.id, now).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %user.id, "existing account made the superuser; its password was replaced");
        return Ok(Ensured::Promoted);
    }
    match create_superuser(db, email, password).await {
        Ok(_) => Ok(Ensured::Created),
        // Created concurrently by another deploy step: the same outcome.
        Err(Error::Conflict(_)) => Ok(Ensured::AlreadyExisted),
        Err(e) => Err(e),
    }
}

/// How long a verification link works.
pub const VERIFY_EMAIL_VALID: TimeDelta = TimeDelta::hours(48);
/// At most one "you already have an account" email per address in this window.
const ACCOUNT_EXISTS_EVERY: TimeDelta = TimeDelta::hours(1);

/// What [`signup`] needs besides the database.
pub struct Mailing<'a> {
    pub config: &'a Config,
    pub queue: &'a Queue,
}

/// Signs up: a new, unverified account and a verification email. The answer is the same
/// whether or not the address is registered (no account enumeration): the owner of a
/// registered address gets a "you already have an account" email instead, at most hourly,
/// and none while the account is unverified and under an hour old (its verification email,
/// valid for 48 hours, is what they need; a double-clicked form sends one email, not two).
pub async fn signup(db: &Db, mailing: &Mailing<'_>, email: &str, password: &str) -> Result<()> {
    let (email, password) = parse_credentials(email, password)?;
    // Hashed whether or not the account exists, so both answers take the same time.
    let password_hash = crypto::hash_password(&password).await?;
    let now = clock::now();

    let mut tx = db.begin().await?;
    let mut new_account = false;
    let email_id = match users::find_user_by_email(&mut tx, &email).await? {
        Some(existing) => {
            // Concurrent sign-ups for this address wait here, so only the first sends.
            users::lock_user(&mut tx, existing.id).await?;
            let since = now - ACCOUNT_EXISTS_EVERY;
            let just_signed_up = !existing.is_verified && existing.created_at > since;
            if just_signed_up
                || users::recent_email_exists(
                    &mut tx,
                    email.as_str(),
                    EmailKind::AccountExists,
                    since,
                )
                .await?
            {
                None
            } else {
                let rendered = mail::render(
                    mailing.config,
                    EmailKind::AccountExists,
                    minijinja::context! {
                        login_link => link(mailing.config, "login", None)?,
                        reset_link => link(mailing.config, "password-reset", None)?,
                    },
                )?;
                Some(
                    outbox::add(
                        &mut tx,
                        EmailKind::AccountExists,
                        &email,
                        Some(existing.id),
                        &rendered,
                    )
                    .await?,
                )
            }
        }
        None => {
            let new = NewUser {
                email: email.clone(),
                password_hash: Some(password_hash),
                is_verified: false,
                is_staff: false,
                is_superuser: false,
            };
            let user = match users::insert_user(&mut tx, &new, now).await {
                Ok(user) => user,
                // A concurrent signup with the same address won: same answer, no second email.
                Err(e) if is_unique_violation(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            new_account = true;
            Some(send_verification(&mut tx, mailing.config, &user, now).await?)
        }
    };
    // Tests stop a sign-up here to hold its transaction open while another races it.
    #[cfg(any(test, feature = "testing"))]
    if email_id.is_some() {
        crate::testing::faults::point("signup: account-exists email written, not committed").await;
    }
    tx.commit().await?;
    if new_account {
        metrics::count(Metric::SignUps, &[]);
    }
    if let Some(id) = email_id {
        outbox::notify(mailing.queue, &[id]).await;
    }
    Ok(())
}

/// A new account's email and password, or `Invalid` with a message for each bad field (the
/// password is checked against the email when the email parses).
pub(crate) fn parse_credentials(email: &str, password: &str) -> Result<(EmailAddress, Password)> {
    let mut fields = FieldErrors::new();
    let email = EmailAddress::parse(email).map_err(|e| fields.insert("email".into(), e.0));
    let password = match &email {
        Ok(email) => Password::parse(password, Some(email)),
        Err(_) => Password::parse(password, None),
    }
    .map_err(|e| fields.insert("password".into(), e.0));
    match (email, password) {
        (Ok(email), Ok(password)) => Ok((email, password)),
        _ => Err(Error::Invalid(fields)),
    }
}

/// Writes a verification token and its email in `tx`; returns the outbox id to notify.
pub(crate) async fn send_verification(
    tx: &mut Tx,
    config: &Config,
    user: &User,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let token = crypto::random_token(32);
    tokens::insert_email_token(
        tx,
        &crypto::hash_token(&token),
        user.id,
        TokenPurpose::VerifyEmail,
        now,
        now + VERIFY_EMAIL_VALID,
    )
    .await?;
    let rendered = mail::render(
        config,
        EmailKind::VerifyEmail,
        minijinja::context! {
            link => link(config, "verify-email", Some(&token))?,
            valid_hours => VERIFY_EMAIL_VALID.num_hours(),
        },
    )?;
    Ok(outbox::add(
        tx,
        EmailKind::VerifyEmail,
        &user.email,
        Some(user.id),
        &rendered,
    )
    .await?)
}

/// An absolute link under `SITE_URL` (never the request's host).
pub(crate) fn link(config: &Config, path: &str, token: Option<&str>) -> Result<String> {
    let mut url = config
        .site_url
        .join(path)
        .map_err(|e| Error::Unexpected(anyhow::anyhow!("building a link to {path}: {e}")))?;
    if let Some(token) = token {
        url.query_pairs_mut().append_pair("token", token);
    }
    Ok(url.to_string())
}

/// At most one verification email per address in this window.
pub(crate) const RESEND_VERIFICATION_EVERY: TimeDelta = TimeDelta::minutes(5);

/// Sends a new verification link to an unverified account, at most once per
/// [`RESEND_VERIFICATION_EVERY`] per address and [`MAIL_REQUESTS_PER_CLIENT`] requests per
/// client and [`LOGIN_WINDOW`]. Returns whether a link was sent; callers that must not reveal
/// whether an address has an account (the public API) answer the same either way.
pub async fn resend_verification(
    db: &Db,
    mailing: &Mailing<'_>,
    email: &str,
    client: &str,
) -> Result<bool> {
    if !client_may_request_mail(db, client).await? {
        return Ok(false);
    }
    let Ok(email) = EmailAddress::parse(email) else {
        return Ok(false);
    };
    let now = clock::now();
    let mut tx = db.begin().await?;
    let Some(user) = users::find_user_by_email(&mut tx, &email).await? else {
        return Ok(false);
    };
    let since = now - RESEND_VERIFICATION_EVERY;
    if user.is_verified
        || !user.is_active
        || users::recent_email_exists(&mut tx, email.as_str(), EmailKind::VerifyEmail, since)
            .await?
    {
        return Ok(false);
    }
    let email_id = send_verification(&mut tx, mailing.config, &user, now).await?;
    tx.commit().await?;
    outbox::notify(mailing.queue, &[email_id]).await;
    Ok(true)
}

/// Uses a verification token: the account is verified. A used, expired or unknown token is
/// refused with the same message.
pub async fn verify_email(db: &Db, token: &str) -> Result<User> {
    let refused = || Error::BadRequest("this verification link is invalid, used or expired".into());
    let mut tx = db.begin().await?;
    let user_id = tokens::use_email_token(
        &mut tx,
        &crypto::hash_token(token),
        TokenPurpose::VerifyEmail,
        clock::now(),
    )
    .await?
    .ok_or_else(refused)?;
    users::mark_user_verified(&mut tx, user_id, clock::now()).await?;
    let user = users::find_user_by_id(&mut tx, user_id)
        .await?
        .ok_or_else(refused)?;
    tx.commit().await?;
    metrics::count(Metric::Verifications, &[]);
    Ok(user)
}

/// A hash to verify against when the account does not exist, so a wrong email and a wrong
/// password take the same time.
async fn dummy_hash() -> Result<&'static str> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let hash = HASH
        .get_or_try_init(|| async {
            let password = Password::parse("timing-equaliser-not-a-real-password", None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crypto::hash_password(&password).await
        })
        .await?;
    Ok(hash.as_str())
}

/// The brute-force limit on password checks: failures per window, per account and per client
/// address. Windows expire, so there is never a permanent lockout.
pub const LOGIN_WINDOW: TimeDelta = TimeDelta::minutes(15);
pub const LOGIN_FAILURES_PER_ACCOUNT: i32 = 10;
pub const LOGIN_FAILURES_PER_CLIENT: i32 = 50;

/// `TooManyRequests` (with the time left in the window) if any key has reached its limit.
async fn check_limits(conn: &mut PooledConn, limits: &[(&str, i32)]) -> Result<()> {
    let now = clock::now();
    for &(key, limit) in limits {
        if let Some((failures, started)) =
            throttle::current_failures(conn, key, now - LOGIN_WINDOW).await?
            && failures >= limit
        {
            let retry_after_secs = (started + LOGIN_WINDOW - now).num_seconds().max(1) as u64;
            return Err(Error::TooManyRequests { retry_after_secs });
        }
    }
    Ok(())
}

/// Counts a failed password check against each key.
async fn record_failures(conn: &mut PooledConn, keys: &[&str]) -> Result<()> {
    let now = clock::now();
    for key in keys {
        throttle::record_failure(conn, key, now, now - LOGIN_WINDOW).await?;
    }
    Ok(())
}

/// Checks an email and password under the brute-force limit, for every way of logging in (API
/// tokens and page sessions). Unknown email, wrong password and inactive account all get the
/// same `Unauthenticated`, after the same work (a dummy hash stands in for a missing account).
/// `client` is the caller's address from the trusted request context, never from
/// `X-Forwarded-For`. A success clears the account's failures, records the login and
/// re-hashes a password stored with older parameters.
pub(crate) async fn check_login(
    db: &Db,
    email: &str,
    password: &str,
    client: &str,
) -> Result<User> {
    let parsed = EmailAddress::parse(email);
    // An address that does not parse is still counted (escaped: it may hold a NUL, which
    // PostgreSQL cannot store).
    let account_key = format!(
        "account:{}",
        parsed.as_ref().map_or_else(
            |_| email.trim().to_lowercase().escape_default().to_string(),
            |e| e.to_string()
        )
    );
    let client_key = format!("ip:{client}");
    let mut conn = db.acquire().await?;
    check_limits(
        &mut conn,
        &[
            (&account_key, LOGIN_FAILURES_PER_ACCOUNT),
            (&client_key, LOGIN_FAILURES_PER_CLIENT),
        ],
    )
    .await?;
    let user = match &parsed {
        Ok(email) => users::find_user_by_email(&mut conn, email).await?,
        Err(_) => None,
    };
    drop(conn);
    let stored = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
        Some(hash) => hash.to_owned(),
        None => dummy_hash().await?.to_owned(),
    };
    let password_ok = crypto::verify_password(password, &stored).await?;
    let mut conn = db.acquire().await?;
    let user = match user {
        Some(user) if password_ok && user.is_active && user.password_hash.is_some() => user,
        _ => {
            record_failures(&mut conn, &[&account_key, &client_key]).await?;
            metrics::count(Metric::LoginsRefused, &[]);
            return Err(Error::Unauthenticated);
        }
    };
    throttle::clear(&mut conn, &account_key).await?;
    users::record_login(&mut conn, user.id, clock::now()).await?;
    if crypto::needs_rehash(&stored) {
        let rehashed = crypto::hash_secret(password).await?;
        users::set_password_hash(&mut conn, user.id, &rehashed, clock::now()).await?;
        tracing::info!(user_id = %user.id, "password re-hashed with current parameters");
    }
    Ok(user)
}

/// `POST /api/auth/token`: a new API token for valid credentials (see [`check_login`]).
pub async fn issue_api_token(
    db: &Db,
    email: &str,
    password: &str,
    request: &NewApiToken<'_>,
    client: &str,
) -> Result<String> {
    let user = check_login(db, email, password, client).await?;
    create_api_token(db, &user, request).await
}

/// The longest name an API token may have.
pub const API_TOKEN_NAME_MAX: usize = 100;
/// The longest lifetime a token with an expiry may be given (a token that must live longer is
/// made without one, and revoked by hand).
pub const API_TOKEN_MAX_DAYS: i64 = 365;

/// What a new API token is: its name, and how many days it lives (`None`: until revoked).
pub struct NewApiToken<'a> {
    pub name: &'a str,
    pub expires_in_days: Option<i64>,
}

/// A new API token for a signed-in user (the account page); the token is returned once and
/// only its hash is kept.
pub async fn create_api_token(db: &Db, user: &User, request: &NewApiToken<'_>) -> Result<String> {
    let mut fields = FieldErrors::new();
    let name = request.name.trim();
    if name.is_empty() {
        fields.insert(
            "name".into(),
            "enter a name, so you can tell your tokens apart".into(),
        );
    } else if name.chars().count() > API_TOKEN_NAME_MAX {
        fields.insert(
            "name".into(),
            format!("use at most {API_TOKEN_NAME_MAX} characters"),
        );
    } else if let Err(e) = check_text(name, false) {
        fields.insert("name".into(), e.0);
    }
    if let Some(days) = request.expires_in_days
        && !(1..=API_TOKEN_MAX_DAYS).contains(&days)
    {
        fields.insert(
            "expires_in_days".into(),
            format!("enter between 1 and {API_TOKEN_MAX_DAYS} days, or none for no expiry"),
        );
    }
    if !fields.is_empty() {
        return Err(Error::Invalid(fields));
    }
    let token = crypto::random_token(32);
    let now = clock::now();
    let expires_at = request.expires_in_days.map(|d| now + TimeDelta::days(d));
    let mut conn = db.acquire().await?;
    tokens::insert_api_token(
        &mut conn,
        &crypto::hash_token(&token),
        user.id,
        name,
        now,
        expires_at,
    )
    .await?;
    tracing::info!(user_id = %user.id, "API token issued");
    Ok(token)
}

/// A user's API tokens, newest first.
pub async fn list_api_tokens(db: &Db, user: &User) -> Result<Vec<ApiToken>> {
    let mut conn = db.acquire().await?;
    Ok(tokens::list_api_tokens(&mut conn, user.id).await?)
}

/// Revokes one of the user's API tokens by id; another user's token is `NotFound`.
pub async fn revoke_api_token_by_id(db: &Db, user: &User, id: Uuid) -> Result<()> {
    let mut conn = db.acquire().await?;
    if tokens::delete_api_token_of_user(&mut conn, id, user.id).await? {
        tracing::info!(user_id = %user.id, token_id = %id, "API token revoked");
        Ok(())
    } else {
        Err(Error::NotFound("no such token".into()))
    }
}

/// The user behind an API token (and records its use), or `Unauthenticated`.
pub async fn authenticate_api_token(db: &Db, token: &str) -> Result<User> {
    let mut conn = db.acquire().await?;
    let user_id = tokens::touch_api_token(&mut conn, &crypto::hash_token(token), clock::now())
        .await?
        .ok_or(Error::Unauthenticated)?;
    users::find_user_by_id(&mut conn, user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or(Error::Unauthenticated)
}

/// Revokes the token presented; revoking an unknown token is `Unauthenticated`.
pub async fn revoke_api_token(db: &Db, token: &str) -> Result<()> {
    let mut conn = db.acquire().await?;
    if tokens::delete_api_token(&mut conn, &crypto::hash_token(token)).await? {
        Ok(())
    } else {
        Err(Error::Unauthenticated)
    }
}

/// How long a password-reset link works.
pub const RESET_PASSWORD_VALID: TimeDelta = TimeDelta::hours(1);

/// At most this many reset emails per address in [`RESET_EMAILS_WINDOW`].
pub const RESET_EMAILS_PER_ADDRESS: i64 = 3;
pub const RESET_EMAILS_WINDOW: TimeDelta = TimeDelta::hours(1);
/// Requests from one client that may email an address it names (password resets,
/// verification resends), per [`LOGIN_WINDOW`].
pub const MAIL_REQUESTS_PER_CLIENT: i32 = 10;

/// Counts a request that may send an email to an address the caller chose; false when the
/// client has made too many in the window. Counted before the address is looked at, so the
/// limit says nothing about the address.
async fn client_may_request_mail(db: &Db, client: &str) -> Result<bool> {
    let now = clock::now();
    let mut conn = db.acquire().await?;
    let key = format!("mail:ip:{client}");
    let count = throttle::record_failure(&mut conn, &key, now, now - LOGIN_WINDOW).await?;
    Ok(count <= MAIL_REQUESTS_PER_CLIENT)
}

/// Asks for a password reset. The answer is the same for known and unknown addresses, and
/// whether or not a limit held the email back (no enumeration): an active account gets an
/// email with a single-use link, at most [`RESET_EMAILS_PER_ADDRESS`] per hour, and one client
/// may ask at most [`MAIL_REQUESTS_PER_CLIENT`] times per [`LOGIN_WINDOW`]. Each link dies
/// when it is used, after an hour, and when the password changes by any route.
pub async fn request_password_reset(
    db: &Db,
    mailing: &Mailing<'_>,
    email: &str,
    client: &str,
) -> Result<()> {
    if !client_may_request_mail(db, client).await? {
        tracing::info!("password reset not sent: the client is over its limit");
        return Ok(());
    }
    let Ok(email) = EmailAddress::parse(email) else {
        return Ok(());
    };
    let now = clock::now();
    let mut tx = db.begin().await?;
    let Some(user) = users::find_user_by_email(&mut tx, &email)
        .await?
        .filter(|u| u.is_active)
    else {
        return Ok(());
    };
    let sent = users::count_recent_emails(
        &mut tx,
        email.as_str(),
        EmailKind::PasswordReset,
        now - RESET_EMAILS_WINDOW,
    )
    .await?;
    if sent >= RESET_EMAILS_PER_ADDRESS {
        tracing::info!(user_id = %user.id, "password reset not sent: the address is over its limit");
        return Ok(());
    }
    let token = crypto::random_token(32);
    tokens::insert_email_token(
        &mut tx,
        &crypto::hash_token(&token),
        user.id,
        TokenPurpose::ResetPassword,
        now,
        now + RESET_PASSWORD_VALID,
    )
    .await?;
    let rendered = mail::render(
        mailing.config,
        EmailKind::PasswordReset,
        minijinja::context! {
            link => link(mailing.config, "password-reset/confirm", Some(&token))?,
            valid_minutes => RESET_PASSWORD_VALID.num_minutes(),
        },
    )?;
    let email_id = outbox::add(
        &mut tx,
        EmailKind::PasswordReset,
        &user.email,
        Some(user.id),
        &rendered,
    )
    .await?;
    tx.commit().await?;
    outbox::notify(mailing.queue, &[email_id]).await;
    Ok(())
}

/// Whether a reset link could set a password now (its token live, its account active), so
/// the page says a dead link is dead before anyone types a password. Read-only: the token is
/// used only by [`reset_password`].
pub async fn reset_link_is_live(db: &Db, token: &str) -> Result<bool> {
    Ok(reset_link_user(db, &crypto::hash_token(token))
        .await?
        .is_some())
}

/// The active account a live reset token belongs to, without using the token.
async fn reset_link_user(db: &Db, token_hash: &str) -> Result<Option<User>> {
    let mut conn = db.acquire().await?;
    let user_id = tokens::find_live_email_token(
        &mut conn,
        token_hash,
        TokenPurpose::ResetPassword,
        clock::now(),
    )
    .await?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    Ok(users::find_user_by_id(&mut conn, user_id)
        .await?
        .filter(|u| u.is_active))
}

/// Sets a new password with a reset token, and signs the user out everywhere: every session
/// and API token is revoked. A used, expired or unknown token is refused.
pub async fn reset_password(db: &Db, token: &str, new_password: &str) -> Result<User> {
    let refused = || Error::BadRequest("this reset link is invalid, used or expired".into());
    let token_hash = crypto::hash_token(token);
    // Check the token before the (slow) hashing; it is used for good inside the transaction.
    let user = reset_link_user(db, &token_hash)
        .await?
        .ok_or_else(refused)?;
    let password = Password::parse(new_password, Some(&user.email))
        .map_err(|e| Error::invalid("password", e.0))?;
    let password_hash = crypto::hash_password(&password).await?;

    let mut tx = db.begin().await?;
    let now = clock::now();
    tokens::use_email_token(&mut tx, &token_hash, TokenPurpose::ResetPassword, now)
        .await?
        .ok_or_else(refused)?;
    users::set_password_hash(&mut tx, user.id, &password_hash, now).await?;
    let revoked = users::revoke_credentials(&mut tx, user.id, None, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, revoked, "password reset; sessions and tokens revoked");
    Ok(user)
}

/// The account registered with this email, if any (the commands that name a user by email:
/// `changepassword`).
pub async fn find_user_by_email(db: &Db, email: &EmailAddress) -> Result<Option<User>> {
    let mut conn = db.acquire().await?;
    Ok(users::find_user_by_email(&mut conn, email).await?)
}

/// Sets an account's password without knowing the current one (the admin, the
/// `changepassword` command): the policy applies as everywhere, and the account is signed out
/// everywhere (sessions, API tokens, outstanding reset links). Returns how many sessions and
/// tokens ended. A password that fails the policy is `Invalid` on the field `password`.
pub async fn set_password(db: &Db, user_id: Uuid, new_password: &str) -> Result<u64> {
    let user = {
        let mut conn = db.acquire().await?;
        users::find_user_by_id(&mut conn, user_id)
            .await?
            .ok_or_else(|| Error::NotFound("no such user".into()))?
    };
    let password = Password::parse(new_password, Some(&user.email))
        .map_err(|e| Error::invalid("password", e.0))?;
    let password_hash = crypto::hash_password(&password).await?;
    let mut tx = db.begin().await?;
    let now = clock::now();
    users::set_password_hash(&mut tx, user.id, &password_hash, now).await?;
    let revoked = users::revoke_credentials(&mut tx, user.id, None, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, revoked, "password set; sessions and tokens revoked");
    Ok(revoked)
}

/// Changes the password of a signed-in user after checking the current one, and signs out
/// every other session and API token: the session or API token used for this request,
/// `keep_token`, stays.
pub async fn change_password(
    db: &Db,
    user: &User,
    keep_token: &str,
    current_password: &str,
    new_password: &str,
) -> Result<()> {
    // The same per-account limit as logins: a stolen session must not become a way to guess
    // the password.
    let account_key = format!("account:{}", user.email);
    check_limits(
        &mut db.acquire().await?,
        &[(&account_key, LOGIN_FAILURES_PER_ACCOUNT)],
    )
    .await?;
    let stored = user.password_hash.as_deref().unwrap_or_default();
    if stored.is_empty() || !crypto::verify_password(current_password, stored).await? {
        record_failures(&mut db.acquire().await?, &[&account_key]).await?;
        return Err(Error::invalid(
            "current_password",
            "this is not your current password",
        ));
    }
    let password = Password::parse(new_password, Some(&user.email))
        .map_err(|e| Error::invalid("new_password", e.0))?;
    let password_hash = crypto::hash_password(&password).await?;
    let mut tx = db.begin().await?;
    let now = clock::now();
    users::set_password_hash(&mut tx, user.id, &password_hash, now).await?;
    let keep = crypto::hash_token(keep_token);
    let revoked = users::revoke_credentials(&mut tx, user.id, Some(&keep), now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, revoked, "password changed; other sessions and tokens revoked");
    Ok(())
}
