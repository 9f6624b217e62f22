//! The development mailbox (a page with DEBUG on): the outbox's emails as their recipients
//! would read them.

use crate::db::Db;
use crate::error::Result;
use crate::store::emails;

pub use crate::store::emails::EmailRow;

/// The `limit` newest emails of the outbox, whatever their status.
pub async fn recent_emails(db: &Db, limit: i64) -> Result<Vec<EmailRow>> {
    let mut conn = db.acquire().await?;
    Ok(emails::list_recent_emails(&mut conn, limit).await?)
}
