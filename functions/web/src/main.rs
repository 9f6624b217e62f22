//! The web Lambda: configuration, pool and router built once per instance, then
//! [`web::lambda::handle`] turns each API Gateway / ALB / function URL event into a request for
//! the router (with lambda_http's adapter).
//!
//! One thread runs everything (`current_thread`): Lambda hands an instance one event at a
//! time, so worker threads have nothing to run in parallel, and with them every invocation
//! bounced between threads (the Runtime API client's connection task on a worker, the handler
//! on the main thread), which profiling showed as a large share of the per-request CPU (futex
//! wake-ups and epoll parks). Blocking work (password hashing) still goes to tokio's blocking
//! pool.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let config = lambda_init::config().await;
    let state = web::AppState::from_config(config).await;
    let state = lambda_init::ready(state, lambda_init::INIT_ERROR).await;
    // The first connection opens while the router is built (bounded: `FirstConnection::wait`).
    let connecting = state.db.connect_during_init().await;
    let router = web::router(state);
    connecting.wait().await;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event| {
        web::lambda::handle(router.clone(), event)
    }))
    .await
}
