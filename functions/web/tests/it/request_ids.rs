//! The ids that join a request's lines: API Gateway's request id on each line of the request.

use axum::http::StatusCode;
use tower::ServiceExt as _;

use crate::common::TestApp;

#[tokio::test]
async fn every_line_of_an_api_gateway_request_carries_its_request_id() {
    let event = include_str!("../../../../events/apigw-http-get-healthz.json");
    let request = lambda_http::request::from_str(event).expect("a valid HTTP API event");
    let app = TestApp::with_vars(&[(
        "ALLOWED_HOSTS",
        "abc123def4.execute-api.us-east-1.amazonaws.com",
    )])
    .await;
    let (response, lines) =
        shared::metrics::capture::json_lines(app.router.clone().oneshot(request)).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert!(!lines.is_empty(), "nothing logged");
    for line in &lines {
        assert_eq!(
            line["spans"][0]["apigwRequestId"], "BkZ3Yj1qIAMEVxA=",
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_request_without_a_lambda_event_logs_no_api_gateway_id() {
    let app = TestApp::new().await;
    let (reply, lines) = shared::metrics::capture::json_lines(app.get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!lines.is_empty(), "nothing logged");
    assert!(
        lines
            .iter()
            .all(|l| !l.to_string().contains("apigwRequestId")),
        "{lines:#?}"
    );
}
