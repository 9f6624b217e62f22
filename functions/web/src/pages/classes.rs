//! Class pages: the list, a class with its upcoming occurrences (book / cancel), "my
//! bookings", and the staff forms to create, edit and delete classes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use chrono_tz::Tz;
use minijinja::{Value, context};
use serde::Deserialize;
use shared::domain::classes::{Class, ClassDraft};
use shared::error::{Error, FieldErrors};
use shared::services::classes;
use uuid::Uuid;

use super::{Notice, Page, PageResult, SignedIn, local, pager};
use crate::error::WebError;
use crate::paging::PageQuery;
use crate::session::{safe_next, see_other};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/classes", get(list))
        .route("/classes/new", get(new_form).post(create))
        .route("/classes/{id}", get(show))
        .route("/classes/{id}/edit", get(edit_form).post(update))
        .route("/classes/{id}/delete", post(delete))
        .route("/occurrences/{id}/book", post(book))
        .route("/occurrences/{id}/cancel", post(cancel))
        .route("/bookings", get(bookings))
}

fn class_view(class: &Class, tz: Tz) -> Value {
    context! {
        id => class.id.to_string(),
        title => &class.title,
        description => &class.description,
        location => &class.location,
        starts => local(class.schedule.starts_at, tz),
        duration_minutes => class.schedule.duration.num_minutes(),
        capacity => class.capacity,
        recurrence => class.schedule.recurrence.as_str(),
        repeat_until => class.schedule.repeat_until.map(|d| d.to_string()),
    }
}

async fn list(State(state): State<AppState>, page: Page, query: PageQuery) -> PageResult {
    let listed = classes::list_classes(&state.db, query.request).await?;
    let tz = state.config.time_zone;
    let items: Vec<Value> = listed.results.iter().map(|c| class_view(c, tz)).collect();
    let ctx =
        context! { classes => items, pager => pager(&query, &listed), time_zone => tz.name() };
    Ok(page.render("classes.html", ctx).await?.into_response())
}

fn class_notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "booked" => "You are booked. We will email you a reminder an hour before it starts.",
        "cancelled" => "Your booking is cancelled.",
        "created" => "The class is created, with its occurrences for the next two weeks.",
        "updated" => "The class is saved.",
        _ => return None,
    })
}

/// The class page, with `problem` shown when a booking was refused.
async fn class_page(
    state: &AppState,
    page: &Page,
    id: Uuid,
    query: &PageQuery,
    notice: Option<&str>,
    problem: Option<&str>,
) -> Result<Html<String>, WebError> {
    let class = classes::get_class(&state.db, id).await?;
    let listed = classes::list_occurrences(&state.db, id, query.request).await?;
    let ids: Vec<Uuid> = listed.results.iter().map(|o| o.id).collect();
    let booked = match page.user().await? {
        Some(user) => classes::booked_among(&state.db, &user, &ids).await?,
        None => Vec::new(),
    };
    let tz = state.config.time_zone;
    let occurrences: Vec<Value> = listed
        .results
        .iter()
        .map(|o| {
            context! {
                id => o.id.to_string(),
                starts => local(o.starts_at, tz),
                available => (o.capacity - o.booked).max(0),
                capacity => o.capacity,
                booked_by_me => booked.contains(&o.id),
            }
        })
        .collect();
    let ctx = context! {
        class => class_view(&class, tz),
        occurrences,
        pager => pager(query, &listed),
        notice,
        problem,
        back => format!("/classes/{id}"),
    };
    page.render("class.html", ctx).await
}

async fn show(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<Uuid>,
    query: PageQuery,
    Query(notice): Query<Notice>,
) -> PageResult {
    let notice = class_notice(&notice.notice);
    let html = class_page(&state, &page, id, &query, notice, None).await?;
    Ok(html.into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Back {
    back: String,
}

/// Books a place; a refusal (full, started, already booked, unverified) is shown on the class
/// page with its status.
async fn book(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
    query: PageQuery,
) -> PageResult {
    match classes::book(&state.db, &signed_in.user, id).await {
        Ok(booking) => Ok(see_other(
            &format!("/classes/{}?notice=booked", booking.class_id),
            None,
        )),
        Err(e @ (Error::Conflict(_) | Error::Forbidden(_))) => {
            let status = if matches!(e, Error::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::FORBIDDEN
            };
            let occurrence = classes::get_occurrence(&state.db, id).await?;
            let query = query.at_path(&format!("/classes/{}", occurrence.class_id));
            let problem = e.to_string();
            let html = class_page(
                &state,
                &signed_in.page,
                occurrence.class_id,
                &query,
                None,
                Some(&problem),
            )
            .await?;
            Ok((status, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn cancel(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
    Form(form): Form<Back>,
) -> PageResult {
    classes::cancel_booking(&state.db, &signed_in.user, id).await?;
    let back = safe_next(&form.back).unwrap_or("/bookings");
    let separator = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(
        &format!("{back}{separator}notice=cancelled"),
        None,
    ))
}

async fn bookings(
    State(state): State<AppState>,
    signed_in: SignedIn,
    query: PageQuery,
    Query(notice): Query<Notice>,
) -> PageResult {
    let page = classes::list_bookings(&state.db, &signed_in.user, query.request).await?;
    let tz = state.config.time_zone;
    let now = Utc::now();
    let items: Vec<Value> = page
        .results
        .iter()
        .map(|b| {
            context! {
                occurrence_id => b.occurrence_id.to_string(),
                class_id => b.class_id.to_string(),
                title => &b.class_title,
                starts => local(b.starts_at, tz),
                upcoming => b.starts_at > now,
            }
        })
        .collect();
    let ctx = context! {
        bookings => items,
        pager => pager(&query, &page),
        notice => class_notice(&notice.notice),
    };
    Ok(signed_in
        .page
        .render("bookings.html", ctx)
        .await?
        .into_response())
}

// ---- Staff forms ---------------------------------------------------------------------------

/// A class form as the browser sends it: every field a string, so a non-number is a field
/// error, not a rejected request.
#[derive(Deserialize, Default, Clone, serde::Serialize)]
#[serde(default)]
pub(super) struct ClassForm {
    title: String,
    description: String,
    location: String,
    starts_at: String,
    duration_minutes: String,
    capacity: String,
    recurrence: String,
    repeat_until: String,
}

impl ClassForm {
    pub(super) fn draft(&self) -> ClassDraft {
        // Not a number: 0, which the check refuses with the field's range.
        let number = |raw: &str| -> Option<i64> {
            let raw = raw.trim();
            (!raw.is_empty()).then(|| raw.parse().unwrap_or(0))
        };
        ClassDraft {
            title: Some(self.title.clone()),
            description: Some(self.description.clone()),
            location: Some(self.location.clone()),
            starts_at: Some(self.starts_at.clone()).filter(|s| !s.trim().is_empty()),
            duration_minutes: number(&self.duration_minutes),
            capacity: number(&self.capacity),
            recurrence: Some(self.recurrence.clone()).filter(|s| !s.trim().is_empty()),
            repeat_until: Some(self.repeat_until.clone()),
        }
    }

    /// The draft of an edit: an unchanged start stays as stored. The form shows the start to
    /// the minute in local time, so re-reading it would move a start that has seconds, or falls
    /// in the repeated hour of a DST change.
    pub(super) async fn update_draft(
        &self,
        state: &AppState,
        id: Uuid,
    ) -> Result<ClassDraft, WebError> {
        let mut draft = self.draft();
        let current = classes::get_class(&state.db, id).await?;
        if self.starts_at.trim() == Self::from_class(&current, state.config.time_zone).starts_at {
            draft.starts_at = None;
        }
        Ok(draft)
    }

    pub(super) fn from_class(class: &Class, tz: Tz) -> Self {
        Self {
            title: class.title.clone(),
            description: class.description.clone(),
            location: class.location.clone(),
            starts_at: class
                .schedule
                .starts_at
                .with_timezone(&tz)
                .format("%Y-%m-%dT%H:%M")
                .to_string(),
            duration_minutes: class.schedule.duration.num_minutes().to_string(),
            capacity: class.capacity.to_string(),
            recurrence: class.schedule.recurrence.as_str().to_owned(),
            repeat_until: class
                .schedule
                .repeat_until
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }
}

fn staff(signed_in: &SignedIn) -> Result<(), WebError> {
    // The services check again; this spares a form to someone who cannot use it.
    if signed_in.user.is_staff && signed_in.user.is_active {
        Ok(())
    } else {
        Err(WebError(Error::Forbidden(
            "only staff can change classes".into(),
        )))
    }
}

pub(super) async fn class_form_page(
    state: &AppState,
    page: &Page,
    action: &str,
    form: &ClassForm,
    errors: &FieldErrors,
) -> Result<Html<String>, WebError> {
    let ctx = context! {
        action,
        form => minijinja::value::Serde(form),
        errors,
        time_zone => state.config.time_zone.name(),
    };
    page.render("class_form.html", ctx).await
}

async fn new_form(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    staff(&signed_in)?;
    let form = ClassForm {
        recurrence: "none".into(),
        duration_minutes: "60".into(),
        ..Default::default()
    };
    let html = class_form_page(
        &state,
        &signed_in.page,
        "/classes/new",
        &form,
        &FieldErrors::new(),
    )
    .await?;
    Ok(html.into_response())
}

async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<ClassForm>,
) -> PageResult {
    staff(&signed_in)?;
    let tz = state.config.time_zone;
    match classes::create_class(&state.db, tz, &signed_in.user, &form.draft()).await {
        Ok(class) => Ok(see_other(
            &format!("/classes/{}?notice=created", class.id),
            None,
        )),
        Err(Error::Invalid(errors)) => {
            let html =
                class_form_page(&state, &signed_in.page, "/classes/new", &form, &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn edit_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
) -> PageResult {
    staff(&signed_in)?;
    let action = format!("/classes/{id}/edit");
    edit_page(&state, &signed_in.page, id, &action).await
}

/// The form filled with class `id`, posting to `action`.
pub(super) async fn edit_page(state: &AppState, page: &Page, id: Uuid, action: &str) -> PageResult {
    let class = classes::get_class(&state.db, id).await?;
    let form = ClassForm::from_class(&class, state.config.time_zone);
    let html = class_form_page(state, page, action, &form, &FieldErrors::new()).await?;
    Ok(html.into_response())
}

async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
    Form(form): Form<ClassForm>,
) -> PageResult {
    staff(&signed_in)?;
    let tz = state.config.time_zone;
    let draft = form.update_draft(&state, id).await?;
    match classes::update_class(&state.db, tz, &signed_in.user, id, &draft).await {
        Ok(_) => Ok(see_other(&format!("/classes/{id}?notice=updated"), None)),
        Err(Error::Invalid(errors)) => {
            let action = format!("/classes/{id}/edit");
            let html = class_form_page(&state, &signed_in.page, &action, &form, &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<Uuid>,
) -> PageResult {
    classes::delete_class(&state.db, &signed_in.user, id).await?;
    Ok(see_other("/classes", None))
}
