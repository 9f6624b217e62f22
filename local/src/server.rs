use std::net::SocketAddr;

use anyhow::Context as _;
use shared::config::Config;
use shared::mail::Mailer;
use shared::queue::Queue;
use tokio::task::JoinHandle;

use crate::commands::connect_and_migrate;
use crate::worker_loop;

/// Migrates, starts the worker (fed by the in-process queue, or by SQS when
/// `WORKER_QUEUE_URL` is set) and the scheduled jobs, then serves the same router as the web
/// Lambda until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let db = connect_and_migrate(&config).await?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set PORT to use another port)"))?;

    let deps = worker::Deps {
        db: db.clone(),
        mailer: Mailer::from_config(&config).await,
    };
    let mailer = deps.mailer.backend();
    let (queue, worker_task, source) = start_worker(&config, deps).await;
    let jobs_task = tokio::spawn(worker_loop::run_jobs(
        db.clone(),
        config.clone(),
        queue.clone(),
    ));

    let state = web::AppState::new(config, db.clone(), queue);
    // Lambda parses each template at first use; here a broken one stops `cargo run` at once.
    state.templates.check_all()?;
    println!("Worker: {source}, {mailer} mailer");
    println!("Serving on http://{addr}/ (Ctrl-C to stop)");
    // The peer address is the client address for rate limits (web::client).
    let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    // Messages still in the in-process queue are not lost: their rows are pending in the
    // outbox, and the next start's sweep queues them again.
    worker_task.abort();
    jobs_task.abort();
    db.close().await;
    println!("Stopped.");
    Ok(())
}

/// The queue the app sends to, and the task that feeds the worker from it.
pub async fn start_worker(config: &Config, deps: worker::Deps) -> (Queue, JoinHandle<()>, String) {
    match Queue::sqs_from_config(config).await {
        Some(Queue::Sqs { client, url }) => {
            let task = tokio::spawn(worker_loop::run_sqs(deps, client.clone(), url.clone()));
            (
                Queue::Sqs {
                    client,
                    url: url.clone(),
                },
                task,
                format!("SQS queue {url}"),
            )
        }
        _ => {
            let (queue, rx) = Queue::local();
            let task = tokio::spawn(worker_loop::run_local(deps, queue.clone(), rx));
            (queue, task, "in-process queue".to_owned())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish before the server stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
