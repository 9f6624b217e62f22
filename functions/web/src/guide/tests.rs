//! The worked example's web tests; the first two are the ones the guide shows.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::common::{Browser, PASSWORD, TestApp, location};
use super::guide_app;

#[tokio::test]
async fn a_signed_in_user_adds_a_note_and_sees_it_and_an_empty_one_is_refused() {
    let app = TestApp::new().await;
    let app = guide_app(app).await; // (worked example only)
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;

    browser.get("/notes").await;
    let added = browser.post("/notes", &[("body", "buy milk")]).await;
    assert_eq!(location(&added), "/notes");
    let page = browser.get("/notes").await;
    assert!(page.body.contains("buy milk"), "{}", page.body);

    let refused = browser.post("/notes", &[("body", "   ")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("write something first"));
}

#[tokio::test]
async fn the_notes_api_needs_a_token_and_answers_the_list_contract() {
    let app = TestApp::new().await;
    let app = guide_app(app).await; // (worked example only)
    app.account("ada@example.com", true).await;
    let token = app.api_token("ada@example.com", PASSWORD).await;
    assert_eq!(app.get("/api/notes").await.status, StatusCode::UNAUTHORIZED);

    let body = json!({"body": "call the plumber"});
    let created = app
        .authed(Method::POST, "/api/notes", &token, Some(body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let listed = app
        .authed(Method::GET, "/api/notes", &token, None)
        .await
        .json();
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["results"][0]["body"], "call the plumber");
}

#[tokio::test]
async fn archiving_hides_a_note_and_another_users_note_is_not_found() {
    let app = guide_app(TestApp::new().await).await;
    app.account("ada@example.com", true).await;
    app.account("bob@example.com", true).await;
    let ada = app.api_token("ada@example.com", PASSWORD).await;
    let bob = app.api_token("bob@example.com", PASSWORD).await;
    let created = app
        .authed(
            Method::POST,
            "/api/notes",
            &ada,
            Some(json!({"body": "mine"})),
        )
        .await
        .json();
    let archive = format!("/api/notes/{}/archive", created["id"].as_str().unwrap());

    let by_bob = app.authed(Method::POST, &archive, &bob, None).await;
    assert_eq!(by_bob.status, StatusCode::NOT_FOUND, "{}", by_bob.body);
    let by_ada = app.authed(Method::POST, &archive, &ada, None).await;
    assert_eq!(by_ada.status, StatusCode::NO_CONTENT, "{}", by_ada.body);
    let listed = app
        .authed(Method::GET, "/api/notes", &ada, None)
        .await
        .json();
    assert_eq!(listed["count"], 0);
}

#[test]
fn every_web_sample_of_the_guide_is_in_the_worked_example() {
    let checked = shared::guide::check_quoted(
        "functions/web/",
        &[
            include_str!("pages/notes.rs"),
            include_str!("api/notes.rs"),
            include_str!("tests.rs"),
        ],
    );
    assert_eq!(checked, 3, "the guide shows three files of the web");
}

/// The (METHOD, path) pairs of an OpenAPI `paths` object.
fn operations(paths: &serde_json::Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in paths.as_object().expect("paths is an object") {
        for method in item.as_object().expect("a path item").keys() {
            found.push((method.to_uppercase(), path.clone()));
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn the_guides_openapi_entries_document_exactly_the_example_routes_and_resolve() {
    let blocks = shared::guide::blocks("json");
    assert_eq!(blocks.len(), 1, "the guide shows one OpenAPI fragment");
    let fragment: serde_json::Value = serde_json::from_str(&blocks[0]).expect("valid JSON");
    let documented = operations(&fragment["paths"]);
    let expected = [
        ("GET", "/api/notes"),
        ("POST", "/api/notes"),
        ("POST", "/api/notes/{id}/archive"),
    ]
    .map(|(m, p)| (m.to_owned(), p.to_owned()));
    assert_eq!(documented, expected);

    // Merged into the app's document, every reference resolves.
    let mut doc: serde_json::Value = serde_json::from_str(crate::api::OPENAPI).unwrap();
    for (path, item) in fragment["paths"].as_object().unwrap() {
        doc["paths"][path] = item.clone();
    }
    for (name, schema) in fragment["components"]["schemas"].as_object().unwrap() {
        assert!(
            doc["components"]["schemas"].get(name).is_none(),
            "{name} exists already"
        );
        doc["components"]["schemas"][name] = schema.clone();
    }
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = format!("/{}", reference.split('"').next().unwrap());
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }

    // And each documented operation is routed (not the 404 fallback, not 405).
    let app = guide_app(TestApp::new().await).await;
    for (method, path) in &documented {
        let path = path.replace("{id}", "0193a0a0-0000-7000-8000-000000000000");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = app.request(method.clone(), &path, &[]).await;
        assert!(
            reply.status != StatusCode::NOT_FOUND && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            reply.status
        );
    }
}
