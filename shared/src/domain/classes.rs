//! Classes and their schedule: the pure part (no database, no HTTP).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use uuid::Uuid;

use crate::error::FieldErrors;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recurrence {
    None,
    Daily,
    Weekly,
}

impl Recurrence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::None, Self::Daily, Self::Weekly]
            .into_iter()
            .find(|r| r.as_str() == raw.trim())
    }

    fn step_days(self) -> Option<i64> {
        match self {
            Self::None => None,
            Self::Daily => Some(1),
            Self::Weekly => Some(7),
        }
    }
}

/// When a class happens: its first start and how it repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub starts_at: DateTime<Utc>,
    pub duration: TimeDelta,
    pub recurrence: Recurrence,
    /// The last local date (in the display time zone) an occurrence may start on.
    pub repeat_until: Option<NaiveDate>,
}

impl Schedule {
    /// The starts in `[from, to)`. A recurrence keeps the first start's wall-clock time in
    /// `tz`, so a 09:30 class stays at 09:30 local across daylight-saving changes. A local time
    /// that does not exist that day (the spring-forward gap) moves an hour later; one that
    /// happens twice (fall back) takes the first.
    pub fn starts_between(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let Some(step) = self.recurrence.step_days() else {
            return if self.starts_at >= from && self.starts_at < to {
                vec![self.starts_at]
            } else {
                Vec::new()
            };
        };
        let first = self.starts_at.with_timezone(&tz).naive_local();
        // Jump close to `from` instead of walking from a first start long ago (a day of slack
        // for time-zone offsets).
        let skip = ((from - self.starts_at).num_days() - 1).max(0) / step;
        let mut starts = Vec::new();
        for n in skip.. {
            let local = first + TimeDelta::days(n * step);
            if self.repeat_until.is_some_and(|last| local.date() > last) {
                break;
            }
            let start = resolve(tz, local);
            if start >= to {
                break;
            }
            if start >= from {
                starts.push(start);
            }
        }
        starts
    }
}

impl Schedule {
    /// True when no start can fall at or after `t`: a one-off class that started before it,
    /// or a recurrence whose last date ends before it.
    pub fn ends_before(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        match (self.recurrence, self.repeat_until) {
            (Recurrence::None, _) => self.starts_at < t,
            (_, Some(last)) => last
                .succ_opt()
                .map(|day_after| resolve(tz, day_after.and_time(chrono::NaiveTime::MIN)))
                .is_some_and(|end| end <= t),
            (_, None) => false,
        }
    }
}

/// A local wall-clock time as UTC (see [`Schedule::starts_between`] for gaps and overlaps).
fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => resolve(tz, local + TimeDelta::hours(1)),
    }
}

/// A class as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub location: String,
    pub schedule: Schedule,
    pub capacity: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A class's fields as staff enter them, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInput {
    pub title: String,
    pub description: String,
    pub location: String,
    pub schedule: Schedule,
    pub capacity: i32,
}

/// The raw fields of a class form or JSON body, before checking. Every field is optional so
/// that `PATCH` can send only what changes; [`ClassDraft::check`] fills the rest from `current`.
/// Only `repeat_until` may be `null`; in any other field `null` is refused (the schema says
/// so), not read as "absent".
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ClassDraft {
    #[serde(deserialize_with = "present")]
    pub title: Option<String>,
    #[serde(deserialize_with = "present")]
    pub description: Option<String>,
    #[serde(deserialize_with = "present")]
    pub location: Option<String>,
    /// RFC 3339 (`2026-12-01T09:30:00Z`), or a local `2026-12-01T09:30` in the display zone
    /// (what an HTML `datetime-local` input sends).
    #[serde(deserialize_with = "present")]
    pub starts_at: Option<String>,
    #[serde(deserialize_with = "present")]
    pub duration_minutes: Option<i64>,
    #[serde(deserialize_with = "present")]
    pub capacity: Option<i64>,
    #[serde(deserialize_with = "present")]
    pub recurrence: Option<String>,
    /// `YYYY-MM-DD`; empty or null for no end (absent: unchanged).
    #[serde(deserialize_with = "null_as_empty")]
    pub repeat_until: Option<String>,
}

/// A field that is there has a value: `null` is an error (absent is `None`, by `default`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A JSON `null` is sent on purpose (clear the value), unlike an absent field (keep it).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::Deserialize as _;
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_default()))
}

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 5_000;
/// A week: nothing in a booking app lasts longer.
pub const DURATION_MAX_MINUTES: i64 = 7 * 24 * 60;
pub const CAPACITY_MAX: i64 = 10_000;

impl ClassDraft {
    /// The checked input, taking unspecified fields from `current` (an update) or failing
    /// with a message per missing or invalid field (a create).
    pub fn check(&self, current: Option<&Class>, tz: Tz) -> Result<ClassInput, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut fail = |field: &str, message: String| {
            errors.insert(field.to_owned(), message);
        };
        let title = match (&self.title, current) {
            (Some(t), _) => t.trim().to_owned(),
            (None, Some(c)) => c.title.clone(),
            (None, None) => String::new(),
        };
        if title.is_empty() {
            fail("title", "enter a title".into());
        } else if title.chars().count() > TITLE_MAX {
            fail("title", format!("use at most {TITLE_MAX} characters"));
        } else if let Err(e) = super::check_text(&title, false) {
            fail("title", e.0);
        }
        let text = |value: &Option<String>, current: Option<&String>| {
            value
                .as_deref()
                .map(|v| v.trim().to_owned())
                .or_else(|| current.cloned())
                .unwrap_or_default()
        };
        let description = text(&self.description, current.map(|c| &c.description));
        let location = text(&self.location, current.map(|c| &c.location));
        for (field, value, multi_line) in [
            ("description", &description, true),
            ("location", &location, false),
        ] {
            if value.chars().count() > TEXT_MAX {
                fail(field, format!("use at most {TEXT_MAX} characters"));
            } else if let Err(e) = super::check_text(value, multi_line) {
                fail(field, e.0);
            }
        }
        let starts_at = match (&self.starts_at, current) {
            (Some(raw), _) => parse_start(raw, tz).map_err(|m| fail("starts_at", m)).ok(),
            (None, Some(c)) => Some(c.schedule.starts_at),
            (None, None) => {
                fail("starts_at", "enter a start time".into());
                None
            }
        };
        let duration = match (self.duration_minutes, current) {
            (Some(m), _) if (1..=DURATION_MAX_MINUTES).contains(&m) => Some(TimeDelta::minutes(m)),
            (Some(_), _) => {
                fail(
                    "duration_minutes",
                    format!("enter between 1 and {DURATION_MAX_MINUTES} minutes"),
                );
                None
            }
            (None, Some(c)) => Some(c.schedule.duration),
            (None, None) => {
                fail("duration_minutes", "enter a duration in minutes".into());
                None
            }
        };
        let capacity = match (self.capacity, current) {
            (Some(n), _) if (1..=CAPACITY_MAX).contains(&n) => Some(n as i32),
            (Some(_), _) => {
                fail(
                    "capacity",
                    format!("enter a number of places between 1 and {CAPACITY_MAX}"),
                );
                None
            }
            (None, Some(c)) => Some(c.capacity),
            (None, None) => {
                fail("capacity", "enter the number of places".into());
                None
            }
        };
        let recurrence = match (&self.recurrence, current) {
            (Some(raw), _) => Recurrence::parse(raw).or_else(|| {
                fail(
                    "recurrence",
                    "choose \"none\", \"daily\" or \"weekly\"".into(),
                );
                None
            }),
            (None, Some(c)) => Some(c.schedule.recurrence),
            (None, None) => Some(Recurrence::None),
        };
        let repeat_until = match (&self.repeat_until, current) {
            (Some(raw), _) if raw.trim().is_empty() => Some(None),
            (Some(raw), _) => match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
                Ok(date) => Some(Some(date)),
                Err(_) => {
                    fail("repeat_until", "enter a date as YYYY-MM-DD".into());
                    None
                }
            },
            (None, Some(c)) => Some(c.schedule.repeat_until),
            (None, None) => Some(None),
        };
        if let (Some(start), Some(Some(until))) = (starts_at, repeat_until)
            && until < start.with_timezone(&tz).date_naive()
        {
            fail(
                "repeat_until",
                "the last date cannot be before the first start".into(),
            );
        }
        match (starts_at, duration, capacity, recurrence, repeat_until) {
            (
                Some(starts_at),
                Some(duration),
                Some(capacity),
                Some(recurrence),
                Some(repeat_until),
            ) if errors.is_empty() => {
                Ok(ClassInput {
                    title,
                    description,
                    location,
                    schedule: Schedule {
                        starts_at,
                        duration,
                        recurrence,
                        // An end date means nothing without a recurrence.
                        repeat_until: repeat_until.filter(|_| recurrence != Recurrence::None),
                    },
                    capacity,
                })
            }
            _ => Err(errors),
        }
    }
}

/// RFC 3339 with an offset, or a local date and time (`YYYY-MM-DDTHH:MM[:SS]`) in `tz`.
fn parse_start(raw: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(crate::clock::truncate(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(raw, format) {
            return Ok(resolve(tz, local));
        }
    }
    Err("enter a date and time, e.g. 2026-12-01T09:30:00Z".into())
}

/// One dated instance of a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub id: Uuid,
    pub class_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub booked: i32,
}

/// A user's place in an occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    pub occurrence_id: Uuid,
    pub class_id: Uuid,
    pub class_title: String,
    pub starts_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn schedule(start: &str, recurrence: Recurrence, until: Option<&str>) -> Schedule {
        Schedule {
            starts_at: at(start),
            duration: TimeDelta::minutes(60),
            recurrence,
            repeat_until: until.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        }
    }

    #[test]
    fn a_class_without_recurrence_happens_once() {
        let s = schedule("2026-12-01T09:30:00Z", Recurrence::None, None);
        let all = s.starts_between(
            Tz::UTC,
            at("2026-11-01T00:00:00Z"),
            at("2027-01-01T00:00:00Z"),
        );
        assert_eq!(all, vec![at("2026-12-01T09:30:00Z")]);
        assert!(
            s.starts_between(
                Tz::UTC,
                at("2026-12-01T09:30:01Z"),
                at("2027-01-01T00:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn daily_and_weekly_repeat_within_the_window_and_stop_at_the_end_date() {
        let daily = schedule(
            "2026-12-01T09:30:00Z",
            Recurrence::Daily,
            Some("2026-12-04"),
        );
        let all = daily.starts_between(
            Tz::UTC,
            at("2026-11-01T00:00:00Z"),
            at("2027-01-01T00:00:00Z"),
        );
        assert_eq!(
            all,
            ["01", "02", "03", "04"]
                .map(|d| at(&format!("2026-12-{d}T09:30:00Z")))
                .to_vec()
        );
        let weekly = schedule("2026-12-01T09:30:00Z", Recurrence::Weekly, None);
        let window = weekly.starts_between(
            Tz::UTC,
            at("2026-12-09T00:00:00Z"),
            at("2026-12-23T00:00:00Z"),
        );
        assert_eq!(
            window,
            vec![at("2026-12-15T09:30:00Z"), at("2026-12-22T09:30:00Z")]
        );
    }

    #[test]
    fn a_start_long_ago_jumps_to_the_window_instead_of_walking_there() {
        let daily = schedule("2020-01-01T08:00:00Z", Recurrence::Daily, None);
        let all = daily.starts_between(
            Tz::UTC,
            at("2026-12-01T00:00:00Z"),
            at("2026-12-03T00:00:00Z"),
        );
        assert_eq!(
            all,
            vec![at("2026-12-01T08:00:00Z"), at("2026-12-02T08:00:00Z")]
        );
    }

    #[test]
    fn recurrences_keep_the_local_time_across_daylight_saving_changes() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // 09:30 in London is 08:30 UTC in summer and 09:30 UTC in winter; the clocks go back on
        // 2026-10-25.
        let weekly = schedule(
            "2026-10-18T08:30:00Z",
            Recurrence::Weekly,
            Some("2026-10-25"),
        );
        let all = weekly.starts_between(tz, at("2026-10-01T00:00:00Z"), at("2026-11-30T00:00:00Z"));
        assert_eq!(
            all,
            vec![at("2026-10-18T08:30:00Z"), at("2026-10-25T09:30:00Z")]
        );
        // The end date is a local date: a 23:30 local class on the last day still counts.
        let tz: Tz = "America/New_York".parse().unwrap();
        let late = schedule(
            "2026-12-01T04:30:00Z",
            Recurrence::Daily,
            Some("2026-12-02"),
        );
        let all = late.starts_between(tz, at("2026-11-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        // 04:30 UTC is 23:30 the evening before in New York: local dates Nov 30, Dec 1, Dec 2.
        assert_eq!(
            all,
            vec![
                at("2026-12-01T04:30:00Z"),
                at("2026-12-02T04:30:00Z"),
                at("2026-12-03T04:30:00Z")
            ]
        );
    }

    #[test]
    fn a_local_time_in_the_spring_forward_gap_moves_an_hour_later() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // 01:30 local does not exist on 2027-03-28 in London.
        let daily = schedule(
            "2027-03-27T01:30:00Z",
            Recurrence::Daily,
            Some("2027-03-29"),
        );
        let all = daily.starts_between(tz, at("2027-03-01T00:00:00Z"), at("2027-04-01T00:00:00Z"));
        assert_eq!(
            all,
            vec![
                at("2027-03-27T01:30:00Z"),
                at("2027-03-28T01:30:00Z"),
                at("2027-03-29T00:30:00Z")
            ]
        );
    }

    #[test]
    fn a_draft_is_checked_field_by_field() {
        let errors = ClassDraft::default().check(None, Tz::UTC).unwrap_err();
        for field in ["title", "starts_at", "duration_minutes", "capacity"] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
        let bad = ClassDraft {
            title: Some("Yoga".into()),
            starts_at: Some("next tuesday".into()),
            duration_minutes: Some(0),
            capacity: Some(-1),
            recurrence: Some("monthly".into()),
            repeat_until: Some("2026-13-01".into()),
            ..Default::default()
        };
        let errors = bad.check(None, Tz::UTC).unwrap_err();
        for field in [
            "starts_at",
            "duration_minutes",
            "capacity",
            "recurrence",
            "repeat_until",
        ] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
        let good = ClassDraft {
            title: Some(" Yoga ".into()),
            starts_at: Some("2026-12-01T09:30".into()),
            duration_minutes: Some(60),
            capacity: Some(12),
            recurrence: Some("weekly".into()),
            repeat_until: Some("2027-01-31".into()),
            ..Default::default()
        };
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let input = good.check(None, tz).unwrap();
        assert_eq!(input.title, "Yoga");
        assert_eq!(
            input.schedule.starts_at,
            at("2026-12-01T08:30:00Z"),
            "local time in TIME_ZONE"
        );
        let before = ClassDraft {
            repeat_until: Some("2026-11-01".into()),
            ..good
        };
        assert!(
            before
                .check(None, tz)
                .unwrap_err()
                .contains_key("repeat_until")
        );
    }
}
