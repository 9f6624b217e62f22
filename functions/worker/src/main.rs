//! The worker Lambda: glue between the Lambda runtime and [`worker::handle_event`].

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::config::{self, Profile};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = config::load_or_exit(Profile::Lambda);
    shared::telemetry::init(&config.log);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        worker::handle_event(event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
