//! `SITE_NAME`: what pages and emails call the site.

use axum::http::StatusCode;
use shared::config::{Config, Profile, Vars};

use crate::common::TestApp;

#[tokio::test]
async fn a_configured_site_name_appears_in_a_page_and_an_email() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_vars(
        &Profile::Local {
            data_dir: dir.path().to_path_buf(),
        },
        &Vars::from_pairs([("SITE_NAME", "Lakeside Yoga")]),
    )
    .unwrap();
    let app = TestApp::with_config(config, dir).await;

    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<title>Lakeside Yoga</title>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Serverless Starter"), "{}", page.body);

    let reply = app
        .post_json(
            "/api/auth/signup",
            serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let email = app.outbox().await.pop().unwrap();
    let html = email.body_html.unwrap_or_default();
    assert!(html.contains("Welcome to Lakeside Yoga!"), "{html}");
    assert!(!html.contains("Serverless Starter"), "{html}");
}
