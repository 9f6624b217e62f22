//! Users: search and filters, one account's page, and its actions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::{Form, response::IntoResponse};
use minijinja::{Value, context};
use serde::Deserialize;
use shared::domain::User;
use shared::error::{Error, FieldErrors};
use shared::services::admin::{self, UserSearch};
use uuid::Uuid;

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::error::WebError;
use crate::paging::PageQuery;
use crate::state::AppState;

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
    fn parse(&self) -> Result<UserSearch<'_>, Error> {
        Ok(UserSearch {
            email: &self.q,
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
    Query(n): Query<Notice>,
) -> PageResult {
    let page = list_page(
        &state,
        &admin,
        &query,
        &search,
        &CreateForm::default(),
        &FieldErrors::new(),
        notice(&n.notice),
    )
    .await?;
    Ok(page.into_response())
}

/// The users list with its search and the "Add user" form (`form` and `errors` of a refused
/// one).
async fn list_page(
    state: &AppState,
    admin: &Admin,
    query: &PageQuery,
    search: &Search,
    form: &CreateForm,
    errors: &FieldErrors,
    notice: Option<&str>,
) -> Result<Html<String>, WebError> {
    let page = admin::list_users(&state.db, &admin.user, &search.parse()?, query.request).await?;
    let users: Vec<Value> = page.results.iter().map(|u| user_view(state, u)).collect();
    let ctx = context! {
        users,
        search => minijinja::value::Serde(search),
        pager => pager(query, &page),
        new_user => context! {
            email => &form.email,
            is_verified => form.is_verified == "yes",
            is_staff => form.is_staff == "yes",
            is_superuser => form.is_superuser == "yes",
        },
        errors => errors,
        open_new => !errors.is_empty(),
        notice,
    };
    admin.render("admin/users.html", "users", ctx).await
}

/// The "Add user" form: each flag is a checkbox sending "yes".
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CreateForm {
    email: String,
    password: String,
    is_verified: String,
    is_staff: String,
    is_superuser: String,
}

/// Creates an account; a refused one shows the list again with the form's errors, with 422.
pub(super) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    query: PageQuery,
    Form(form): Form<CreateForm>,
) -> PageResult {
    let new = admin::NewAccount {
        email: &form.email,
        password: &form.password,
        is_verified: form.is_verified == "yes",
        is_staff: form.is_staff == "yes",
        is_superuser: form.is_superuser == "yes",
    };
    match admin::create_user(&state.db, &admin.user, &new).await {
        Ok(user) => Ok(done(&back(user.id), "user_created")),
        Err(Error::Invalid(errors)) => {
            let page = list_page(
                &state,
                &admin,
                &query,
                &Search::default(),
                &form,
                &errors,
                None,
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(n): Query<Notice>,
) -> PageResult {
    let page = user_page(&state, &admin, id, notice(&n.notice), None).await?;
    Ok(page.into_response())
}

/// One account with its sessions and API tokens; `password_error` of a refused new password.
async fn user_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    notice: Option<&str>,
    password_error: Option<&str>,
) -> Result<Html<String>, WebError> {
    let detail = admin::get_user(&state.db, &admin.user, id).await?;
    let (sessions, tokens) = admin::list_credentials(&state.db, &admin.user, id).await?;
    let session_list: Vec<Value> = sessions
        .iter()
        .map(|s| {
            context! {
                handle => &s.handle,
                created => when(state, s.created_at),
                last_seen => when(state, s.last_seen_at),
                expires => when(state, s.expires_at),
            }
        })
        .collect();
    let token_list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            context! {
                id => t.id.to_string(),
                name => &t.name,
                created => when(state, t.created_at),
                last_used => t.last_used_at.map(|at| when(state, at)),
                expires => t.expires_at.map(|at| when(state, at)),
            }
        })
        .collect();
    let ctx = context! {
        account => user_view(state, &detail.user),
        sessions => detail.sessions,
        api_tokens => detail.api_tokens,
        session_list,
        token_list,
        is_me => detail.user.id == admin.user.id,
        outbox_url => format!(
            "/admin/emails?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("to", detail.user.email.as_str())
                .finish()
        ),
        notice,
        password_error,
    };
    admin.render("admin/user.html", "users", ctx).await
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

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PasswordForm {
    password: String,
}

/// Sets the password the admin typed; a refused one shows the account page with the reason,
/// with 422.
pub(super) async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    match admin::set_user_password(&state.db, &admin.user, id, &form.password).await {
        Ok(_) => Ok(done(&back(id), "password_set")),
        Err(Error::Invalid(errors)) => {
            let message = errors.into_values().next().unwrap_or_default();
            let page = user_page(&state, &admin, id, None, Some(&message)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn send_password_reset(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::send_password_reset(&state.db, &state.mailing(), &admin.user, id).await?;
    Ok(done(&back(id), "reset_sent"))
}

/// The delete form's required checkbox.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DeleteForm {
    confirm: String,
}

/// Deletes the account once the form's "I understand" box is ticked (no script needed).
pub(super) async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    if form.confirm != "yes" {
        return Err(Error::BadRequest(
            "tick the box to confirm that the account is to be deleted".into(),
        )
        .into());
    }
    admin::delete_user(&state.db, &admin.user, id).await?;
    Ok(done("/admin/users", "user_deleted"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SessionForm {
    session: String,
}

pub(super) async fn revoke_session(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<SessionForm>,
) -> PageResult {
    admin::revoke_session(&state.db, &admin.user, id, &form.session).await?;
    Ok(done(&back(id), "session_revoked"))
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    token_id: Uuid,
}

pub(super) async fn revoke_api_token(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<TokenForm>,
) -> PageResult {
    admin::revoke_api_token(&state.db, &admin.user, id, form.token_id).await?;
    Ok(done(&back(id), "token_revoked"))
}

/// Ends every session and API token of the account.
pub(super) async fn sign_out_everywhere(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::revoke_all_credentials(&state.db, &admin.user, id).await?;
    Ok(done(&back(id), "signed_out"))
}
