//! The time as the database stores it.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Now, truncated to microseconds: PostgreSQL keeps microseconds, so truncating here makes a
/// value read back equal to the value written, on both backends.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}
