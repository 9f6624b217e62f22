//! API Gateway's request id on every log line of a request (and on its metric lines).
//!
//! Lambda's own request id is already there: the Lambda runtime's span holds it (`requestId`).
//! API Gateway's id (`apigwRequestId`) is the one its access log, its `x-amzn-requestid`-style
//! errors and a user's bug report carry, so with both on the line one query joins the access
//! log to the function's log. ALB and function URL events carry no such id (`apigwRequestId`
//! is then absent); locally there is no request context at all.
//!
//! It is the outermost layer (around request tracing), so its span encloses every line.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use tracing::Instrument as _;

/// Runs the request inside a span holding API Gateway's request id, when the event has one.
pub async fn layer(request: Request, next: Next) -> Response {
    match apigw_request_id(&request) {
        Some(id) => {
            let span = tracing::info_span!("apigw", apigwRequestId = id);
            next.run(request).instrument(span).await
        }
        None => next.run(request).await,
    }
}

/// API Gateway's id of this request (HTTP API or REST API events).
pub fn apigw_request_id(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        RequestContext::ApiGatewayV1(context) => context.request_id.clone(),
        _ => None,
    }
}
