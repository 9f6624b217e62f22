//! The time as the database stores it.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Now, truncated to microseconds: PostgreSQL keeps microseconds, so truncating here makes a
/// value read back equal to the value written, on both backends.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// A time as the database will give it back (microseconds).
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}
