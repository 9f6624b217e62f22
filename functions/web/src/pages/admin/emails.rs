//! The email outbox: counts by status, a filtered list, one message, retry.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use minijinja::{Value, context};
use serde::Deserialize;
use shared::domain::EmailStatus;
use shared::error::Error;
use shared::services::admin::{self, EmailRow, EmailSearch};
use uuid::Uuid;

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::paging::PageQuery;
use crate::state::AppState;

#[derive(Deserialize, Default, serde::Serialize)]
#[serde(default)]
pub(super) struct Search {
    status: String,
    to: String,
}

impl Search {
    fn parse(&self) -> Result<EmailSearch<'_>, Error> {
        let status = match self.status.as_str() {
            "" => None,
            raw => Some(EmailStatus::parse(raw).ok_or_else(|| {
                Error::BadRequest(format!(
                    "status must be one of pending, sending, sent, failed (got {raw:?})"
                ))
            })?),
        };
        Ok(EmailSearch {
            status,
            to: &self.to,
        })
    }
}

fn email_view(state: &AppState, e: &EmailRow) -> Value {
    context! {
        id => e.id.to_string(),
        kind => &e.kind,
        to => &e.to_address,
        subject => &e.subject,
        status => &e.status,
        attempts => e.attempts,
        last_error => &e.last_error,
        provider_message_id => &e.provider_message_id,
        created => when(state, e.created_at),
        updated => when(state, e.updated_at),
        sent => e.sent_at.map(|t| when(state, t)),
        user_id => e.user_id.map(|u| u.to_string()),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    query: PageQuery,
    Query(search): Query<Search>,
) -> PageResult {
    let filter = search.parse()?;
    let counts = admin::email_counts(&state.db, &admin.user).await?;
    let page = admin::list_emails(&state.db, &admin.user, &filter, query.request).await?;
    let emails: Vec<Value> = page.results.iter().map(|e| email_view(&state, e)).collect();
    let ctx = context! {
        counts => counts.iter().map(|(s, n)| context! { status => s.as_str(), count => n }).collect::<Vec<_>>(),
        emails,
        search => minijinja::value::Serde(&search),
        pager => pager(&query, &page),
    };
    Ok(admin
        .render("admin/emails.html", "emails", ctx)
        .await?
        .into_response())
}

pub(super) async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(n): Query<Notice>,
) -> PageResult {
    let row = admin::get_email(&state.db, &admin.user, id).await?;
    let ctx = context! {
        email => email_view(&state, &row),
        body_text => &row.body_text,
        has_html => row.body_html.is_some(),
        notice => notice(&n.notice),
    };
    Ok(admin
        .render("admin/email.html", "emails", ctx)
        .await?
        .into_response())
}

pub(super) async fn retry(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    admin::retry_email(&state.db, &state.queue, &admin.user, id).await?;
    Ok(done(&format!("/admin/emails/{id}"), "retried"))
}

/// The email's HTML on its own, for the preview frame: sandboxed, no scripts, nothing fetched
/// (inline styles and `data:` images only), framable by our own pages alone.
pub(super) async fn html(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> PageResult {
    let row = admin::get_email(&state.db, &admin.user, id).await?;
    let html = row
        .body_html
        .ok_or_else(|| Error::NotFound("this email has no HTML part".into()))?;
    Ok((
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                 frame-ancestors 'self'",
            ),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        Html(html),
    )
        .into_response())
}
