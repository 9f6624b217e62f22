//! Classes, occurrences and bookings: what staff and users do with them, and the
//! materialization the scheduler runs.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::clock;
use crate::db::{Db, Tx};
use crate::domain::User;
use crate::domain::classes::{Booking, Class, ClassDraft, Occurrence};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::classes::{self as store, NewOccurrence};

/// Occurrences exist at least this far ahead: two weeks of a weekly class to book.
pub const MATERIALIZE_AHEAD: TimeDelta = TimeDelta::days(14);
/// Each materialization reaches a day further, so a class is read once a day, not every tick.
const MATERIALIZE_SLACK: TimeDelta = TimeDelta::days(1);
/// Classes read per materialization batch: a select, the inserts (at most 16 occurrences a
/// class, 2,000 rows a statement: four at most) and one or two updates per batch.
pub const MATERIALIZE_BATCH: i64 = 500;
/// Far enough to mean "never again" for a class whose schedule has ended. A four-digit year:
/// SQLite compares times as RFC 3339 text, where a longer year would sort before 2026.
fn never() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::MAX_UTC) // 9999-12-31
}

/// Staff change classes; so do superusers, who may do anything (as in Django).
fn staff_only(actor: &User) -> Result<()> {
    if (actor.is_staff || actor.is_superuser) && actor.is_active {
        Ok(())
    } else {
        Err(Error::Forbidden("only staff can change classes".into()))
    }
}

/// Creates a class (staff) and its occurrences for the coming weeks, at once rather than at
/// the next scheduler tick.
pub async fn create_class(db: &Db, tz: Tz, actor: &User, draft: &ClassDraft) -> Result<Class> {
    staff_only(actor)?;
    let input = draft.check(None, tz).map_err(Error::Invalid)?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    let class = store::insert_class(&mut tx, &input, now).await?;
    materialize(&mut tx, std::slice::from_ref(&class), tz, now).await?;
    tx.commit().await?;
    tracing::info!(class_id = %class.id, actor = %actor.id, "class created");
    Ok(class)
}

/// Changes a class (staff). When the schedule changes, future occurrences nobody booked follow
/// it and booked ones stay where they are (people are coming); otherwise occurrences keep their
/// ids. Either way they take the new capacity where it fits their bookings.
pub async fn update_class(
    db: &Db,
    tz: Tz,
    actor: &User,
    id: Uuid,
    draft: &ClassDraft,
) -> Result<Class> {
    staff_only(actor)?;
    let mut tx = db.begin().await?;
    let current = store::find_class(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such class".into()))?;
    let input = draft.check(Some(&current), tz).map_err(Error::Invalid)?;
    let now = clock::now();
    store::update_class(&mut tx, id, &input, now).await?;
    if input.schedule == current.schedule {
        // Occurrences keep their ids (pages and API clients hold them); only places change.
        store::set_future_capacity(&mut tx, id, input.capacity, now).await?;
    } else {
        store::reset_future_occurrences(&mut tx, id, input.capacity, now).await?;
    }
    let class = Class {
        title: input.title,
        description: input.description,
        location: input.location,
        schedule: input.schedule,
        capacity: input.capacity,
        updated_at: now,
        ..current
    };
    materialize(&mut tx, std::slice::from_ref(&class), tz, now).await?;
    tx.commit().await?;
    tracing::info!(class_id = %id, actor = %actor.id, "class updated");
    Ok(class)
}

/// Deletes a class with its occurrences and bookings (staff).
pub async fn delete_class(db: &Db, actor: &User, id: Uuid) -> Result<()> {
    staff_only(actor)?;
    let mut conn = db.acquire().await?;
    if !store::delete_class(&mut conn, id).await? {
        return Err(Error::NotFound("no such class".into()));
    }
    tracing::info!(class_id = %id, actor = %actor.id, "class deleted");
    Ok(())
}

pub async fn get_class(db: &Db, id: Uuid) -> Result<Class> {
    let mut conn = db.acquire().await?;
    store::find_class(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such class".into()))
}

pub async fn list_classes(db: &Db, request: PageRequest) -> Result<Page<Class>> {
    let mut conn = db.acquire().await?;
    let listed = store::list_classes(&mut conn, request.limit(), request.offset()).await?;
    let count = listed.total_or(store::count_classes(&mut conn)).await?;
    request.check(count)?;
    Ok(Page::new(request, count, listed.rows))
}

/// A class's occurrences that have not started, soonest first.
pub async fn list_occurrences(
    db: &Db,
    class_id: Uuid,
    request: PageRequest,
) -> Result<Page<Occurrence>> {
    let mut conn = db.acquire().await?;
    if store::find_class(&mut conn, class_id).await?.is_none() {
        return Err(Error::NotFound("no such class".into()));
    }
    let now = clock::now();
    let listed = store::list_upcoming_occurrences(
        &mut conn,
        class_id,
        now,
        request.limit(),
        request.offset(),
    )
    .await?;
    let count = listed
        .total_or(store::count_upcoming_occurrences(&mut conn, class_id, now))
        .await?;
    request.check(count)?;
    Ok(Page::new(request, count, listed.rows))
}

pub async fn get_occurrence(db: &Db, id: Uuid) -> Result<Occurrence> {
    let mut conn = db.acquire().await?;
    store::find_occurrence(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound("no such occurrence".into()))
}

/// Which of these occurrences the user has booked.
pub async fn booked_among(db: &Db, user: &User, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut conn = db.acquire().await?;
    Ok(store::booked_among(&mut conn, user.id, ids).await?)
}

/// Books a place. Only verified accounts book (so the reminder can reach them). Capacity holds
/// under any concurrency: the place is taken by one guarded update of the occurrence row, in
/// the same transaction as the booking. Full, started, or already booked: 409 with the reason.
pub async fn book(db: &Db, user: &User, occurrence_id: Uuid) -> Result<Booking> {
    if !user.is_verified {
        return Err(Error::Forbidden(
            "verify your email address before booking".into(),
        ));
    }
    let now = clock::now();
    let mut tx = db.begin().await?;
    let Some(occurrence) = store::find_occurrence(&mut tx, occurrence_id).await? else {
        return Err(Error::NotFound("no such occurrence".into()));
    };
    let inserted = match store::insert_booking(&mut tx, user.id, occurrence_id, now).await {
        Ok(inserted) => inserted,
        // Deleted since it was read (its class was rescheduled or removed).
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            return Err(Error::NotFound("no such occurrence".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(booking_id) = inserted else {
        return Err(Error::Conflict("you have already booked this class".into()));
    };
    if store::take_place(&mut tx, occurrence_id, now)
        .await?
        .is_none()
    {
        // Dropping the transaction rolls the booking back.
        return Err(Error::Conflict(if occurrence.starts_at <= now {
            "this class has already started".into()
        } else {
            "this class is full".into()
        }));
    }
    let class = store::find_class(&mut tx, occurrence.class_id)
        .await?
        .ok_or_else(|| Error::NotFound("no such class".into()))?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, %occurrence_id, "booked");
    crate::metrics::count(crate::metrics::Metric::Bookings, &[]);
    Ok(Booking {
        id: booking_id,
        occurrence_id,
        class_id: class.id,
        class_title: class.title,
        starts_at: occurrence.starts_at,
        created_at: now,
    })
}

/// Cancels the user's booking of an occurrence that has not started; the place is freed.
pub async fn cancel_booking(db: &Db, user: &User, occurrence_id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    if !store::delete_booking(&mut tx, user.id, occurrence_id, clock::now()).await? {
        return Err(Error::NotFound(
            "you have no booking for this class that can still be cancelled".into(),
        ));
    }
    store::release_place(&mut tx, occurrence_id).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, %occurrence_id, "booking cancelled");
    Ok(())
}

pub async fn list_bookings(db: &Db, user: &User, request: PageRequest) -> Result<Page<Booking>> {
    let mut conn = db.acquire().await?;
    let count = store::count_bookings(&mut conn, user.id).await?;
    request.check(count)?;
    let bookings =
        store::list_bookings(&mut conn, user.id, request.limit(), request.offset()).await?;
    Ok(Page::new(request, count, bookings))
}

/// Inserts the occurrences of `classes` from `now` to the materialization horizon (existing
/// ones are left alone) and records how far each class is done: a bounded number of
/// statements, whatever the number of classes. Returns how many occurrences were new.
pub(crate) async fn materialize(
    tx: &mut Tx,
    classes: &[Class],
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<u64> {
    let horizon = now + MATERIALIZE_AHEAD + MATERIALIZE_SLACK;
    let mut new = Vec::new();
    let (mut ongoing, mut ended) = (Vec::new(), Vec::new());
    for class in classes {
        for start in class.schedule.starts_between(tz, now, horizon) {
            new.push(NewOccurrence {
                class_id: class.id,
                starts_at: start,
                ends_at: start + class.schedule.duration,
                capacity: class.capacity,
            });
        }
        if class.schedule.ends_before(tz, horizon) {
            ended.push(class.id);
        } else {
            ongoing.push(class.id);
        }
    }
    let inserted = store::insert_occurrences(tx, &new).await?;
    store::set_materialized_until(tx, &ongoing, horizon).await?;
    store::set_materialized_until(tx, &ended, never()).await?;
    Ok(inserted)
}

/// What one materialization pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Materialized {
    pub classes: u64,
    pub occurrences: u64,
    pub batches: u64,
}

/// Materializes every class whose occurrences fall short of [`MATERIALIZE_AHEAD`], in batches
/// of [`MATERIALIZE_BATCH`] classes, each in its own transaction (a crash loses at most one
/// batch, which the next run redoes).
pub async fn materialize_all(db: &Db, tz: Tz, now: DateTime<Utc>) -> Result<Materialized> {
    let mut done = Materialized::default();
    let mut after = None;
    loop {
        let mut tx = db.begin().await?;
        let classes = store::classes_to_materialize(
            &mut tx,
            now + MATERIALIZE_AHEAD,
            after,
            MATERIALIZE_BATCH,
        )
        .await?;
        let Some(last) = classes.last() else {
            break;
        };
        after = Some(last.id);
        done.occurrences += materialize(&mut tx, &classes, tz, now).await?;
        tx.commit().await?;
        // Tests crash a run here: a batch is committed, the rest not yet done.
        #[cfg(any(test, feature = "testing"))]
        crate::testing::faults::point("materialize: batch committed").await;
        done.classes += classes.len() as u64;
        done.batches += 1;
        if (classes.len() as i64) < MATERIALIZE_BATCH {
            break;
        }
    }
    Ok(done)
}
