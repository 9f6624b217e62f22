//! Classes, occurrences and bookings in the JSON API. Reading classes is public; changing them
//! is for staff; booking needs a verified account. Lists follow the pagination contract.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use shared::domain::classes::{Booking, Class, ClassDraft, Occurrence};
use shared::services::classes;
use uuid::Uuid;

use super::{ApiUser, JsonObject};
use crate::error::WebError;
use crate::paging::{PageBody, PageQuery};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/classes", get(list).post(create))
        .route("/api/classes/{id}", get(show).patch(update).delete(delete))
        .route("/api/classes/{id}/occurrences", get(occurrences))
        .route("/api/occurrences/{id}/booking", post(book).delete(cancel))
        .route("/api/bookings", get(bookings))
}

/// RFC 3339 in UTC with a `Z` and whole seconds unless there is a fraction
/// (`2026-11-28T09:30:00Z`).
fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[derive(Serialize)]
pub struct ClassJson {
    id: Uuid,
    title: String,
    description: String,
    location: String,
    #[serde(serialize_with = "rfc3339")]
    starts_at: DateTime<Utc>,
    duration_minutes: i64,
    capacity: i32,
    recurrence: &'static str,
    repeat_until: Option<NaiveDate>,
    #[serde(serialize_with = "rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<Class> for ClassJson {
    fn from(c: Class) -> Self {
        Self {
            id: c.id,
            title: c.title,
            description: c.description,
            location: c.location,
            starts_at: c.schedule.starts_at,
            duration_minutes: c.schedule.duration.num_minutes(),
            capacity: c.capacity,
            recurrence: c.schedule.recurrence.as_str(),
            repeat_until: c.schedule.repeat_until,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct OccurrenceJson {
    id: Uuid,
    class_id: Uuid,
    #[serde(serialize_with = "rfc3339")]
    starts_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    ends_at: DateTime<Utc>,
    capacity: i32,
    booked: i32,
    available: i32,
}

impl From<Occurrence> for OccurrenceJson {
    fn from(o: Occurrence) -> Self {
        Self {
            id: o.id,
            class_id: o.class_id,
            starts_at: o.starts_at,
            ends_at: o.ends_at,
            capacity: o.capacity,
            booked: o.booked,
            available: (o.capacity - o.booked).max(0),
        }
    }
}

#[derive(Serialize)]
pub struct BookingJson {
    id: Uuid,
    occurrence_id: Uuid,
    class_id: Uuid,
    #[serde(serialize_with = "rfc3339")]
    starts_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<Booking> for BookingJson {
    fn from(b: Booking) -> Self {
        Self {
            id: b.id,
            occurrence_id: b.occurrence_id,
            class_id: b.class_id,
            starts_at: b.starts_at,
            created_at: b.created_at,
        }
    }
}

/// `GET /api/classes`: every class by first start, paginated.
async fn list(
    State(state): State<AppState>,
    query: PageQuery,
) -> Result<Json<PageBody<ClassJson>>, WebError> {
    let page = classes::list_classes(&state.db, query.request).await?;
    Ok(Json(query.body(page.map(ClassJson::from))))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<ClassJson>, WebError> {
    Ok(Json(classes::get_class(&state.db, id).await?.into()))
}

/// `POST /api/classes` (staff): 201 with the class; its occurrences exist at once.
async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    JsonObject(draft): JsonObject<ClassDraft>,
) -> Result<(StatusCode, Json<ClassJson>), WebError> {
    let class =
        classes::create_class(&state.db, state.config.time_zone, &user.user, &draft).await?;
    Ok((StatusCode::CREATED, Json(class.into())))
}

/// `PATCH /api/classes/{id}` (staff): only the fields sent change.
async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<Uuid>,
    JsonObject(draft): JsonObject<ClassDraft>,
) -> Result<Json<ClassJson>, WebError> {
    let class =
        classes::update_class(&state.db, state.config.time_zone, &user.user, id, &draft).await?;
    Ok(Json(class.into()))
}

/// `DELETE /api/classes/{id}` (staff): with its occurrences and bookings.
async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, WebError> {
    classes::delete_class(&state.db, &user.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/classes/{id}/occurrences`: those not started yet, soonest first.
async fn occurrences(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    query: PageQuery,
) -> Result<Json<PageBody<OccurrenceJson>>, WebError> {
    let page = classes::list_occurrences(&state.db, id, query.request).await?;
    Ok(Json(query.body(page.map(OccurrenceJson::from))))
}

/// `POST /api/occurrences/{id}/booking`: 201, or 409 when full, started or already booked.
async fn book(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<BookingJson>), WebError> {
    let booking = classes::book(&state.db, &user.user, id).await?;
    Ok((StatusCode::CREATED, Json(booking.into())))
}

/// `DELETE /api/occurrences/{id}/booking`: 204; the place is freed.
async fn cancel(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, WebError> {
    classes::cancel_booking(&state.db, &user.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/bookings`: the caller's bookings, latest class first.
async fn bookings(
    State(state): State<AppState>,
    user: ApiUser,
    query: PageQuery,
) -> Result<Json<PageBody<BookingJson>>, WebError> {
    let page = classes::list_bookings(&state.db, &user.user, query.request).await?;
    Ok(Json(query.body(page.map(BookingJson::from))))
}
