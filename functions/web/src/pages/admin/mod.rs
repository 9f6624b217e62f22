//! `/admin`, for superusers: users, the email outbox, job runs, the
//! worker's dead-letter queue, and the log of admin actions.
// example-app:begin
//! And the example app's classes, their occurrences and bookings.
// example-app:end
//!
//! Every route is added through [`Routes`], which records it in [`route_list`] and puts it
//! behind [`guard`]: a visitor who is not signed in is sent to the login page, anyone else who
//! is not an active superuser gets 403, before any handler runs. The use cases check again
//! (`shared::services::admin`). Actions are POST forms, CSRF-checked by the session layer like
//! every page, and recorded with the acting user.

// example-app:begin
mod classes;
// example-app:end
mod dead_letters;
mod emails;
mod jobs;
mod users;

use axum::extract::{FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Router, routing};
use minijinja::{Value, context};
use shared::domain::User;
use shared::pagination::PageRequest;
use shared::services::{admin, dead_letters as dlq};

pub(super) use super::Notice;
use super::{Page, PageResult, local, pager};
use crate::error::WebError;
use crate::paging::PageQuery;
use crate::session::{self, Visitor};
use crate::state::AppState;

/// One admin route: its method and path pattern, as the router has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRoute {
    pub method: Method,
    pub path: &'static str,
}

/// The admin router under construction, and the list of what it routes.
struct Routes {
    router: Router<AppState>,
    list: Vec<AdminRoute>,
}

impl Routes {
    fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::GET, path, routing::get(handler))
    }

    fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::POST, path, routing::post(handler))
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.list.push(AdminRoute { method, path });
        // A second method on a path joins the first.
        self.router = self.router.route(path, route);
        self
    }
}

fn build() -> Routes {
    Routes {
        router: Router::new(),
        list: Vec::new(),
    }
    .get("/admin", dashboard)
    .get("/admin/log", log)
    .get("/admin/users", users::list)
    .post("/admin/users", users::create)
    .get("/admin/users/{id}", users::show)
    .post("/admin/users/{id}/password", users::set_password)
    .post(
        "/admin/users/{id}/password-reset",
        users::send_password_reset,
    )
    .post("/admin/users/{id}/delete", users::delete)
    .post("/admin/users/{id}/sessions/revoke", users::revoke_session)
    .post(
        "/admin/users/{id}/api-tokens/revoke",
        users::revoke_api_token,
    )
    .post("/admin/users/{id}/sign-out", users::sign_out_everywhere)
    .post("/admin/users/{id}/deactivate", users::deactivate)
    .post("/admin/users/{id}/reactivate", users::reactivate)
    .post("/admin/users/{id}/staff", users::staff)
    .post(
        "/admin/users/{id}/resend-verification",
        users::resend_verification,
    )
    .get("/admin/emails", emails::list)
    .get("/admin/emails/{id}", emails::show)
    .get("/admin/emails/{id}/html", emails::html)
    .post("/admin/emails/{id}/retry", emails::retry)
    // example-app:begin
    .get("/admin/classes", classes::list)
    .get("/admin/classes/{id}", classes::show)
    .get("/admin/classes/{id}/edit", classes::edit_form)
    .post("/admin/classes/{id}/edit", classes::update)
    .post("/admin/classes/{id}/delete", classes::delete)
    .post(
        "/admin/occurrences/{id}/capacity",
        classes::occurrence_capacity,
    )
    .post("/admin/occurrences/{id}/delete", classes::delete_occurrence)
    .get("/admin/occurrences/{id}", classes::occurrence)
    .post("/admin/bookings/{id}/cancel", classes::cancel_booking)
    // example-app:end
    .get("/admin/jobs", jobs::overview)
    .get("/admin/jobs/{name}", jobs::runs)
    .post("/admin/jobs/{name}/run", jobs::run_now)
    .get("/admin/dead-letters", dead_letters::list)
    .post("/admin/dead-letters/redrive", dead_letters::redrive_all)
    .post(
        "/admin/dead-letters/{message_id}/redrive",
        dead_letters::redrive,
    )
    .post(
        "/admin/dead-letters/{message_id}/delete",
        dead_letters::delete,
    )
}

/// The admin's routes, behind [`guard`].
pub fn routes(state: &AppState) -> Router<AppState> {
    build()
        .router
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
}

/// Every admin route (method and path), from the same builder as the router: the access test
/// walks this list.
pub fn route_list() -> Vec<AdminRoute> {
    build().list
}

/// The signed-in superuser of an admin request (put there by [`guard`]), and the page.
#[derive(Clone)]
pub struct Admin {
    pub user: User,
    pub page: Page,
}

/// Lets only active superusers through (module docs).
async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(visitor) = request.extensions().get::<Visitor>().cloned() else {
        return WebError::unexpected(anyhow::anyhow!("the admin ran outside the session layer"))
            .into_response();
    };
    let page = Page::new(&state, visitor);
    match page.user().await {
        Err(e) => e.into_response(),
        Ok(None) => session::login_redirect(request.method(), request.uri(), "/admin"),
        Ok(Some(user)) => match admin::require_superuser(&user) {
            Ok(()) => {
                request.extensions_mut().insert(Admin { user, page });
                next.run(request).await
            }
            Err(e) => WebError(e).into_response(),
        },
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, WebError> {
        parts.extensions.get::<Admin>().cloned().ok_or_else(|| {
            WebError::unexpected(anyhow::anyhow!("an admin handler ran outside the guard"))
        })
    }
}

impl Admin {
    /// Renders an admin page: `section` marks the current entry of the admin's menu.
    async fn render(
        &self,
        name: &str,
        section: &str,
        ctx: Value,
    ) -> Result<Html<String>, WebError> {
        self.page.render(name, context! { section, ..ctx }).await
    }
}

/// The admin's messages for `?notice=` ([`Notice`]).
fn notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "deactivated" => "The account is deactivated; its sessions and API tokens have ended.",
        "reactivated" => "The account is active again.",
        "staff_granted" => "The account is now staff.",
        "staff_removed" => "The account is no longer staff.",
        "verification_sent" => "A new verification email is on its way.",
        "user_created" => "The account is created.",
        "password_set" => "The password is set; the account's sessions and API tokens have ended.",
        "reset_sent" => "A password-reset link is on its way.",
        "user_deleted" => concat!(
            "The account is deleted, with its",
            // example-app:begin
            " bookings,",
            // example-app:end
            " sessions and API tokens."
        ),
        "session_revoked" => "The session has ended.",
        "token_revoked" => "The API token is revoked.",
        "signed_out" => "Every session and API token of the account has ended.",
        // example-app:begin
        "booking_cancelled" => "The booking is cancelled; its place is free again.",
        // example-app:end
        "retried" => "The email is queued again with a fresh set of attempts.",
        // example-app:begin
        "class_saved" => "The class is saved.",
        "class_deleted" => "The class is deleted, with its occurrences and bookings.",
        "capacity_saved" => "The occurrence's capacity is saved.",
        "occurrence_deleted" => "The occurrence is deleted, with its bookings.",
        // example-app:end
        "job_ran" => "The job ran; its run is at the top of the list.",
        "job_failed" => "The job failed; its run at the top of the list says why.",
        "redriven" => "The message is back in the worker queue.",
        "redriven_all" => "The messages are back in the worker queue (see the log for how many).",
        "dead_letter_deleted" => "The message is deleted.",
        _ => return None,
    })
}

/// A redirect to `path` with one of [`notice`]'s keys.
fn done(path: &str, key: &str) -> Response {
    session::see_other(&format!("{path}?notice={key}"), None)
}

fn when(state: &AppState, t: chrono::DateTime<chrono::Utc>) -> String {
    local(t, state.config.time_zone)
}

async fn dashboard(State(state): State<AppState>, admin: Admin) -> PageResult {
    let actor = &admin.user;
    let counts = admin::counts(&state.db, actor).await?;
    let emails = admin::email_counts(&state.db, actor).await?;
    let jobs = jobs::summaries(&state, actor).await?;
    let dead_letters = match dlq::locate(&state.queue).await {
        Ok(dlq::Located::Found(queue)) => Some(queue.approximate_count),
        Ok(_) => None,
        // The dashboard still shows the database's part when SQS cannot be reached.
        Err(e) => {
            tracing::warn!(error = %e, "the dashboard could not read the dead-letter queue");
            None
        }
    };
    let actions = admin::list_actions(&state.db, actor, PageRequest::default()).await?;
    let ctx = context! {
        users => counts.users,
        emails => emails.iter().map(|(s, n)| context! { status => s.as_str(), count => n }).collect::<Vec<_>>(),
        // example-app:begin
        classes => counts.classes,
        // example-app:end
        jobs => jobs.iter().map(|(job, summary)| context! {
            name => job.name,
            last => summary.runs.first().map(|r| jobs::run_view(&state, r)),
        }).collect::<Vec<_>>(),
        dead_letters,
        actions => actions.results.iter().take(5).map(|a| action_view(&state, a)).collect::<Vec<_>>(),
    };
    Ok(admin
        .render("admin/dashboard.html", "dashboard", ctx)
        .await?
        .into_response())
}

fn action_view(state: &AppState, a: &admin::AdminAction) -> Value {
    context! {
        at => when(state, a.created_at),
        actor => &a.actor_email,
        action => &a.action,
        target => &a.target,
        detail => &a.detail,
    }
}

/// The log of admin actions.
async fn log(State(state): State<AppState>, admin: Admin, query: PageQuery) -> PageResult {
    let page = admin::list_actions(&state.db, &admin.user, query.request).await?;
    let actions: Vec<Value> = page
        .results
        .iter()
        .map(|a| action_view(&state, a))
        .collect();
    let ctx = context! { actions, pager => pager(&query, &page) };
    Ok(admin
        .render("admin/log.html", "log", ctx)
        .await?
        .into_response())
}
