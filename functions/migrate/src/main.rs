//! The migrate Lambda: glue between the Lambda runtime and [`migrate::handle`]. The
//! configuration is read per request (not at init) so that a bad setting fails the deploy
//! with its message instead of leaving CloudFormation without an answer.

// The handler's future (config, migrations, the superuser, the HTTPS answer) nests deep enough
// that proving it `Send` exceeds rustc's default query depth in release builds for aarch64.
#![recursion_limit = "256"]

use lambda_init::failure::{Diagnostic, handler_error};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::config::{LogConfig, LogFormat, Profile, Vars};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Logging follows the settings when they can be read; their errors are reported per request.
    let log = Vars::from_process(&Profile::Lambda)
        .and_then(|vars| shared::config::log_config(&vars))
        .unwrap_or(LogConfig {
            filter: "info".to_owned(),
            format: LogFormat::Json,
            access_log: false,
            xray_daemon: None,
        });
    shared::telemetry::init(&log);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let handled =
            migrate::handle(event.payload, shared::secrets::load_config(Profile::Lambda)).await?;
        migrate::send(&handled).await.map_err(handler_error)?;
        Ok::<_, Diagnostic>(handled.response)
    }))
    .await
}
