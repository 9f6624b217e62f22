//! The `emails` outbox.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Exec;
use crate::domain::{EmailKind, EmailStatus};
use crate::{execute, on_conn};

/// Reads a text column straight into its enum, so a row is typed from the moment it leaves
/// the database; a value the enum does not know is a decode error naming it, never a panic or
/// a guess.
macro_rules! text_enum {
    ($ty:ty, $what:literal) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&str as sqlx::Decode<'r, DB>>::decode(value)?;
                <$ty>::parse(raw)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), raw).into())
            }
        }
    };
}
text_enum!(EmailStatus, "email status");
text_enum!(EmailKind, "email kind");

macro_rules! columns {
    () => {
        "id, kind, user_id, to_address, subject, body_text, body_html, status, attempts, \
         locked_until, provider_message_id, last_error, created_at, updated_at, sent_at"
    };
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailRow {
    pub id: Uuid,
    pub kind: EmailKind,
    pub user_id: Option<Uuid>,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub status: EmailStatus,
    pub attempts: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewEmail<'a> {
    pub kind: EmailKind,
    pub user_id: Option<Uuid>,
    pub to_address: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
}

pub async fn insert_email(
    exec: &mut impl Exec,
    new: &NewEmail<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    execute!(
        exec,
        sqlx::query(
            "insert into emails (id, kind, user_id, to_address, subject, body_text, body_html, \
             status, attempts, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
        )
        .bind(id)
        .bind(new.kind.as_str())
        .bind(new.user_id)
        .bind(new.to_address)
        .bind(new.subject)
        .bind(new.body_text)
        .bind(new.body_html)
        .bind(now)
    )?;
    Ok(id)
}

pub async fn find_email(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<Option<EmailRow>> {
    on_conn!(exec, |c| {
        sqlx::query_as(concat!("select ", columns!(), " from emails where id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await
    })
}

/// The newest rows, for the development mailbox.
pub async fn list_recent_emails(exec: &mut impl Exec, limit: i64) -> sqlx::Result<Vec<EmailRow>> {
    on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            columns!(),
            " from emails order by created_at desc, id desc limit $1"
        ))
        .bind(limit)
        .fetch_all(&mut *c)
        .await
    })
}

/// Claims a row for sending, atomically: only a `pending` row, or a `sending` row whose
/// claim has expired (its worker died), is taken; the claim counts an attempt and holds until
/// `locked_until`. Of any number of concurrent claims, one gets the row; the others get `None`.
pub async fn claim_email(
    exec: &mut impl Exec,
    id: Uuid,
    now: DateTime<Utc>,
    locked_until: DateTime<Utc>,
) -> sqlx::Result<Option<EmailRow>> {
    on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "update emails set status = 'sending', attempts = attempts + 1, locked_until = $2, \
             updated_at = $3 \
             where id = $1 and (status = 'pending' or (status = 'sending' and locked_until < $3)) \
             returning ",
            columns!()
        ))
        .bind(id)
        .bind(locked_until)
        .bind(now)
        .fetch_optional(&mut *c)
        .await
    })
}

pub async fn mark_email_sent(
    exec: &mut impl Exec,
    id: Uuid,
    provider_message_id: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "update emails set status = 'sent', provider_message_id = $2, sent_at = $3, \
             locked_until = null, updated_at = $3 where id = $1",
        )
        .bind(id)
        .bind(provider_message_id)
        .bind(now)
    )?;
    Ok(())
}

/// Ends a claim without sending: back to `pending` (retry) or on to `failed` (give up).
pub async fn release_email(
    exec: &mut impl Exec,
    id: Uuid,
    status: EmailStatus,
    error: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "update emails set status = $2, last_error = $3, locked_until = null, updated_at = $4 \
             where id = $1 and status = 'sending'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .bind(now)
    )?;
    Ok(())
}

/// Rows the queue seems to have lost: `pending` and untouched since `stale_before`, or
/// claimed by a worker whose claim expired. Their `updated_at` is set to `now` so the next
/// sweep leaves them alone while the re-sent message is in flight. At most `limit` rows.
pub async fn touch_stale_emails(
    exec: &mut impl Exec,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
    max_attempts: i32,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update emails set updated_at = $2 where id in ( \
                 select id from emails \
                 where attempts < $3 and ( \
                     (status = 'pending' and updated_at < $1) \
                     or (status = 'sending' and locked_until < $2)) \
                 order by created_at limit $4) \
             returning id",
        )
        .bind(stale_before)
        .bind(now)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&mut *c)
        .await
    })
}

/// Marks `failed` every unsent row that has used up its attempts; returns how many.
pub async fn fail_exhausted_emails(
    exec: &mut impl Exec,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    execute!(exec, sqlx::query(
            "update emails set status = 'failed', locked_until = null, updated_at = $2, \
             last_error = 'gave up after ' || attempts || ' attempts: ' || coalesce(last_error, 'no error recorded') \
             where attempts >= $1 and (status = 'pending' or (status = 'sending' and locked_until < $2))",
        )
        .bind(max_attempts)
        .bind(now))
}

/// Inserts many `pending` emails in one statement; returns their ids in order.
pub async fn insert_emails(
    exec: &mut impl Exec,
    new: &[NewEmail<'_>],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = new.iter().map(|_| Uuid::now_v7()).collect();
    if new.is_empty() {
        return Ok(ids);
    }
    on_conn!(exec, |c| {
        let mut query = sqlx::QueryBuilder::new(
            "insert into emails (id, kind, user_id, to_address, subject, body_text, body_html, \
             status, attempts, created_at, updated_at) ",
        );
        query.push_values(ids.iter().zip(new), |mut row, (id, e)| {
            row.push_bind(*id)
                .push_bind(e.kind.as_str())
                .push_bind(e.user_id)
                .push_bind(e.to_address)
                .push_bind(e.subject)
                .push_bind(e.body_text)
                .push_bind(e.body_html)
                .push_bind("pending")
                .push_bind(0_i32)
                .push_bind(now)
                .push_bind(now);
        });
        query.build().execute(&mut *c).await.map(|_| ())
    })?;
    Ok(ids)
}

/// The admin's outbox filter: a status (any when `None`) and a pattern on the address from
/// [`contains_pattern`](crate::store::admin::contains_pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailFilter {
    pub status: Option<EmailStatus>,
    pub to_like: String,
}

/// Every email.
impl Default for EmailFilter {
    fn default() -> Self {
        Self {
            status: None,
            to_like: "%".into(),
        }
    }
}

macro_rules! email_filter {
    () => {
        " from emails where ($1 is null or status = $1) and lower(to_address) like $2 escape '\\'"
    };
}

pub async fn count_filtered_emails(
    exec: &mut impl Exec,
    filter: &EmailFilter,
) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(concat!("select count(*)", email_filter!()))
            .bind(filter.status.map(EmailStatus::as_str))
            .bind(&filter.to_like)
            .fetch_one(&mut *c)
            .await
    })
}

/// Newest first.
pub async fn list_filtered_emails(
    exec: &mut impl Exec,
    filter: &EmailFilter,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<EmailRow>> {
    on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            columns!(),
            email_filter!(),
            " order by created_at desc, id desc limit $3 offset $4"
        ))
        .bind(filter.status.map(EmailStatus::as_str))
        .bind(&filter.to_like)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })
}

/// How many rows are in each status (statuses with none are absent).
pub async fn count_by_status(exec: &mut impl Exec) -> sqlx::Result<Vec<(EmailStatus, i64)>> {
    on_conn!(exec, |c| {
        sqlx::query_as("select status, count(*) from emails group by status order by status")
            .fetch_all(&mut *c)
            .await
    })
}

/// Gives a `failed` row a fresh set of attempts: back to `pending`, attempts 0. The last error
/// stays until the next attempt replaces it. True when the row was `failed`.
pub async fn retry_failed_email(
    exec: &mut impl Exec,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = execute!(
        exec,
        sqlx::query(
            "update emails set status = 'pending', attempts = 0, locked_until = null, \
             updated_at = $2 where id = $1 and status = 'failed'",
        )
        .bind(id)
        .bind(now)
    )?;
    Ok(updated > 0)
}
