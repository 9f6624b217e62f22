//! Classes and their occurrences: list with search, a class with its upcoming occurrences
//! (capacity, delete), edit through the staff form's code, delete.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use minijinja::{Value, context};
use serde::Deserialize;
use shared::error::Error;
use shared::services::{admin, classes};
use uuid::Uuid;

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::pages::classes::{ClassForm, class_form_page, edit_page};
use crate::paging::PageQuery;
use crate::state::AppState;

#[derive(Deserialize, Default, serde::Serialize)]
#[serde(default)]
pub(super) struct Search {
    q: String,
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    query: PageQuery,
    Query(search): Query<Search>,
) -> PageResult {
    let page = admin::list_classes(&state.db, &admin.user, &search.q, query.request).await?;
    let items: Vec<Value> = page
        .results
        .iter()
        .map(|c| {
            context! {
                id => c.id.to_string(),
                title => &c.title,
                starts => when(&state, c.schedule.starts_at),
                recurrence => c.schedule.recurrence.as_str(),
                repeat_until => c.schedule.repeat_until.map(|d| d.to_string()),
                capacity => c.capacity,
                location => &c.location,
            }
        })
        .collect();
    let ctx = context! {
        classes => items,
        search => minijinja::value::Serde(&search),
        pager => pager(&query, &page),
    };
    Ok(admin
        .render("admin/classes.html", "classes", ctx)
        .await?
        .into_response())
}

/// The class with its upcoming occurrences; `errors` of a refused capacity change, by
/// occurrence id.
async fn class_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    query: &PageQuery,
    notice: Option<&str>,
    problem: Option<(Uuid, String)>,
) -> Result<axum::response::Html<String>, crate::error::WebError> {
    let class = classes::get_class(&state.db, id).await?;
    let page = classes::list_occurrences(&state.db, id, query.request).await?;
    let occurrences: Vec<Value> = page
        .results
        .iter()
        .map(|o| {
            context! {
                id => o.id.to_string(),
                starts => when(state, o.starts_at),
                capacity => o.capacity,
                booked => o.booked,
                problem => problem.as_ref().filter(|(p, _)| *p == o.id).map(|(_, m)| m.as_str()),
            }
        })
        .collect();
    let ctx = context! {
        class => context! {
            id => class.id.to_string(),
            title => &class.title,
            description => &class.description,
            location => &class.location,
            starts => when(state, class.schedule.starts_at),
            duration_minutes => class.schedule.duration.num_minutes(),
            capacity => class.capacity,
            recurrence => class.schedule.recurrence.as_str(),
            repeat_until => class.schedule.repeat_until.map(|d| d.to_string()),
            created => when(state, class.created_at),
            updated => when(state, class.updated_at),
        },
        occurrences,
        pager => pager(query, &page),
        notice,
    };
    admin.render("admin/class.html", "classes", ctx).await
}

pub(super) async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    query: PageQuery,
    Query(n): Query<Notice>,
) -> PageResult {
    let page = class_page(&state, &admin, id, &query, notice(&n.notice), None).await?;
    Ok(page.into_response())
}

pub(super) async fn edit_form(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    let action = format!("/admin/classes/{id}/edit");
    edit_page(&state, &admin.page, id, &action).await
}

pub(super) async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<ClassForm>,
) -> PageResult {
    let draft = form.update_draft(&state, id).await?;
    let tz = state.config.time_zone;
    match admin::update_class(&state.db, tz, &admin.user, id, &draft).await {
        Ok(_) => Ok(done(&format!("/admin/classes/{id}"), "class_saved")),
        Err(Error::Invalid(errors)) => {
            let action = format!("/admin/classes/{id}/edit");
            let html = class_form_page(&state, &admin.page, &action, &form, &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::delete_class(&state.db, &admin.user, id).await?;
    Ok(done("/admin/classes", "class_deleted"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CapacityForm {
    capacity: String,
}

/// A refused capacity is shown on the class page beside the occurrence, with 422.
pub(super) async fn occurrence_capacity(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    query: PageQuery,
    Form(form): Form<CapacityForm>,
) -> PageResult {
    match admin::set_occurrence_capacity(&state.db, &admin.user, id, &form.capacity).await {
        Ok(occurrence) => Ok(done(
            &format!("/admin/classes/{}", occurrence.class_id),
            "capacity_saved",
        )),
        Err(Error::Invalid(errors)) => {
            let occurrence = classes::get_occurrence(&state.db, id).await?;
            let class_id = occurrence.class_id;
            let query = query.at_path(&format!("/admin/classes/{class_id}"));
            let message = errors.into_values().next().unwrap_or_default();
            let page =
                class_page(&state, &admin, class_id, &query, None, Some((id, message))).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete_occurrence(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    let (occurrence, _) = admin::delete_occurrence(&state.db, &admin.user, id).await?;
    Ok(done(
        &format!("/admin/classes/{}", occurrence.class_id),
        "occurrence_deleted",
    ))
}

/// One occurrence with who booked it, each booking with a "Cancel".
pub(super) async fn occurrence(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(n): Query<Notice>,
) -> PageResult {
    let (occurrence, bookings) = admin::occurrence_bookings(&state.db, &admin.user, id).await?;
    let class = classes::get_class(&state.db, occurrence.class_id).await?;
    let bookings: Vec<Value> = bookings
        .iter()
        .map(|b| {
            context! {
                id => b.id.to_string(),
                user_id => b.user_id.to_string(),
                email => &b.email,
                booked_at => when(&state, b.created_at),
            }
        })
        .collect();
    let ctx = context! {
        class => context! { id => class.id.to_string(), title => &class.title },
        occurrence => context! {
            id => occurrence.id.to_string(),
            starts => when(&state, occurrence.starts_at),
            ends => when(&state, occurrence.ends_at),
            capacity => occurrence.capacity,
            booked => occurrence.booked,
            started => occurrence.starts_at <= shared::clock::now(),
        },
        bookings,
        notice => notice(&n.notice),
    };
    Ok(admin
        .render("admin/occurrence.html", "classes", ctx)
        .await?
        .into_response())
}

/// Cancels someone's booking (their place is freed) and goes back to the occurrence.
pub(super) async fn cancel_booking(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    let occurrence_id = admin::cancel_booking(&state.db, &admin.user, id).await?;
    Ok(done(
        &format!("/admin/occurrences/{occurrence_id}"),
        "booking_cancelled",
    ))
}
