//! The scheduler Lambda: glue between the Lambda runtime and [`scheduler::handle_event`].

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = lambda_init::config().await;
    let deps = scheduler::Deps::from_config(config).await;
    let deps = lambda_init::ready(deps, lambda_init::INIT_ERROR).await;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        scheduler::handle_event(deps, event.payload).await
    }))
    .await
}
