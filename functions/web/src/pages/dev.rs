//! Development-only pages, routed only when DEBUG is on (inside the pages' session layer).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, header};
use axum::response::Html;
use axum::routing::get;
use minijinja::context;
use shared::services::dev_mailbox;

use super::Page;
use crate::error::WebError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/_dev/mail", get(mailbox))
}

/// Email HTML is styled inline; it is shown in a sandboxed `srcdoc` frame, which inherits the
/// page's policy, so this page allows inline styles (and nothing else more than other pages).
const MAILBOX_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: https:; object-src 'none'; base-uri 'self'; form-action 'self'; \
    frame-ancestors 'none'";

/// The http(s) links in an email's text, to be followed with a click rather than copied.
fn links_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.starts_with("https://") || word.starts_with("http://"))
        .map(|link| link.trim_end_matches(['.', ',', ')', ';']).to_owned())
        .collect()
}

/// `/_dev/mail`: what the outbox holds, newest first, as the recipient would read it.
async fn mailbox(
    State(state): State<AppState>,
    page: Page,
) -> Result<([(HeaderName, &'static str); 1], Html<String>), WebError> {
    let rows = dev_mailbox::recent_emails(&state.db, 50).await?;
    let emails: Vec<_> = rows
        .into_iter()
        .map(|r| {
            context! {
                id => r.id.to_string(),
                kind => r.kind,
                to_address => r.to_address,
                subject => r.subject,
                links => links_in(&r.body_text),
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
    let html = page.render("dev_mail.html", context! { emails }).await?;
    Ok(([(header::CONTENT_SECURITY_POLICY, MAILBOX_CSP)], html))
}
