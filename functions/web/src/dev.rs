//! Development-only pages, routed only when DEBUG is on.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use minijinja::context;
use shared::store::emails;

use crate::{AppState, WebError};

pub fn routes() -> Router<AppState> {
    Router::new().route("/_dev/mail", get(mailbox))
}

/// `/_dev/mail`: what the outbox holds, newest first, as the recipient would read it.
async fn mailbox(State(state): State<AppState>) -> Result<Html<String>, WebError> {
    let mut conn = state.db.acquire().await?;
    let rows = emails::list_recent_emails(&mut conn, 50).await?;
    drop(conn);
    let emails: Vec<_> = rows
        .into_iter()
        .map(|r| {
            context! {
                id => r.id.to_string(),
                kind => r.kind,
                to_address => r.to_address,
                subject => r.subject,
                body_text => r.body_text,
                body_html => r.body_html,
                status => r.status,
                attempts => r.attempts,
                last_error => r.last_error,
                provider_message_id => r.provider_message_id,
                created_at => r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                sent_at => r.sent_at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            }
        })
        .collect();
    state.templates.render("dev_mail.html", context! { emails })
}
