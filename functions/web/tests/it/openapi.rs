//! The OpenAPI document and the API's routes stay in step: every route in `src/api/` is
//! documented, and every documented operation is routed.

use crate::common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::TestApp;

/// The files that register API routes; a new file under `src/api/` must be listed here (the
/// test below fails until it is, as its routes are then undocumented or unrouted).
const SOURCES: &[&str] = &[
    include_str!("../../src/api/mod.rs"),
    // example-app:begin
    include_str!("../../src/api/classes.rs"),
    // example-app:end
];

/// (METHOD, path) for every route the API registers, read from its source:
/// `.route("/api/...", get(h).post(h))`.
fn routed() -> BTreeSet<(String, String)> {
    let source = SOURCES.join("\n");
    let mut routes = BTreeSet::new();
    // Each chunk starts right after `.route(`; it ends at the next `.route(` or the end of
    // `routes()`, however rustfmt wrapped the call.
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.split("\n}").next().unwrap().trim_start();
        let rest = chunk.strip_prefix('"').expect("a literal path");
        let (path, call) = rest.split_once('"').unwrap();
        // `, post(h)` or `.delete(h)` once white space is gone.
        let call: String = call.chars().filter(|c| !c.is_whitespace()).collect();
        for method in ["get", "post", "put", "patch", "delete"] {
            if call.contains(&format!(",{method}(")) || call.contains(&format!(".{method}(")) {
                routes.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    routes
}

fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            // A path item also holds shared `parameters`.
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_is_served_and_matches_the_routes_both_ways() {
    let app = TestApp::new().await;
    let reply = app.get("/api/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let routed = routed();
    assert!(routed.len() >= 5, "parsed {routed:?}");
    let documented = documented(&doc);
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}"
    );
    let absent: Vec<_> = documented.difference(&routed).collect();
    assert!(absent.is_empty(), "documented but not routed: {absent:?}");

    // And each documented operation really answers (not the 404 fallback, not 405).
    for (method, path) in &documented {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = app.request(method.clone(), path, &[]).await;
        assert!(
            reply.status != StatusCode::NOT_FOUND && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            reply.status
        );
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    let doc: serde_json::Value = serde_json::from_str(web::api::OPENAPI).unwrap();
    let text = web::api::OPENAPI;
    for reference in text.split("\"$ref\": \"#/").skip(1) {
        let pointer = format!("/{}", reference.split('"').next().unwrap());
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }
}

#[tokio::test]
async fn every_operation_that_declares_security_refuses_requests_without_valid_credentials() {
    let app = TestApp::new().await;
    let doc: serde_json::Value = serde_json::from_str(web::api::OPENAPI).unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let mut secured = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_none() {
                continue;
            }
            secured += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let path = path.replace("{id}", &id);
            for authorization in [
                None,
                Some("Bearer "),
                Some(format!("Bearer {}", "0".repeat(64)).as_str()),
                Some(format!("Token {}", "f".repeat(64)).as_str()),
                Some("Basic YWRtaW46YWRtaW4="),
                Some("bearer"),
            ] {
                let mut headers = vec![("content-type", "application/json")];
                if let Some(value) = authorization {
                    headers.push(("authorization", value));
                }
                let reply = app
                    .send(
                        method.clone(),
                        &path,
                        &headers,
                        axum::body::Body::from("{}"),
                    )
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {authorization:?}: {}",
                    reply.body
                );
                assert_eq!(reply.json()["error"]["code"], "unauthenticated");
            }
        }
    }
    let at_least = 3;
    // example-app:begin
    let at_least = at_least + 6;
    // example-app:end
    assert!(secured >= at_least, "{secured} secured operations");
}
