//! `auth_throttle`: failed attempts per key in fixed windows.

use chrono::{DateTime, Utc};

use crate::db::Exec;
use crate::{execute, on_conn};

/// Failures counted for `key` in a window that started after `window_cutoff`, and when that
/// window started; `None` when there are none.
pub async fn current_failures(
    exec: &mut impl Exec,
    key: &str,
    window_cutoff: DateTime<Utc>,
) -> sqlx::Result<Option<(i32, DateTime<Utc>)>> {
    on_conn!(exec, |c| {
        sqlx::query_as(
            "select failures, window_started_at from auth_throttle \
             where key = $1 and window_started_at > $2",
        )
        .bind(key)
        .bind(window_cutoff)
        .fetch_optional(&mut *c)
        .await
    })
}

/// Counts one failure (or attempt) for `key`: in the current window, or in a new one starting
/// `now` when the old window began before `window_cutoff`. One atomic statement, so concurrent
/// failures all count; returns the count in the window, this one included.
pub async fn record_failure(
    exec: &mut impl Exec,
    key: &str,
    now: DateTime<Utc>,
    window_cutoff: DateTime<Utc>,
) -> sqlx::Result<i32> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "insert into auth_throttle (key, window_started_at, failures) values ($1, $2, 1) \
             on conflict (key) do update set \
                 failures = case when auth_throttle.window_started_at > $3 \
                     then auth_throttle.failures + 1 else 1 end, \
                 window_started_at = case when auth_throttle.window_started_at > $3 \
                     then auth_throttle.window_started_at else $2 end \
             returning failures",
        )
        .bind(key)
        .bind(now)
        .bind(window_cutoff)
        .fetch_one(&mut *c)
        .await
    })
}

pub async fn clear(exec: &mut impl Exec, key: &str) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query("delete from auth_throttle where key = $1").bind(key)
    )?;
    Ok(())
}
