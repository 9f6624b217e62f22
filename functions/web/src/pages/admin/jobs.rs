//! Job runs: the last runs of every job, one job's runs, "run now".

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chrono::Utc;
use minijinja::{Value, context};
use shared::domain::User;
use shared::error::Error;
use shared::jobs::{self, JOBS, Job, Outcome};
use shared::services::admin::{self, JobRun, JobSummary};

use super::{Admin, Notice, PageResult, done, notice, pager, when};
use crate::paging::PageQuery;
use crate::state::AppState;

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

/// Every job of the registry with its last runs.
pub(super) async fn summaries(
    state: &AppState,
    actor: &User,
) -> Result<Vec<(&'static Job, JobSummary)>, Error> {
    let names: Vec<&str> = JOBS.iter().map(|j| j.name).collect();
    let summaries = admin::job_summaries(&state.db, actor, &names).await?;
    Ok(JOBS.iter().zip(summaries).collect())
}

/// The job of the registry named `name` (404 for none).
fn job(name: &str) -> Result<&'static Job, Error> {
    jobs::find(name).ok_or_else(|| Error::NotFound(format!("no job named {name:?}")))
}

pub(super) async fn overview(
    State(state): State<AppState>,
    admin: Admin,
    Query(n): Query<Notice>,
) -> PageResult {
    let summaries = summaries(&state, &admin.user).await?;
    let jobs: Vec<Value> = summaries
        .iter()
        .map(|(job, s)| {
            context! {
                name => job.name,
                every => job.schedule_expression(),
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
    let job = job(&name)?;
    let page = admin::list_runs(&state.db, &admin.user, job.name, query.request).await?;
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
    let job = job(&name)?;
    let deps = jobs::Deps {
        db: &state.db,
        config: &state.config,
        queue: &state.queue,
    };
    let run = async {
        let outcome = jobs::run(&deps, job.name, Utc::now()).await?;
        Ok(match outcome {
            Outcome::Ran(detail) => Some(detail),
            Outcome::AlreadyDone => None,
        })
    };
    let back = format!("/admin/jobs/{}", job.name);
    match admin::run_job_now(&state.db, &admin.user, job.name, run).await {
        Ok(_) => Ok(done(&back, "job_ran")),
        Err(e @ (Error::NotFound(_) | Error::Forbidden(_))) => Err(e.into()),
        Err(_) => Ok(done(&back, "job_failed")),
    }
}
