//! Job runs: the last runs of every job, one job's runs, "run now".

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use minijinja::{Value, context};
use shared::jobs::{self, Outcome};
use shared::services::admin;
use shared::store::jobs::JobRun;

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::AppState;
use crate::paging::PageQuery;

/// A run as the pages show it: when, how long, how it ended.
pub(super) fn run_view(state: &AppState, run: &JobRun) -> Value {
    let duration = run.finished_at.map(|f| {
        let ms = (f - run.started_at).num_milliseconds();
        if ms < 1_000 {
            format!("{ms} ms")
        } else {
            format!("{:.1} s", ms as f64 / 1_000.0)
        }
    });
    context! {
        scheduled => when(state, run.scheduled_at),
        started => when(state, run.started_at),
        duration,
        status => &run.status,
        attempts => run.attempts,
        detail => &run.detail,
    }
}

pub(super) async fn overview(
    State(state): State<AppState>,
    admin: Admin,
    Query(n): Query<Notice>,
) -> PageResult {
    let summaries = admin::job_summaries(&state.db, &admin.user).await?;
    let jobs: Vec<Value> = summaries
        .iter()
        .map(|s| {
            context! {
                name => s.job.name,
                every => s.job.schedule_expression(),
                total_runs => s.total_runs,
                runs => s.runs.iter().map(|r| run_view(&state, r)).collect::<Vec<_>>(),
            }
        })
        .collect();
    let ctx = context! { jobs, notice => notice(&n.notice) };
    Ok(admin
        .render("admin/jobs.html", "jobs", ctx)
        .await?
        .into_response())
}

pub(super) async fn runs(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    query: PageQuery,
    Query(n): Query<Notice>,
) -> PageResult {
    let (job, page) = admin::list_runs(&state.db, &admin.user, &name, query.request).await?;
    let runs: Vec<Value> = page.results.iter().map(|r| run_view(&state, r)).collect();
    let ctx = context! {
        job => context! { name => job.name, every => job.schedule_expression() },
        runs,
        pager => pager(&query, &page),
        notice => notice(&n.notice),
    };
    Ok(admin
        .render("admin/job.html", "jobs", ctx)
        .await?
        .into_response())
}

/// Runs the job in this request. A failure is recorded in its run; the page says so.
pub(super) async fn run_now(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> PageResult {
    let deps = jobs::Deps {
        db: &state.db,
        config: &state.config,
        queue: &state.queue,
    };
    let back = format!("/admin/jobs/{name}");
    match admin::run_job_now(&deps, &admin.user, &name).await {
        Ok(Outcome::Ran(_) | Outcome::AlreadyDone) => Ok(done(&back, "job_ran")),
        Err(e @ (shared::error::Error::NotFound(_) | shared::error::Error::Forbidden(_))) => {
            Err(e.into())
        }
        Err(_) => Ok(done(&back, "job_failed")),
    }
}
