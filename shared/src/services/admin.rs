//! The admin's use cases: for superusers only.
//!
//! Every function takes the acting user and refuses anyone but an active superuser, whatever
//! the caller checked before. Every change is written to `admin_actions` with the actor (in the
//! same transaction as the change where there is one) and logged at info.

use std::future::Future;

use chrono::{DateTime, Utc};
// example-app:begin
use chrono_tz::Tz;
// example-app:end
use uuid::Uuid;

use crate::db::{Db, Exec};
// example-app:begin
use crate::domain::classes::{CAPACITY_MAX, Class, ClassDraft, Occurrence};
// example-app:end
use crate::domain::{ApiToken, EmailKind, EmailStatus, User};
use crate::error::{Error, Result, is_unique_violation};
use crate::pagination::{Page, PageRequest};
use crate::queue::Queue;
use crate::services::accounts::{self, Mailing};
use crate::services::outbox;
// example-app:begin
use crate::services::classes;
// example-app:end
use crate::store::admin as store;
// example-app:begin
use crate::store::classes::{self as class_store, OccurrenceBooking};
// example-app:end
use crate::store::emails::{self, EmailFilter};
use crate::store::jobs as job_store;
use crate::store::sessions as session_store;
use crate::store::tokens;
use crate::store::users::{self, NewUser, UserFilter};
use crate::{clock, crypto};

// The rows these use cases return, as the store reads them.
pub use crate::store::admin::AdminAction;
pub use crate::store::emails::EmailRow;
pub use crate::store::jobs::JobRun;

/// Refuses anyone but an active superuser (403).
pub fn require_superuser(actor: &User) -> Result<()> {
    if actor.is_superuser && actor.is_active {
        Ok(())
    } else {
        Err(Error::Forbidden("the admin is for superusers only".into()))
    }
}

/// Records an action by `actor` in `admin_actions` (on `exec`, so inside the caller's
/// transaction when it has one) and in the logs.
pub(crate) async fn record(
    exec: &mut impl Exec,
    actor: &User,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    store::insert_action(
        exec,
        actor.id,
        actor.email.as_str(),
        action,
        target,
        detail,
        clock::now(),
    )
    .await?;
    tracing::info!(
        actor = actor.email.as_str(),
        actor_id = %actor.id,
        action,
        target,
        detail,
        "admin action"
    );
    Ok(())
}

/// What the overview counts.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub users: i64,
    // example-app:begin
    pub classes: i64,
    // example-app:end
}

/// The overview's counts.
pub async fn counts(db: &Db, actor: &User) -> Result<Counts> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    Ok(Counts {
        users: users::count_users(&mut conn).await?,
        // example-app:begin
        classes: class_store::count_classes(&mut conn).await?,
        // example-app:end
    })
}

/// The log of admin actions, newest first.
pub async fn list_actions(
    db: &Db,
    actor: &User,
    request: PageRequest,
) -> Result<Page<AdminAction>> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let listed = store::list_actions(&mut conn, request.limit(), request.offset()).await?;
    let count = listed.total_or(store::count_actions(&mut conn)).await?;
    request.check(count)?;
    Ok(Page::new(request, count, listed.rows))
}

// ---- Users ---------------------------------------------------------------------------------

/// The users list's search: text the address contains (any for an empty one) and flags
/// (`None` matches either).
#[derive(Debug, Clone, Copy, Default)]
pub struct UserSearch<'a> {
    pub email: &'a str,
    pub verified: Option<bool>,
    pub staff: Option<bool>,
    pub active: Option<bool>,
}

/// Accounts matching `search`, newest first.
pub async fn list_users(
    db: &Db,
    actor: &User,
    search: &UserSearch<'_>,
    request: PageRequest,
) -> Result<Page<User>> {
    require_superuser(actor)?;
    let filter = UserFilter {
        email_like: store::contains_pattern(search.email),
        verified: search.verified,
        staff: search.staff,
        active: search.active,
    };
    let mut conn = db.acquire().await?;
    let count = users::count_filtered_users(&mut conn, &filter).await?;
    request.check(count)?;
    let rows =
        users::list_filtered_users(&mut conn, &filter, request.limit(), request.offset()).await?;
    Ok(Page::new(request, count, rows))
}

/// An account with its live sessions and API tokens counted.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: User,
    pub sessions: i64,
    pub api_tokens: i64,
}

pub async fn get_user(db: &Db, actor: &User, id: Uuid) -> Result<UserDetail> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let user = find_user(&mut conn, id).await?;
    let (sessions, api_tokens) = users::count_credentials(&mut conn, id, clock::now()).await?;
    Ok(UserDetail {
        user,
        sessions,
        api_tokens,
    })
}

async fn find_user(exec: &mut impl Exec, id: Uuid) -> Result<User> {
    users::find_user_by_id(exec, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such user".into()))
}

fn not_yourself(actor: &User, id: Uuid, what: &str) -> Result<()> {
    if actor.id == id {
        Err(Error::Conflict(format!(
            "you cannot {what} your own account here (you would lock yourself out); ask another superuser"
        )))
    } else {
        Ok(())
    }
}

/// Deactivates an account: it can no longer log in, and every session and API token it holds
/// ends now. Returns how many sessions and tokens ended.
pub async fn deactivate_user(db: &Db, actor: &User, id: Uuid) -> Result<u64> {
    require_superuser(actor)?;
    not_yourself(actor, id, "deactivate")?;
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    let now = clock::now();
    users::set_user_active(&mut tx, id, false, now).await?;
    let ended = users::revoke_credentials(&mut tx, id, None, now).await?;
    let detail = format!(
        "{} deactivated; {ended} sessions and API tokens ended",
        user.email
    );
    record(
        &mut tx,
        actor,
        "user.deactivate",
        &target_user(&user),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

pub async fn reactivate_user(db: &Db, actor: &User, id: Uuid) -> Result<()> {
    require_superuser(actor)?;
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    users::set_user_active(&mut tx, id, true, clock::now()).await?;
    let detail = format!("{} reactivated", user.email);
    record(
        &mut tx,
        actor,
        "user.reactivate",
        &target_user(&user),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Grants (`true`) or removes staff status.
pub async fn set_staff(db: &Db, actor: &User, id: Uuid, staff: bool) -> Result<()> {
    require_superuser(actor)?;
    if !staff {
        not_yourself(actor, id, "remove staff status from")?;
    }
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    users::set_user_staff(&mut tx, id, staff, clock::now()).await?;
    let (action, detail) = if staff {
        ("user.grant_staff", format!("{} is now staff", user.email))
    } else {
        (
            "user.remove_staff",
            format!("{} is no longer staff", user.email),
        )
    };
    record(&mut tx, actor, action, &target_user(&user), &detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a new verification link to an unverified, active account, at most once per
/// [`accounts::RESEND_VERIFICATION_EVERY`] (as the public resend).
pub async fn resend_verification(
    db: &Db,
    mailing: &Mailing<'_>,
    actor: &User,
    id: Uuid,
) -> Result<()> {
    require_superuser(actor)?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    if user.is_verified {
        return Err(Error::Conflict(format!(
            "{} is already verified",
            user.email
        )));
    }
    if !user.is_active {
        return Err(Error::Conflict(format!(
            "{} is deactivated; reactivate the account first",
            user.email
        )));
    }
    let since = now - accounts::RESEND_VERIFICATION_EVERY;
    if users::recent_email_exists(&mut tx, user.email.as_str(), EmailKind::VerifyEmail, since)
        .await?
    {
        return Err(Error::Conflict(format!(
            "a verification email went to {} less than {} minutes ago",
            user.email,
            accounts::RESEND_VERIFICATION_EVERY.num_minutes()
        )));
    }
    let email_id = accounts::send_verification(&mut tx, mailing.config, &user, now).await?;
    let detail = format!("verification email {email_id} queued for {}", user.email);
    record(
        &mut tx,
        actor,
        "user.resend_verification",
        &target_user(&user),
        &detail,
    )
    .await?;
    tx.commit().await?;
    outbox::notify(mailing.queue, &[email_id]).await;
    Ok(())
}

// ---- Users: create, password, delete, sessions and API tokens ---------------------------

/// A new account as the admin types it (Django's "Add user").
#[derive(Debug, Clone, Default)]
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub is_verified: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// Creates an account with the flags given; no verification email is sent (an unverified
/// account asks for one from its account page, or the admin resends it). The email and the
/// password policy are checked as at sign-up: `Invalid` on `email` and `password`, a taken
/// email included.
pub async fn create_user(db: &Db, actor: &User, new: &NewAccount<'_>) -> Result<User> {
    require_superuser(actor)?;
    let (email, password) = accounts::parse_credentials(new.email, new.password)?;
    let taken = || Error::invalid("email", "an account with this email already exists");
    {
        let mut conn = db.acquire().await?;
        if users::find_user_by_email(&mut conn, &email)
            .await?
            .is_some()
        {
            return Err(taken());
        }
    }
    let password_hash = crypto::hash_password(&password).await?;
    let account = NewUser {
        email,
        password_hash: Some(password_hash),
        is_verified: new.is_verified,
        is_staff: new.is_staff,
        is_superuser: new.is_superuser,
    };
    let mut tx = db.begin().await?;
    let user = match users::insert_user(&mut tx, &account, clock::now()).await {
        Ok(user) => user,
        // Taken since the check above.
        Err(e) if is_unique_violation(&e) => return Err(taken()),
        Err(e) => return Err(e.into()),
    };
    let flags: Vec<&str> = [
        (user.is_verified, "verified"),
        (user.is_staff, "staff"),
        (user.is_superuser, "superuser"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let detail = format!(
        "{} created ({})",
        user.email,
        if flags.is_empty() {
            "no flags".to_owned()
        } else {
            flags.join(", ")
        }
    );
    record(&mut tx, actor, "user.create", &target_user(&user), &detail).await?;
    tx.commit().await?;
    Ok(user)
}

/// Sets an account's password (the admin types it) through
/// [`accounts::set_password`]: the policy applies, and the account is signed out everywhere
/// with its reset links voided. Returns how many sessions and API tokens ended. Not for the
/// admin's own account, which has the account page (it asks for the current password).
pub async fn set_user_password(db: &Db, actor: &User, id: Uuid, password: &str) -> Result<u64> {
    require_superuser(actor)?;
    if actor.id == id {
        return Err(Error::Conflict(
            "change your own password on your account page".into(),
        ));
    }
    let user = {
        let mut conn = db.acquire().await?;
        find_user(&mut conn, id).await?
    };
    let ended = accounts::set_password(db, id, password).await?;
    let detail = format!(
        "{}'s password set by the admin; {ended} sessions and API tokens ended",
        user.email
    );
    let mut conn = db.acquire().await?;
    record(
        &mut conn,
        actor,
        "user.set_password",
        &target_user(&user),
        &detail,
    )
    .await?;
    Ok(ended)
}

/// Sends a password-reset link through the public flow ([`accounts::request_password_reset`]).
///
/// Its limits stay: at most [`accounts::RESET_EMAILS_PER_ADDRESS`] reset emails per address
/// per hour (the owner's inbox is protected from a careless or hijacked admin session as from
/// anyone), and the per-client limit, counted per admin (`admin:<id>`) rather than per IP.
/// Where the public flow stays silent about a limit (no enumeration), the admin is told: a
/// held-back email is a 409 naming the limit, never a "sent" that was not.
pub async fn send_password_reset(
    db: &Db,
    mailing: &Mailing<'_>,
    actor: &User,
    id: Uuid,
) -> Result<()> {
    require_superuser(actor)?;
    let (user, before) = {
        let mut conn = db.acquire().await?;
        let user = find_user(&mut conn, id).await?;
        let since = clock::now() - accounts::RESET_EMAILS_WINDOW;
        let before = users::count_recent_emails(
            &mut conn,
            user.email.as_str(),
            EmailKind::PasswordReset,
            since,
        )
        .await?;
        (user, before)
    };
    if !user.is_active {
        return Err(Error::Conflict(format!(
            "{} is deactivated; reactivate the account first",
            user.email
        )));
    }
    if before >= accounts::RESET_EMAILS_PER_ADDRESS {
        return Err(Error::Conflict(format!(
            "{before} reset emails went to {} in the last hour, the most an address gets; \
             try later, or set a password",
            user.email
        )));
    }
    let client = format!("admin:{}", actor.id);
    accounts::request_password_reset(db, mailing, user.email.as_str(), &client).await?;
    let mut conn = db.acquire().await?;
    let since = clock::now() - accounts::RESET_EMAILS_WINDOW;
    let after = users::count_recent_emails(
        &mut conn,
        user.email.as_str(),
        EmailKind::PasswordReset,
        since,
    )
    .await?;
    if after <= before {
        return Err(Error::Conflict(format!(
            "the reset email was held back: you have asked for more than {} emails in {} minutes",
            accounts::MAIL_REQUESTS_PER_CLIENT,
            accounts::LOGIN_WINDOW.num_minutes()
        )));
    }
    let detail = format!("password reset link queued for {}", user.email);
    record(
        &mut conn,
        actor,
        "user.send_password_reset",
        &target_user(&user),
        &detail,
    )
    .await?;
    Ok(())
}

/// Deletes an account. The database cascades its sessions, API tokens and email tokens; its
/// emails stay in the outbox with no user. A superuser cannot delete their own account.
// example-app:begin
/// Its bookings go too, their places given back first, in the same transaction.
// example-app:end
pub async fn delete_user(db: &Db, actor: &User, id: Uuid) -> Result<()> {
    require_superuser(actor)?;
    not_yourself(actor, id, "delete")?;
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    let (sessions, api_tokens) = users::count_credentials(&mut tx, id, clock::now()).await?;
    // example-app:begin
    let places = class_store::release_places_of_user(&mut tx, id).await?;
    // example-app:end
    users::delete_user(&mut tx, id).await?;
    let detail = format!(
        "{} deleted with {sessions} sessions, {api_tokens} API tokens",
        user.email
    );
    // example-app:begin
    let detail = format!("{detail} and {places} bookings");
    // example-app:end
    record(&mut tx, actor, "user.delete", &target_user(&user), &detail).await?;
    tx.commit().await?;
    Ok(())
}

/// A live session as the admin sees it: never its token nor the stored hash, but a `handle`
/// that names it in a revoke form (a hash of the stored hash: stable, useless to log in with).
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub handle: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn session_handle(token_hash: &str) -> String {
    crypto::hash_token(&format!("admin-session-handle:{token_hash}"))[..32].to_owned()
}

/// An account's live sessions and its API tokens (names and times only).
pub async fn list_credentials(
    db: &Db,
    actor: &User,
    id: Uuid,
) -> Result<(Vec<SessionInfo>, Vec<ApiToken>)> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    find_user(&mut conn, id).await?;
    let sessions = session_store::list_sessions_of_user(&mut conn, id, clock::now())
        .await?
        .into_iter()
        .map(|s| SessionInfo {
            handle: session_handle(&s.token_hash),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        })
        .collect();
    let api_tokens = tokens::list_api_tokens(&mut conn, id).await?;
    Ok((sessions, api_tokens))
}

/// Ends one session of an account, named by its [`SessionInfo::handle`].
pub async fn revoke_session(db: &Db, actor: &User, id: Uuid, handle: &str) -> Result<()> {
    require_superuser(actor)?;
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    let session = session_store::list_sessions_of_user(&mut tx, id, clock::now())
        .await?
        .into_iter()
        .find(|s| session_handle(&s.token_hash) == handle)
        .ok_or_else(|| Error::NotFound("no such session (it may have ended)".into()))?;
    session_store::delete_session(&mut tx, &session.token_hash).await?;
    let detail = format!(
        "a session of {} (started {}) ended",
        user.email,
        session.created_at.to_rfc3339()
    );
    record(
        &mut tx,
        actor,
        "user.revoke_session",
        &target_user(&user),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes one API token of an account.
pub async fn revoke_api_token(db: &Db, actor: &User, id: Uuid, token_id: Uuid) -> Result<()> {
    require_superuser(actor)?;
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    let token = tokens::list_api_tokens(&mut tx, id)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or_else(|| Error::NotFound("no such API token".into()))?;
    tokens::delete_api_token_of_user(&mut tx, token_id, id).await?;
    let detail = format!("API token {:?} of {} revoked", token.name, user.email);
    record(
        &mut tx,
        actor,
        "user.revoke_api_token",
        &target_user(&user),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Signs an account out everywhere: every session and API token ends (and any reset link),
/// the account stays active. Returns how many sessions and tokens ended.
pub async fn revoke_all_credentials(db: &Db, actor: &User, id: Uuid) -> Result<u64> {
    require_superuser(actor)?;
    let mut tx = db.begin().await?;
    let user = find_user(&mut tx, id).await?;
    let ended = users::revoke_credentials(&mut tx, id, None, clock::now()).await?;
    let detail = format!(
        "{} signed out everywhere; {ended} sessions and API tokens ended",
        user.email
    );
    record(
        &mut tx,
        actor,
        "user.revoke_all",
        &target_user(&user),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

fn target_user(user: &User) -> String {
    format!("user {}", user.id)
}

// ---- Email outbox --------------------------------------------------------------------------

/// How many outbox rows are in each status, every status listed.
pub async fn email_counts(db: &Db, actor: &User) -> Result<Vec<(EmailStatus, i64)>> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let counted = emails::count_by_status(&mut conn).await?;
    Ok(EmailStatus::ALL
        .into_iter()
        .map(|status| {
            let n = counted
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            (status, n)
        })
        .collect())
}

/// The outbox list's search: a status (any when `None`) and text the address contains (any
/// for an empty one).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmailSearch<'a> {
    pub status: Option<EmailStatus>,
    pub to: &'a str,
}

/// Outbox rows matching `search`.
pub async fn list_emails(
    db: &Db,
    actor: &User,
    search: &EmailSearch<'_>,
    request: PageRequest,
) -> Result<Page<EmailRow>> {
    require_superuser(actor)?;
    let filter = EmailFilter {
        status: search.status,
        to_like: store::contains_pattern(search.to),
    };
    let mut conn = db.acquire().await?;
    let count = emails::count_filtered_emails(&mut conn, &filter).await?;
    request.check(count)?;
    let rows =
        emails::list_filtered_emails(&mut conn, &filter, request.limit(), request.offset()).await?;
    Ok(Page::new(request, count, rows))
}

/// One email as the admin sees it: readable, but with the one-time token of every link
/// masked (a verification or reset link in the admin's view would let whoever reads over the
/// admin's shoulder, or a compromised admin session, take the account).
pub async fn get_email(db: &Db, actor: &User, id: Uuid) -> Result<EmailRow> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let mut row = emails::find_email(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such email".into()))?;
    row.body_text = mask_link_tokens(&row.body_text);
    row.body_html = row.body_html.as_deref().map(mask_link_tokens);
    Ok(row)
}

/// What stands in for a masked token.
pub const MASKED_TOKEN: &str = "[hidden]";

/// `token=<64 hex digits>` (the links [`crate::services::accounts`] sends) with the digits
/// replaced by [`MASKED_TOKEN`]; everything else unchanged.
pub fn mask_link_tokens(text: &str) -> String {
    const KEY: &str = "token=";
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, from_key) = rest.split_at(at + KEY.len());
        masked.push_str(before);
        let digits = from_key.bytes().take_while(u8::is_ascii_hexdigit).count();
        let ends = from_key
            .as_bytes()
            .get(digits)
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        if digits == 64 && ends {
            masked.push_str(MASKED_TOKEN);
            rest = &from_key[digits..];
        } else {
            rest = from_key;
        }
    }
    masked.push_str(rest);
    masked
}

/// Retries a `failed` email: it gets a fresh set of attempts and goes to the worker again.
pub async fn retry_email(db: &Db, queue: &Queue, actor: &User, id: Uuid) -> Result<()> {
    require_superuser(actor)?;
    let mut tx = db.begin().await?;
    let row = emails::find_email(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such email".into()))?;
    if !emails::retry_failed_email(&mut tx, id, clock::now()).await? {
        return Err(Error::Conflict(format!(
            "only a failed email can be retried; this one is {}",
            row.status
        )));
    }
    let detail = format!(
        "{} to {} queued again after {} attempts (last error: {})",
        row.kind,
        row.to_address,
        row.attempts,
        row.last_error.as_deref().unwrap_or("none recorded")
    );
    record(
        &mut tx,
        actor,
        "email.retry",
        &format!("email {id}"),
        &detail,
    )
    .await?;
    tx.commit().await?;
    // If the queue is down the row is `pending` and the outbox sweep sends it.
    outbox::notify(queue, &[id]).await;
    Ok(())
}

// example-app:begin
// ---- Classes and occurrences ---------------------------------------------------------------

/// Classes whose title contains `q` (all for an empty `q`).
pub async fn list_classes(
    db: &Db,
    actor: &User,
    q: &str,
    request: PageRequest,
) -> Result<Page<Class>> {
    require_superuser(actor)?;
    let like = store::contains_pattern(q);
    let mut conn = db.acquire().await?;
    let count = class_store::count_classes_titled(&mut conn, &like).await?;
    request.check(count)?;
    let rows =
        class_store::list_classes_titled(&mut conn, &like, request.limit(), request.offset())
            .await?;
    Ok(Page::new(request, count, rows))
}

/// Changes a class through the same use case as the staff form, and logs it.
pub async fn update_class(
    db: &Db,
    tz: Tz,
    actor: &User,
    id: Uuid,
    draft: &ClassDraft,
) -> Result<Class> {
    require_superuser(actor)?;
    let class = classes::update_class(db, tz, actor, id, draft).await?;
    let mut conn = db.acquire().await?;
    let detail = format!("{:?} saved", class.title);
    record(
        &mut conn,
        actor,
        "class.update",
        &format!("class {id}"),
        &detail,
    )
    .await?;
    Ok(class)
}

/// Deletes a class with its occurrences and bookings, and logs it.
pub async fn delete_class(db: &Db, actor: &User, id: Uuid) -> Result<()> {
    require_superuser(actor)?;
    let class = classes::get_class(db, id).await?;
    classes::delete_class(db, actor, id).await?;
    let mut conn = db.acquire().await?;
    let detail = format!(
        "{:?} deleted with its occurrences and bookings",
        class.title
    );
    record(
        &mut conn,
        actor,
        "class.delete",
        &format!("class {id}"),
        &detail,
    )
    .await?;
    Ok(())
}

/// Sets one occurrence's capacity (a different room this week), never below its bookings.
pub async fn set_occurrence_capacity(
    db: &Db,
    actor: &User,
    id: Uuid,
    raw: &str,
) -> Result<Occurrence> {
    require_superuser(actor)?;
    let capacity = match raw.trim().parse::<i32>() {
        Ok(n) if (1..=CAPACITY_MAX).contains(&i64::from(n)) => n,
        _ => {
            return Err(Error::invalid(
                "capacity",
                format!("enter a number of places between 1 and {CAPACITY_MAX}"),
            ));
        }
    };
    let mut tx = db.begin().await?;
    let before = class_store::find_occurrence(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such occurrence".into()))?;
    if class_store::set_occurrence_capacity(&mut tx, id, capacity).await? != Some(true) {
        return Err(Error::invalid(
            "capacity",
            format!(
                "{} places are booked; the capacity cannot be lower",
                before.booked
            ),
        ));
    }
    let detail = format!(
        "capacity of the occurrence at {} changed from {} to {capacity}",
        before.starts_at.to_rfc3339(),
        before.capacity
    );
    record(
        &mut tx,
        actor,
        "occurrence.capacity",
        &format!("occurrence {id}"),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(Occurrence { capacity, ..before })
}

/// Deletes one occurrence (a cancelled session) with its bookings; returns the occurrence as
/// it was and how many bookings went.
pub async fn delete_occurrence(db: &Db, actor: &User, id: Uuid) -> Result<(Occurrence, i64)> {
    require_superuser(actor)?;
    let mut tx = db.begin().await?;
    let before = class_store::find_occurrence(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such occurrence".into()))?;
    let bookings = class_store::delete_occurrence(&mut tx, id)
        .await?
        .unwrap_or_default();
    let detail = format!(
        "occurrence at {} of class {} deleted with {bookings} bookings",
        before.starts_at.to_rfc3339(),
        before.class_id
    );
    record(
        &mut tx,
        actor,
        "occurrence.delete",
        &format!("occurrence {id}"),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok((before, bookings))
}

/// An occurrence with who booked it.
pub async fn occurrence_bookings(
    db: &Db,
    actor: &User,
    id: Uuid,
) -> Result<(Occurrence, Vec<OccurrenceBooking>)> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let occurrence = class_store::find_occurrence(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such occurrence".into()))?;
    let bookings = class_store::list_occurrence_bookings(&mut conn, id).await?;
    Ok((occurrence, bookings))
}

/// Cancels someone's booking through the same use case as their own "Cancel"
/// ([`classes::cancel_booking`]): only before the occurrence starts, and the place is freed.
/// Returns the occurrence's id.
pub async fn cancel_booking(db: &Db, actor: &User, booking_id: Uuid) -> Result<Uuid> {
    require_superuser(actor)?;
    let (user, occurrence_id) = {
        let mut conn = db.acquire().await?;
        let (user_id, occurrence_id) = class_store::find_booking(&mut conn, booking_id)
            .await?
            .ok_or_else(|| Error::NotFound("no such booking".into()))?;
        (find_user(&mut conn, user_id).await?, occurrence_id)
    };
    match classes::cancel_booking(db, &user, occurrence_id).await {
        Ok(()) => {}
        Err(Error::NotFound(_)) => {
            return Err(Error::Conflict(
                "this booking can no longer be cancelled (its class has started, or it was \
                 cancelled already)"
                    .into(),
            ));
        }
        Err(e) => return Err(e),
    }
    let detail = format!(
        "booking of {} for the occurrence {occurrence_id} cancelled; its place is free",
        user.email
    );
    let mut conn = db.acquire().await?;
    record(
        &mut conn,
        actor,
        "booking.cancel",
        &format!("booking {booking_id}"),
        &detail,
    )
    .await?;
    Ok(occurrence_id)
}

// example-app:end
// ---- Job runs ------------------------------------------------------------------------------
//
// The jobs themselves (`crate::jobs`) use these services, so these take the jobs' names and
// their run from the caller rather than reaching back into the registry.

/// A job's most recent runs.
#[derive(Clone)]
pub struct JobSummary {
    pub runs: Vec<JobRun>,
    pub total_runs: i64,
}

/// Runs shown per job on the overview.
pub const RECENT_RUNS: i64 = 5;

/// The last [`RECENT_RUNS`] runs of each job in `names`, in that order.
pub async fn job_summaries(db: &Db, actor: &User, names: &[&str]) -> Result<Vec<JobSummary>> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let mut summaries = Vec::with_capacity(names.len());
    for name in names {
        let total_runs = job_store::count_runs(&mut conn, name).await?;
        let runs = job_store::list_runs(&mut conn, name, RECENT_RUNS, 0).await?;
        summaries.push(JobSummary { runs, total_runs });
    }
    Ok(summaries)
}

/// Job `name`'s runs, newest first.
pub async fn list_runs(
    db: &Db,
    actor: &User,
    name: &str,
    request: PageRequest,
) -> Result<Page<JobRun>> {
    require_superuser(actor)?;
    let mut conn = db.acquire().await?;
    let count = job_store::count_runs(&mut conn, name).await?;
    request.check(count)?;
    let runs = job_store::list_runs(&mut conn, name, request.limit(), request.offset()).await?;
    Ok(Page::new(request, count, runs))
}

/// "Run now" of job `name`, written to the admin log with what the job did or why it failed.
/// `run` is the registry's run of the job as a tick of its own (recorded in `job_runs` like a
/// scheduled one); like any future it does nothing until awaited, which happens only once the
/// actor is known to be a superuser. It answers what the job did, or `None` when the tick was
/// already done; a failing job is returned as the error.
pub async fn run_job_now(
    db: &Db,
    actor: &User,
    name: &str,
    run: impl Future<Output = Result<Option<String>>>,
) -> Result<Option<String>> {
    require_superuser(actor)?;
    let result = run.await;
    let detail = match &result {
        Ok(Some(detail)) => detail.clone(),
        Ok(None) => "already ran this instant; nothing done".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    let mut conn = db.acquire().await?;
    record(&mut conn, actor, "job.run", &format!("job {name}"), &detail).await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_are_masked_and_the_rest_of_the_email_is_kept() {
        let token = "ab12".repeat(16);
        let text = format!(
            "Confirm: https://example.com/verify-email?token={token}\n\
             <a href=\"https://example.com/password-reset/confirm?token={token}\">reset</a> \
             token=short stays, token={token}x is not a link token"
        );
        let masked = mask_link_tokens(&text);
        assert!(!masked.contains(&format!("token={token}\n")), "{masked}");
        assert_eq!(masked.matches("token=[hidden]").count(), 2, "{masked}");
        assert!(masked.starts_with("Confirm: https://example.com/verify-email?token=[hidden]\n"));
        assert!(masked.contains("token=short stays"), "{masked}");
        assert_eq!(mask_link_tokens("no links"), "no links");
    }
}
