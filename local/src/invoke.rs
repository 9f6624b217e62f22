//! `cargo run -- invoke <function> <event.json>`: a function's Lambda handler run in-process on
//! one event file (the committed ones are in `events/`), printing what Lambda would return.
//! What `sam local invoke -e` does, without Docker, on the local settings (`.env`).

use std::path::Path;

use anyhow::{Context as _, bail};
use lambda_init::failure::Diagnostic;
use serde_json::Value;
use shared::config::{Config, Vars};
use shared::db::Db;
use shared::mail::Mailer;
use shared::queue::Queue;

use crate::commands::run_worker_on_queued;

/// The functions of template.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Function {
    Web,
    Worker,
    Scheduler,
    Migrate,
}

/// Runs the handler and prints its JSON result; a handler error is printed as Lambda reports
/// it (`errorType`, `errorMessage`, with the same type as in Lambda) and the command fails.
/// Standard output carries that JSON alone: notes and logs go to standard error.
pub async fn invoke(config: Config, function: Function, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the event file {}", path.display()))?;
    let event: Value = serde_json::from_str(&text)
        .with_context(|| format!("the event file {} is not JSON", path.display()))?;
    match handle(config, function, event).await? {
        Ok(result) => {
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }
        Err(diagnostic) => {
            println!("{}", serde_json::to_string_pretty(&diagnostic)?);
            bail!("the {function:?} handler failed on {}", path.display())
        }
    }
}

/// The handler's answer (`Err`: the failure Lambda would report), or, outside it, what kept
/// it from running locally (the database, the migrations).
async fn handle(
    mut config: Config,
    function: Function,
    event: Value,
) -> anyhow::Result<Result<Value, Diagnostic>> {
    if function == Function::Migrate {
        // The hook migrates by itself: no migration before it, or it would have nothing to do.
        let handled = match migrate::handle(event, async { Ok(config.clone()) }).await {
            Ok(handled) => handled,
            Err(diagnostic) => return Ok(Err(diagnostic)),
        };
        eprintln!(
            "note: the answer below was not sent to the event's ResponseURL (CloudFormation's pre-signed URL)"
        );
        return Ok(Ok(serde_json::to_value(&handled.response)?));
    }
    if function == Function::Web {
        accept_event_host(&mut config, &event);
    }
    // Migrated first, as the deploy hook would have; stdout is kept for the result alone.
    let db = Db::connect_lazy(&config.database)?;
    let applied = db.migrate().await?;
    if !applied.is_empty() {
        eprintln!("note: applied {} pending migrations first", applied.len());
    }
    // SQS when WORKER_QUEUE_URL is set, else the in-process queue drained below.
    let (queue, mut queued) = match Queue::sqs_from_config(&config).await {
        Some(queue) => (queue, None),
        None => {
            let (queue, rx) = Queue::local();
            (queue, Some(rx))
        }
    };
    // Printed emails go to stderr with the notes: stdout is the result alone.
    let mailer = match Mailer::from_config(&config).await {
        Mailer::Console(console) => Mailer::Console(console.on_stderr()),
        mailer => mailer,
    };
    let result = match function {
        Function::Web => {
            let state = web::AppState::new(config, db.clone(), queue);
            web::lambda::handle_event(web::router(state), event).await
        }
        Function::Worker => {
            let deps = worker::Deps {
                db: db.clone(),
                mailer: mailer.clone(),
            };
            let payload = serde_json::value::to_raw_value(&event)?;
            match worker::handle(&deps, &payload).await {
                Ok(response) => Ok(serde_json::to_value(response)?),
                Err(diagnostic) => Err(diagnostic),
            }
        }
        Function::Scheduler => {
            let deps = scheduler::Deps {
                config,
                db: db.clone(),
                queue,
            };
            scheduler::handle_event(&deps, event).await
        }
        Function::Migrate => unreachable!("handled above"),
    };
    // Emails the handler queued go through the worker's handler here, as `runjob` does.
    if let Some(rx) = &mut queued {
        let worker = worker::Deps {
            db: db.clone(),
            mailer,
        };
        let sent = run_worker_on_queued(&worker, rx).await;
        if sent > 0 {
            eprintln!("{sent} queued emails handed to the worker.");
        }
    }
    db.close().await;
    Ok(result)
}

/// With ALLOWED_HOSTS unset (DEBUG's localhost default), the event's own host is accepted so
/// the committed API Gateway events can be replayed; an explicit ALLOWED_HOSTS is kept as is.
fn accept_event_host(config: &mut Config, event: &Value) {
    let explicit = Vars::from_process(&crate::profile())
        .map(|vars| vars.get("ALLOWED_HOSTS").is_some())
        .unwrap_or(true);
    if explicit || !config.debug {
        return;
    }
    let headers = &event["headers"];
    let host = ["host", "Host"]
        .iter()
        .find_map(|name| headers[*name].as_str())
        .or_else(|| event["requestContext"]["domainName"].as_str());
    if let Some(host) = host {
        let host = host.split(':').next().unwrap_or(host).to_owned();
        eprintln!("note: accepting the event's host {host} (ALLOWED_HOSTS is not set)");
        config.allowed_hosts.push(host);
    }
}
