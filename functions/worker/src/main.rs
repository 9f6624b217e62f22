//! The worker Lambda: configuration, pool and mailer built once per instance; each SQS event
//! goes to [`worker::handle_batch`], which reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::config::{self, Profile};
use shared::db::Db;
use shared::mail::Mailer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = config::load_or_exit(Profile::Lambda);
    shared::telemetry::init(&config.log);
    let deps = worker::Deps {
        db: Db::connect_lazy(&config.database)?,
        mailer: Mailer::from_config(&config).await,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            worker::handle_batch(deps, event.payload).await,
        )
    }))
    .await
}
