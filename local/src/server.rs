use std::net::SocketAddr;

use anyhow::Context as _;
use shared::config::Config;

use crate::commands::migrate_and_report;
use crate::functions::Functions;
use crate::worker_loop;

/// Migrates, starts the worker (fed by the in-process queue, or by SQS when
/// `WORKER_QUEUE_URL` is set) and the scheduled jobs, then serves the same router as the web
/// Lambda until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut functions = Functions::from_config(config).await?;
    migrate_and_report(functions.db()).await?;
    let addr = SocketAddr::new(functions.config.host, functions.config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set PORT to use another port)"))?;

    let mailer = functions.worker.mailer.backend();
    let (worker_task, source) = functions.spawn_worker();
    let jobs_task = tokio::spawn(worker_loop::run_jobs(functions.scheduler()));

    let state = functions.web();
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
    functions.db().close().await;
    println!("Stopped.");
    Ok(())
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
