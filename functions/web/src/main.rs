//! The web Lambda: configuration, pool and router built once per instance, then lambda_http
//! turns each API Gateway / ALB / function URL event into a request for the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = lambda_init::config().await;
    shared::telemetry::init(&config.log);
    let state = web::AppState::from_config(config).await;
    let state = lambda_init::ready(state, lambda_init::INIT_ERROR).await;
    lambda_http::run(web::router(state)).await
}
