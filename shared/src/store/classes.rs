//! `classes`, `occurrences` and `bookings`.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

use super::{Counted, PageRows};
use crate::db::Exec;
use crate::domain::classes::{Booking, Class, ClassInput, Occurrence, Recurrence, Schedule};
use crate::{execute, on_conn};

macro_rules! class_columns {
    () => {
        "id, title, description, location, starts_at, duration_minutes, capacity, recurrence, \
         repeat_until, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct ClassRow {
    id: Uuid,
    title: String,
    description: String,
    location: String,
    starts_at: DateTime<Utc>,
    duration_minutes: i32,
    capacity: i32,
    recurrence: String,
    repeat_until: Option<NaiveDate>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ClassRow> for Class {
    fn from(r: ClassRow) -> Self {
        Class {
            id: r.id,
            title: r.title,
            description: r.description,
            location: r.location,
            schedule: Schedule {
                starts_at: r.starts_at,
                duration: TimeDelta::minutes(r.duration_minutes.into()),
                // The check constraint admits only the three values.
                recurrence: Recurrence::parse(&r.recurrence).unwrap_or(Recurrence::None),
                repeat_until: r.repeat_until,
            },
            capacity: r.capacity,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn minutes(d: TimeDelta) -> i32 {
    i32::try_from(d.num_minutes()).unwrap_or(i32::MAX)
}

pub async fn insert_class(
    exec: &mut impl Exec,
    input: &ClassInput,
    now: DateTime<Utc>,
) -> sqlx::Result<Class> {
    let id = Uuid::now_v7();
    execute!(
        exec,
        sqlx::query(
            "insert into classes (id, title, description, location, starts_at, duration_minutes, \
             capacity, recurrence, repeat_until, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(id)
        .bind(&input.title)
        .bind(&input.description)
        .bind(&input.location)
        .bind(input.schedule.starts_at)
        .bind(minutes(input.schedule.duration))
        .bind(input.capacity)
        .bind(input.schedule.recurrence.as_str())
        .bind(input.schedule.repeat_until)
        .bind(now)
    )?;
    Ok(Class {
        id,
        title: input.title.clone(),
        description: input.description.clone(),
        location: input.location.clone(),
        schedule: input.schedule.clone(),
        capacity: input.capacity,
        created_at: now,
        updated_at: now,
    })
}

/// Replaces a class's fields; its occurrences are re-materialized by the caller.
pub async fn update_class(
    exec: &mut impl Exec,
    id: Uuid,
    input: &ClassInput,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = execute!(
        exec,
        sqlx::query(
            "update classes set title = $2, description = $3, location = $4, starts_at = $5, \
             duration_minutes = $6, capacity = $7, recurrence = $8, repeat_until = $9, \
             materialized_until = null, updated_at = $10 where id = $1",
        )
        .bind(id)
        .bind(&input.title)
        .bind(&input.description)
        .bind(&input.location)
        .bind(input.schedule.starts_at)
        .bind(minutes(input.schedule.duration))
        .bind(input.capacity)
        .bind(input.schedule.recurrence.as_str())
        .bind(input.schedule.repeat_until)
        .bind(now)
    )?;
    Ok(updated > 0)
}

/// Deletes a class with its occurrences and bookings (cascade); true when it existed.
pub async fn delete_class(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<bool> {
    let deleted = execute!(
        exec,
        sqlx::query("delete from classes where id = $1").bind(id)
    )?;
    Ok(deleted > 0)
}

pub async fn find_class(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<Option<Class>> {
    let row: Option<ClassRow> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            class_columns!(),
            " from classes where id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
    })?;
    Ok(row.map(Class::from))
}

pub async fn count_classes(exec: &mut impl Exec) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from classes")
            .fetch_one(&mut *c)
            .await
    })
}

/// A page of classes by first start, with the count of all classes.
pub async fn list_classes(
    exec: &mut impl Exec,
    limit: i64,
    offset: i64,
) -> sqlx::Result<PageRows<Class>> {
    let rows: Vec<Counted<ClassRow>> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            class_columns!(),
            ", (select count(*) from classes) as total_count \
             from classes order by starts_at, id limit $1 offset $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(PageRows::new(rows))
}

/// Up to `limit` classes, after `after` in id order, whose occurrences are not materialized up
/// to `needed_until` (one index range on `materialized_until`).
pub async fn classes_to_materialize(
    exec: &mut impl Exec,
    needed_until: DateTime<Utc>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Class>> {
    let rows: Vec<ClassRow> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            class_columns!(),
            " from classes where (materialized_until is null or materialized_until < $1) \
             and ($2 is null or id > $2) order by id limit $3"
        ))
        .bind(needed_until)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(rows.into_iter().map(Class::from).collect())
}

/// An occurrence to create.
pub struct NewOccurrence {
    pub class_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
}

/// Rows per insert statement: 6 parameters each stays well under SQLite's 32,766.
const OCCURRENCES_PER_STATEMENT: usize = 2_000;

/// Inserts occurrences, up to [`OCCURRENCES_PER_STATEMENT`] per statement; those that exist
/// already (same class and start) are left alone. Returns how many were new.
pub async fn insert_occurrences(
    exec: &mut impl Exec,
    occurrences: &[NewOccurrence],
) -> sqlx::Result<u64> {
    let mut inserted = 0;
    for chunk in occurrences.chunks(OCCURRENCES_PER_STATEMENT) {
        inserted += insert_occurrence_rows(exec, chunk).await?;
    }
    Ok(inserted)
}

async fn insert_occurrence_rows(
    exec: &mut impl Exec,
    occurrences: &[NewOccurrence],
) -> sqlx::Result<u64> {
    on_conn!(exec, |c| {
        let mut query = sqlx::QueryBuilder::new(
            "insert into occurrences (id, class_id, starts_at, ends_at, capacity, booked) ",
        );
        query.push_values(occurrences, |mut row, o| {
            row.push_bind(Uuid::now_v7())
                .push_bind(o.class_id)
                .push_bind(o.starts_at)
                .push_bind(o.ends_at)
                .push_bind(o.capacity)
                .push_bind(0_i32);
        });
        query.push(" on conflict (class_id, starts_at) do nothing");
        query
            .build()
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Records that these classes have occurrences up to `until`, in one statement.
pub async fn set_materialized_until(
    exec: &mut impl Exec,
    class_ids: &[Uuid],
    until: DateTime<Utc>,
) -> sqlx::Result<()> {
    if class_ids.is_empty() {
        return Ok(());
    }
    on_conn!(exec, |c| {
        let mut query = sqlx::QueryBuilder::new("update classes set materialized_until = ");
        query.push_bind(until).push(" where id in (");
        let mut ids = query.separated(", ");
        for id in class_ids {
            ids.push_bind(*id);
        }
        query.push(")");
        query.build().execute(&mut *c).await.map(|_| ())
    })
}

/// After a class's schedule changed: its future occurrences that nobody booked go (they are
/// materialized again from the new schedule); booked ones stay, with the new capacity where
/// it still fits their bookings.
pub async fn reset_future_occurrences(
    exec: &mut impl Exec,
    class_id: Uuid,
    capacity: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "delete from occurrences where class_id = $1 and starts_at > $2 and booked = 0",
        )
        .bind(class_id)
        .bind(now)
    )?;
    set_future_capacity(exec, class_id, capacity, now).await
}

/// The new capacity for a class's future occurrences, where it still fits their bookings.
pub async fn set_future_capacity(
    exec: &mut impl Exec,
    class_id: Uuid,
    capacity: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query(
            "update occurrences set capacity = case when booked > $3 then booked else $3 end \
             where class_id = $1 and starts_at > $2",
        )
        .bind(class_id)
        .bind(now)
        .bind(capacity)
    )?;
    Ok(())
}

/// The columns [`OccurrenceRow`] reads.
macro_rules! occurrence_columns {
    () => {
        "id, class_id, starts_at, ends_at, capacity, booked"
    };
}

#[derive(sqlx::FromRow)]
struct OccurrenceRow {
    id: Uuid,
    class_id: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    capacity: i32,
    booked: i32,
}

impl From<OccurrenceRow> for Occurrence {
    fn from(r: OccurrenceRow) -> Self {
        Occurrence {
            id: r.id,
            class_id: r.class_id,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            capacity: r.capacity,
            booked: r.booked,
        }
    }
}

pub async fn count_upcoming_occurrences(
    exec: &mut impl Exec,
    class_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "select count(*) from occurrences where class_id = $1 and starts_at > $2",
        )
        .bind(class_id)
        .bind(now)
        .fetch_one(&mut *c)
        .await
    })
}

/// A page of a class's occurrences that have not started, soonest first, with the count of
/// all of them.
pub async fn list_upcoming_occurrences(
    exec: &mut impl Exec,
    class_id: Uuid,
    now: DateTime<Utc>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<PageRows<Occurrence>> {
    let rows: Vec<Counted<OccurrenceRow>> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            occurrence_columns!(),
            ", (select count(*) from occurrences where class_id = $1 and starts_at > $2) \
             as total_count \
             from occurrences where class_id = $1 and starts_at > $2 \
             order by starts_at limit $3 offset $4"
        ))
        .bind(class_id)
        .bind(now)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(PageRows::new(rows))
}

/// Takes one place if the occurrence has not started and is not full, atomically (the row is
/// locked by the update; SQLite serializes writers). `None`: full, started or unknown.
pub async fn take_place(
    exec: &mut impl Exec,
    occurrence_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update occurrences set booked = booked + 1 \
             where id = $1 and booked < capacity and starts_at > $2 returning class_id",
        )
        .bind(occurrence_id)
        .bind(now)
        .fetch_optional(&mut *c)
        .await
    })
}

pub async fn release_place(exec: &mut impl Exec, occurrence_id: Uuid) -> sqlx::Result<()> {
    execute!(
        exec,
        sqlx::query("update occurrences set booked = booked - 1 where id = $1 and booked > 0")
            .bind(occurrence_id)
    )?;
    Ok(())
}

/// One occurrence (to tell apart "full", "started" and "unknown" when a booking fails).
pub async fn find_occurrence(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<Option<Occurrence>> {
    let row: Option<OccurrenceRow> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            occurrence_columns!(),
            " from occurrences where id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
    })?;
    Ok(row.map(Occurrence::from))
}

/// Inserts a booking; `None` when the user already holds one for this occurrence.
pub async fn insert_booking(
    exec: &mut impl Exec,
    user_id: Uuid,
    occurrence_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    let id = Uuid::now_v7();
    let inserted = execute!(
        exec,
        sqlx::query(
            "insert into bookings (id, user_id, occurrence_id, created_at) values ($1, $2, $3, $4) \
             on conflict (user_id, occurrence_id) do nothing",
        )
        .bind(id)
        .bind(user_id)
        .bind(occurrence_id)
        .bind(now)
    )?;
    Ok((inserted > 0).then_some(id))
}

/// Deletes a user's booking of an occurrence that has not started; true when there was one.
pub async fn delete_booking(
    exec: &mut impl Exec,
    user_id: Uuid,
    occurrence_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let deleted = execute!(
        exec,
        sqlx::query(
            "delete from bookings where user_id = $1 and occurrence_id = $2 \
             and occurrence_id in (select id from occurrences where starts_at > $3)",
        )
        .bind(user_id)
        .bind(occurrence_id)
        .bind(now)
    )?;
    Ok(deleted > 0)
}

#[derive(sqlx::FromRow)]
struct BookingRow {
    id: Uuid,
    occurrence_id: Uuid,
    class_id: Uuid,
    class_title: String,
    starts_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

pub async fn count_bookings(exec: &mut impl Exec, user_id: Uuid) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from bookings where user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *c)
            .await
    })
}

/// A page of a user's bookings, latest occurrence first.
pub async fn list_bookings(
    exec: &mut impl Exec,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Booking>> {
    let rows: Vec<BookingRow> = on_conn!(exec, |c| {
        sqlx::query_as(
            "select b.id, b.occurrence_id, o.class_id, c.title as class_title, o.starts_at, \
             b.created_at from bookings b \
             join occurrences o on o.id = b.occurrence_id \
             join classes c on c.id = o.class_id \
             where b.user_id = $1 order by o.starts_at desc, b.id limit $2 offset $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|r| Booking {
            id: r.id,
            occurrence_id: r.occurrence_id,
            class_id: r.class_id,
            class_title: r.class_title,
            starts_at: r.starts_at,
            created_at: r.created_at,
        })
        .collect())
}

/// The occurrence ids (among `ids`) this user has booked, for marking "booked" in a list.
pub async fn booked_among(
    exec: &mut impl Exec,
    user_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    on_conn!(exec, |c| {
        let mut query =
            sqlx::QueryBuilder::new("select occurrence_id from bookings where user_id = ");
        query.push_bind(user_id).push(" and occurrence_id in (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        query.build_query_scalar().fetch_all(&mut *c).await
    })
}

/// A reminder to send: one booking, claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueReminder {
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub class_title: String,
    pub location: String,
    pub starts_at: DateTime<Utc>,
}

/// Claims up to `limit` bookings whose occurrence starts in `(now, until]` and whose reminder
/// is not yet queued, by setting `reminded_at` where it is still null (so two concurrent runs
/// claim disjoint sets), and returns what the emails need. Two statements, whatever the count.
pub async fn claim_due_reminders(
    exec: &mut impl Exec,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DueReminder>> {
    let claimed: Vec<Uuid> = on_conn!(exec, |c| {
        sqlx::query_scalar(
            "update bookings set reminded_at = $1 where reminded_at is null and id in ( \
                 select b.id from bookings b join occurrences o on o.id = b.occurrence_id \
                 where b.reminded_at is null and o.starts_at > $1 and o.starts_at <= $2 \
                 order by o.starts_at limit $3) \
             returning id",
        )
        .bind(now)
        .bind(until)
        .bind(limit)
        .fetch_all(&mut *c)
        .await
    })?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    on_conn!(exec, |c| {
        let mut query = sqlx::QueryBuilder::new(
            "select b.id as booking_id, u.id as user_id, u.email, c.title as class_title, \
             c.location, o.starts_at from bookings b \
             join users u on u.id = b.user_id \
             join occurrences o on o.id = b.occurrence_id \
             join classes c on c.id = o.class_id where b.id in (",
        );
        let mut list = query.separated(", ");
        for id in &claimed {
            list.push_bind(*id);
        }
        query.push(") order by o.starts_at, b.id");
        query.build_query_as().fetch_all(&mut *c).await
    })
}

/// Changes an occurrence's capacity, never below its bookings. `None`: no such occurrence;
/// `Some(false)`: it has more bookings than `capacity`.
pub async fn set_occurrence_capacity(
    exec: &mut impl Exec,
    id: Uuid,
    capacity: i32,
) -> sqlx::Result<Option<bool>> {
    let updated = execute!(
        exec,
        sqlx::query("update occurrences set capacity = $2 where id = $1 and booked <= $2")
            .bind(id)
            .bind(capacity)
    )?;
    if updated > 0 {
        return Ok(Some(true));
    }
    Ok(find_occurrence(exec, id).await?.map(|_| false))
}

/// Deletes an occurrence and its bookings (cascade); returns how many bookings went, or
/// `None` when there was no such occurrence.
pub async fn delete_occurrence(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<Option<i64>> {
    let bookings: i64 = on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from bookings where occurrence_id = $1")
            .bind(id)
            .fetch_one(&mut *c)
            .await
    })?;
    let deleted = execute!(
        exec,
        sqlx::query("delete from occurrences where id = $1").bind(id)
    )?;
    Ok((deleted > 0).then_some(bookings))
}

/// Classes whose title matches `title_like` (a
/// [`contains_pattern`](crate::store::admin::contains_pattern)), counted.
pub async fn count_classes_titled(exec: &mut impl Exec, title_like: &str) -> sqlx::Result<i64> {
    on_conn!(exec, |c| {
        sqlx::query_scalar("select count(*) from classes where lower(title) like $1 escape '\\'")
            .bind(title_like)
            .fetch_one(&mut *c)
            .await
    })
}

/// A page of the classes whose title matches `title_like`, in the public list's order.
pub async fn list_classes_titled(
    exec: &mut impl Exec,
    title_like: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Class>> {
    let rows: Vec<ClassRow> = on_conn!(exec, |c| {
        sqlx::query_as(concat!(
            "select ",
            class_columns!(),
            " from classes where lower(title) like $1 escape '\\' \
             order by starts_at, id limit $2 offset $3"
        ))
        .bind(title_like)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *c)
        .await
    })?;
    Ok(rows.into_iter().map(Class::from).collect())
}

/// Gives back the places held by a user's bookings (before the account is deleted: the
/// cascade removes the bookings but would leave `booked` counting them). Returns how many.
pub async fn release_places_of_user(exec: &mut impl Exec, user_id: Uuid) -> sqlx::Result<u64> {
    execute!(
        exec,
        sqlx::query(
            "update occurrences set booked = booked - 1 \
             where booked > 0 and id in (select occurrence_id from bookings where user_id = $1)",
        )
        .bind(user_id)
    )
}

/// One booking of an occurrence, with who made it (the admin's list).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OccurrenceBooking {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Who booked an occurrence, in booking order (at most its capacity).
pub async fn list_occurrence_bookings(
    exec: &mut impl Exec,
    occurrence_id: Uuid,
) -> sqlx::Result<Vec<OccurrenceBooking>> {
    on_conn!(exec, |c| {
        sqlx::query_as(
            "select b.id, b.user_id, u.email, b.created_at from bookings b \
             join users u on u.id = b.user_id \
             where b.occurrence_id = $1 order by b.created_at, b.id",
        )
        .bind(occurrence_id)
        .fetch_all(&mut *c)
        .await
    })
}

/// The user and occurrence of a booking.
pub async fn find_booking(exec: &mut impl Exec, id: Uuid) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    on_conn!(exec, |c| {
        sqlx::query_as("select user_id, occurrence_id from bookings where id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await
    })
}
