//! The worker Lambda: configuration, pool and mailer built once per instance; each SQS event
//! goes to [`worker::handle`], which reports partial batch failures.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = lambda_init::config().await;
    let deps = worker::Deps::from_config(&config).await;
    let deps = lambda_init::ready(deps, lambda_init::INIT_ERROR).await;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            worker::handle(deps, &event.payload).await
        },
    ))
    .await
}
