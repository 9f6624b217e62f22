//! `cargo run -- invoke <function> <event.json>`: a function's Lambda handler run in-process on
//! one event file (the committed ones are in `events/`), printing what Lambda would return.
//! What `sam local invoke -e` does, without Docker, on the local settings (`.env`).

use std::path::Path;

use anyhow::{Context as _, bail};
use lambda_init::failure::Diagnostic;
use serde_json::Value;
use shared::config::{Config, Vars};
use shared::mail::Mailer;

use crate::functions::Functions;

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
    let mut functions = Functions::from_config(config).await?;
    // Migrated first, as the deploy hook would have; stdout is kept for the result alone.
    let applied = functions.db().migrate().await?;
    if !applied.is_empty() {
        eprintln!("note: applied {} pending migrations first", applied.len());
    }
    // Printed emails go to stderr with the notes: stdout is the result alone.
    if let Mailer::Console(console) = &functions.worker.mailer {
        functions.worker.mailer = Mailer::Console(console.clone().on_stderr());
    }
    let result = match function {
        Function::Web => web::lambda::handle_event(web::router(functions.web()), event).await,
        Function::Worker => {
            let payload = serde_json::value::to_raw_value(&event)?;
            match worker::handle(&functions.worker, &payload).await {
                Ok(response) => Ok(serde_json::to_value(response)?),
                Err(diagnostic) => Err(diagnostic),
            }
        }
        Function::Scheduler => scheduler::handle_event(&functions.scheduler(), event).await,
        Function::Migrate => unreachable!("handled above"),
    };
    // Emails the handler queued go through the worker's handler here, as `runjob` does.
    let sent = functions.run_worker_on_queued().await;
    if sent > 0 {
        eprintln!("{sent} queued emails handed to the worker.");
    }
    functions.db().close().await;
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
