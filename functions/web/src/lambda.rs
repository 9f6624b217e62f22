use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent, Service as _};
use serde_json::Value;

/// Handles one API Gateway (HTTP or REST), ALB or function URL event the way
/// `lambda_http::run` does for each invocation (the same adapter: event to request, response
/// to the shape that event source expects), and returns the JSON Lambda would send back.
pub async fn handle_event(router: Router, event: Value) -> Result<Value, lambda_http::Error> {
    let request: LambdaRequest = serde_json::from_value(event)
        .map_err(|e| format!("not an API Gateway, ALB or function URL event: {e}"))?;
    let mut adapter = lambda_http::Adapter::from(router);
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await?;
    Ok(serde_json::to_value(response)?)
}
