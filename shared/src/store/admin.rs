//! `admin_actions`: the admin's log of who changed what, and the search helper its lists use.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Counted, PageRows};
use crate::db::Exec;
use crate::{execute, on_conn};

/// A logged admin action.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminAction {
    pub id: Uuid,
    pub actor_id: Option<Uuid>,
    pub actor_email: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_action(
    exec: &mut impl Exec,
    actor_id: Uuid,
    actor_email: &str,
    action: &str,
    target: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "insert into admin_actions (id, actor_id, actor_email, action, target, detail, \
             created_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(actor_id)
        .bind(actor_email)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(now)
    )?;
    Ok(())
}

pub async fn count_actions(exec: &mut impl Exec) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from admin_actions")
            .fetch_one(&mut *c)
            .await
    })
}

/// Newest first, with the count of all actions.
pub async fn list_actions(
    exec: &mut impl Exec,
    limit: i64,
    offset: i64,
) -> sqlx::Result<PageRows<AdminAction>> {
    let rows: Vec<Counted<AdminAction>> = on_conn!(exec, |c| {
        sqlx::query_as(
            "select id, actor_id, actor_email, action, target, detail, created_at, \
             (select count(*) from admin_actions) as total_count \
             from admin_actions order by created_at desc, id desc limit $1 offset $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(PageRows::new(rows))
}

/// A `like` pattern (with `escape '\'`) matching values that contain `needle`, lower-cased;
/// `%` for an empty needle. `%`, `_` and `\` in the needle match only themselves. Control
/// characters are dropped: stored text has none to match, and PostgreSQL refuses a NUL.
pub fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::from("%");
    for ch in needle
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
    {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    if pattern.len() > 1 {
        pattern.push('%');
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern(""), "%");
        assert_eq!(contains_pattern("  "), "%");
        assert_eq!(contains_pattern("Ann@"), "%ann@%");
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(contains_pattern("a\0b\r\n"), "%ab%");
    }
}
