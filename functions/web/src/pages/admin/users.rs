//! Users: search and filters, one account's page, and its actions.

use axum::extract::{Path, Query, State};
use axum::{Form, response::IntoResponse};
use minijinja::{Value, context};
use serde::Deserialize;
use shared::domain::User;
use shared::error::Error;
use shared::services::admin;
use shared::store::admin::contains_pattern;
use shared::store::users::UserFilter;
use uuid::Uuid;

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::AppState;
use crate::paging::PageQuery;

/// The list's search form as sent: each flag is "", "yes" or "no".
#[derive(Deserialize, Default, serde::Serialize)]
#[serde(default)]
pub(super) struct Search {
    q: String,
    verified: String,
    staff: String,
    active: String,
}

fn flag(name: &str, raw: &str) -> Result<Option<bool>, Error> {
    match raw {
        "" => Ok(None),
        "yes" => Ok(Some(true)),
        "no" => Ok(Some(false)),
        other => Err(Error::BadRequest(format!(
            "{name} must be yes, no or empty (got {other:?})"
        ))),
    }
}

impl Search {
    fn filter(&self) -> Result<UserFilter, Error> {
        Ok(UserFilter {
            email_like: contains_pattern(&self.q),
            verified: flag("verified", &self.verified)?,
            staff: flag("staff", &self.staff)?,
            active: flag("active", &self.active)?,
        })
    }
}

fn user_view(state: &AppState, u: &User) -> Value {
    context! {
        id => u.id.to_string(),
        email => u.email.as_str(),
        is_verified => u.is_verified,
        is_active => u.is_active,
        is_staff => u.is_staff,
        is_superuser => u.is_superuser,
        created => when(state, u.created_at),
        last_login => u.last_login_at.map(|t| when(state, t)),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    query: PageQuery,
    Query(search): Query<Search>,
) -> PageResult {
    let filter = search.filter()?;
    let page = admin::list_users(&state.db, &admin.user, &filter, query.request).await?;
    let users: Vec<Value> = page.results.iter().map(|u| user_view(&state, u)).collect();
    let ctx = context! {
        users,
        search => minijinja::value::Serde(&search),
        pager => pager(&query, &page),
    };
    Ok(admin
        .render(&state, "admin/users.html", "users", ctx)?
        .into_response())
}

pub(super) async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(n): Query<Notice>,
) -> PageResult {
    let detail = admin::get_user(&state.db, &admin.user, id).await?;
    let ctx = context! {
        account => user_view(&state, &detail.user),
        sessions => detail.sessions,
        api_tokens => detail.api_tokens,
        is_me => detail.user.id == admin.user.id,
        outbox_url => format!(
            "/admin/emails?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("to", detail.user.email.as_str())
                .finish()
        ),
        notice => notice(&n.notice),
    };
    Ok(admin
        .render(&state, "admin/user.html", "users", ctx)?
        .into_response())
}

fn back(id: Uuid) -> String {
    format!("/admin/users/{id}")
}

pub(super) async fn deactivate(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::deactivate_user(&state.db, &admin.user, id).await?;
    Ok(done(&back(id), "deactivated"))
}

pub(super) async fn reactivate(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::reactivate_user(&state.db, &admin.user, id).await?;
    Ok(done(&back(id), "reactivated"))
}

#[derive(Deserialize)]
pub(super) struct StaffForm {
    staff: String,
}

/// `staff=yes` grants staff status, `staff=no` removes it.
pub(super) async fn staff(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<StaffForm>,
) -> PageResult {
    let staff = flag("staff", &form.staff)?
        .ok_or_else(|| Error::BadRequest("staff must be yes or no".into()))?;
    admin::set_staff(&state.db, &admin.user, id, staff).await?;
    Ok(done(
        &back(id),
        if staff {
            "staff_granted"
        } else {
            "staff_removed"
        },
    ))
}

pub(super) async fn resend_verification(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::resend_verification(&state.db, &state.mailing(), &admin.user, id).await?;
    Ok(done(&back(id), "verification_sent"))
}
