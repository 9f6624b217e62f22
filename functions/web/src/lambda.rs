//! The web function's Lambda handler: what `lambda_http::run` does per invocation (the same
//! adapter: event to request, response to the shape that event source expects), except that
//! the event is read here, so that an event of another source fails as an `InvalidEvent`
//! rather than under the runtime's Rust type name. Reading it as [`RawValue`] first costs one
//! extra scan of the event's bytes (a few microseconds), no second parse.

use std::convert::Infallible;

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use lambda_init::failure::{self, Diagnostic};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tower::ServiceExt as _;

/// What the function takes, for the message of an `InvalidEvent`.
const EVENTS: &str = "an API Gateway, ALB or function URL event";

/// One invocation: the event read as an HTTP request for `router`, and its response.
pub async fn handle(
    router: Router,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<impl Serialize, Diagnostic> {
    let LambdaEvent { payload, context } = event;
    let request: LambdaRequest = failure::event(&payload, EVENTS)?;
    drop(payload);
    Adapter::from(router)
        .oneshot(LambdaEvent::new(request, context))
        .await
        .map_err(|never: Infallible| match never {})
}

/// [`handle`] on an event from a file, returning the JSON Lambda would send back
/// (`cargo run -- invoke web`).
pub async fn handle_event(router: Router, event: Value) -> Result<Value, Diagnostic> {
    let payload = serde_json::value::to_raw_value(&event).map_err(failure::invalid_event)?;
    let response = handle(router, LambdaEvent::new(payload, Context::default())).await?;
    serde_json::to_value(response).map_err(failure::handler_error)
}
