//! The worker queue's dead-letter queue: list, redrive one or all, delete one.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use minijinja::{Value, context};
use shared::error::Error;
use shared::queue::Message;
use shared::services::dead_letters::{self as dlq, DeadLetterQueue, Located};

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::paging::PageQuery;
use crate::state::AppState;

const PATH: &str = "/admin/dead-letters";

/// The queue, or a 409 saying why there is none (for the actions).
async fn queue(state: &AppState) -> Result<DeadLetterQueue, Error> {
    match dlq::locate(&state.queue).await? {
        Located::Found(queue) => Ok(queue),
        Located::LocalQueue => Err(Error::Conflict(
            "there is no dead-letter queue: WORKER_QUEUE_URL is not set".into(),
        )),
        Located::NoRedrivePolicy => Err(Error::Conflict(
            "the worker queue has no dead-letter queue (no redrive policy)".into(),
        )),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    query: PageQuery,
    Query(n): Query<Notice>,
) -> PageResult {
    let located = dlq::locate(&state.queue).await?;
    let (queue, messages, page_ctx) = match &located {
        Located::Found(queue) => {
            let page = dlq::list(queue, &admin.user, query.request).await?;
            let messages: Vec<Value> = page
                .results
                .iter()
                .map(|m| {
                    let (kind, email_id, problem) = match &m.decoded {
                        Ok(Message::SendEmail { email_id }) => {
                            ("send_email", Some(email_id.to_string()), None)
                        }
                        Err(e) => ("unreadable", None, Some(e.as_str())),
                    };
                    context! {
                        id => &m.message_id,
                        body => &m.body,
                        sent => m.sent_at.map(|t| when(&state, t)),
                        receive_count => m.receive_count,
                        kind, email_id, problem,
                    }
                })
                .collect();
            let queue = context! { url => &queue.url, approximate => queue.approximate_count };
            (Some(queue), messages, Some(pager(&query, &page)))
        }
        _ => (None, Vec::new(), None),
    };
    let ctx = context! {
        queue,
        local => matches!(located, Located::LocalQueue),
        messages,
        pager => page_ctx,
        max_listed => dlq::MAX_LISTED,
        notice => notice(&n.notice),
    };
    Ok(admin
        .render("admin/dead_letters.html", "dead_letters", ctx)
        .await?
        .into_response())
}

pub(super) async fn redrive(
    State(state): State<AppState>,
    admin: Admin,
    Path(message_id): Path<String>,
) -> PageResult {
    let queue = queue(&state).await?;
    dlq::redrive_one(&state.db, &queue, &admin.user, &message_id).await?;
    Ok(done(PATH, "redriven"))
}

pub(super) async fn redrive_all(State(state): State<AppState>, admin: Admin) -> PageResult {
    let queue = queue(&state).await?;
    dlq::redrive_all(&state.db, &queue, &admin.user).await?;
    Ok(done(PATH, "redriven_all"))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(message_id): Path<String>,
) -> PageResult {
    let queue = queue(&state).await?;
    dlq::delete_one(&state.db, &queue, &admin.user, &message_id).await?;
    Ok(done(PATH, "dead_letter_deleted"))
}
