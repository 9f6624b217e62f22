//! The web Lambda: configuration, pool and router built once per instance, then lambda_http
//! turns each API Gateway / ALB / function URL event into a request for the router.

use shared::config::{self, Profile};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = config::load_or_exit(Profile::Lambda);
    shared::telemetry::init(&config.log);
    let state = web::AppState::from_config(config).await?;
    lambda_http::run(web::router(state)).await
}
