//! The init phase every function's `main.rs` shares. A Lambda process that exits during init
//! without a word leaves only "Runtime.ExitError" in the console; Lambda's Runtime API has
//! `/init/error` for saying why, and `lambda_runtime` only uses it for SnapStart. So a failure
//! here is printed (one line, for the logs and for `cargo run`) and posted to `/init/error`
//! with an error type, then the process exits.
//!
//! After init, the handlers name their failures through [`failure`] (`HandlerError`,
//! `InvalidEvent`) rather than leaving lambda_runtime to name them after a Rust type.

/// Readable `errorType`s for failed invocations, and reading an event into its type.
pub mod failure;

use std::fmt::Display;

use lambda_runtime_api_client::{Client, body::Body, build_request};
use shared::config::{Config, Profile};

/// The error type Lambda shows for a setting that stops start-up.
pub const CONFIG_ERROR: &str = "Runtime.ConfigError";
/// The error type for any other failure before the first event.
pub const INIT_ERROR: &str = "Runtime.InitError";

/// The function's settings, from the environment alone (no `.env` in Lambda), with the secrets
/// it names read from Secrets Manager; then the log subscriber and the metrics' namespace are
/// set up and the cold start is counted (by function name, which template.yaml fixes).
pub async fn config() -> Config {
    let config = ready(
        shared::secrets::load_config(Profile::Lambda).await,
        CONFIG_ERROR,
    )
    .await;
    shared::telemetry::init(&config.log);
    shared::metrics::init(&config.metrics_namespace);
    // The runtime's own variable, always set in Lambda.
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown".to_owned());
    shared::metrics::count(
        shared::metrics::Metric::ColdStarts,
        &[(shared::metrics::Dimension::Function, &function)],
    );
    config
}

/// The value of an init step, or its error reported and the process ended.
pub async fn ready<T, E: Display>(result: Result<T, E>, error_type: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            // `{:#}`: an anyhow error with its causes.
            let message = format!("{e:#}");
            eprintln!("error: {message}");
            if let Err(report) = report_init_error(error_type, &message).await {
                eprintln!("error: could not report the init error to the Runtime API: {report}");
            }
            std::process::exit(2);
        }
    }
}

/// Posts `{"errorType", "errorMessage"}` to `/init/error` when running under a Runtime API
/// (`AWS_LAMBDA_RUNTIME_API` is set); does nothing otherwise.
pub async fn report_init_error(
    error_type: &str,
    message: &str,
) -> Result<(), lambda_runtime_api_client::BoxError> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Ok(());
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "errorType": error_type,
        "errorMessage": message,
    }))?;
    let request = build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))?;
    let response = Client::builder().build()?.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("/init/error answered {}", response.status()).into());
    }
    Ok(())
}
