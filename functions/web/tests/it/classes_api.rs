//! Classes, occurrences, bookings and pagination through the JSON API, on the database under
//! test.

use crate::common;

use axum::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use common::{PASSWORD, Reply, TestApp};
use serde_json::{Value, json};
use tower::ServiceExt as _;

fn class_body(title: &str, starts_in: TimeDelta, recurrence: &str, capacity: i64) -> Value {
    json!({
        "title": title,
        "description": "Bring a mat.",
        "location": "Studio 1",
        "starts_at": (Utc::now() + starts_in).to_rfc3339(),
        "duration_minutes": 60,
        "capacity": capacity,
        "recurrence": recurrence,
    })
}

async fn staff_token(app: &TestApp) -> String {
    app.staff("staff@example.com").await;
    app.api_token("staff@example.com", PASSWORD).await
}

async fn create(app: &TestApp, token: &str, body: Value) -> Reply {
    app.authed(Method::POST, "/api/classes", token, Some(body))
        .await
}

#[tokio::test]
async fn staff_create_classes_in_the_contract_shape_and_others_are_refused() {
    let app = TestApp::new().await;
    let staff = staff_token(&app).await;
    let created = create(
        &app,
        &staff,
        class_body("Yoga", TimeDelta::days(1), "weekly", 8),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let class = created.json();
    let mut keys: Vec<_> = class.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "capacity",
            "created_at",
            "description",
            "duration_minutes",
            "id",
            "location",
            "recurrence",
            "repeat_until",
            "starts_at",
            "title"
        ]
    );
    assert_eq!(class["recurrence"], "weekly");
    assert_eq!(class["repeat_until"], Value::Null);
    let starts_at = class["starts_at"].as_str().unwrap();
    assert!(starts_at.ends_with('Z'), "{starts_at}");

    app.account("ada@example.com", true).await;
    let ada = app.api_token("ada@example.com", PASSWORD).await;
    let refused = create(
        &app,
        &ada,
        class_body("Mine", TimeDelta::days(1), "none", 1),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let anonymous = app
        .post_json(
            "/api/classes",
            class_body("X", TimeDelta::days(1), "none", 1),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let invalid = create(
        &app,
        &staff,
        json!({"title": "", "starts_at": "soon", "duration_minutes": 0, "capacity": 0, "recurrence": "monthly"}),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = &invalid.json()["error"]["fields"];
    for field in [
        "title",
        "starts_at",
        "duration_minutes",
        "capacity",
        "recurrence",
    ] {
        assert!(fields[field].is_string(), "{field}: {fields}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_gets_422_and_changes_nothing() {
    let app = TestApp::new().await;
    let staff = staff_token(&app).await;
    let class = create(
        &app,
        &staff,
        class_body("Yoga", TimeDelta::days(1), "daily", 8),
    )
    .await
    .json();
    let path = format!("/api/classes/{}", class["id"].as_str().unwrap());
    // serde's structs take an array of their fields in order; the API takes objects only.
    for body in [json!([]), json!(["Hot yoga"]), json!("title"), json!(7)] {
        let reply = app
            .authed(Method::PATCH, &path, &staff, Some(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.body
        );
        // An array passed serde's check: ours names what is wanted.
        if body.is_array() {
            assert!(reply.body.contains("JSON object"), "{body}: {}", reply.body);
        }
    }
    assert_eq!(app.get(&path).await.json()["title"], "Yoga");
    let token = app
        .post_json("/api/auth/token", json!(["staff@example.com", "x"]))
        .await;
    assert_eq!(
        token.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        token.body
    );
}

#[tokio::test]
async fn patch_changes_only_what_is_sent_and_delete_removes_the_class() {
    let app = TestApp::new().await;
    let staff = staff_token(&app).await;
    let class = create(
        &app,
        &staff,
        class_body("Yoga", TimeDelta::days(1), "daily", 8),
    )
    .await
    .json();
    let path = format!("/api/classes/{}", class["id"].as_str().unwrap());
    let patched = app
        .authed(
            Method::PATCH,
            &path,
            &staff,
            Some(json!({"title": "Hot yoga", "repeat_until": "2099-01-01"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let patched = patched.json();
    assert_eq!(patched["title"], "Hot yoga");
    assert_eq!(patched["repeat_until"], "2099-01-01");
    assert_eq!(patched["capacity"], 8);
    assert_eq!(patched["starts_at"], class["starts_at"]);

    assert_eq!(app.get(&path).await.json()["title"], "Hot yoga");
    let cleared = app
        .authed(
            Method::PATCH,
            &path,
            &staff,
            Some(json!({"repeat_until": null})),
        )
        .await;
    assert_eq!(
        cleared.json()["repeat_until"],
        Value::Null,
        "null clears the end date"
    );
    // In any other field null is not "absent": it is refused and nothing changes.
    for field in ["title", "starts_at", "capacity", "recurrence"] {
        let refused = app
            .authed(Method::PATCH, &path, &staff, Some(json!({ field: null })))
            .await;
        assert!(
            refused.status.is_client_error(),
            "{field}: null gave {}",
            refused.status
        );
        assert!(refused.json()["error"]["code"].is_string());
    }
    assert_eq!(app.get(&path).await.json()["title"], "Hot yoga");
    let deleted = app.authed(Method::DELETE, &path, &staff, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["error"]["code"], "not_found");
    assert_eq!(
        app.get("/api/classes/not-a-uuid").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn lists_paginate_with_absolute_links_and_clear_errors_at_every_edge() {
    let app = TestApp::new().await;
    let staff = staff_token(&app).await;
    for i in 0..25 {
        let reply = create(
            &app,
            &staff,
            class_body(
                &format!("Class {i:02}"),
                TimeDelta::days(1) + TimeDelta::minutes(i),
                "none",
                5,
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let first = app.get("/api/classes?page_size=10").await.json();
    assert_eq!(
        (
            first["count"].as_i64(),
            first["page"].as_i64(),
            first["page_size"].as_i64(),
            first["total_pages"].as_i64()
        ),
        (Some(25), Some(1), Some(10), Some(3))
    );
    assert_eq!(first["results"].as_array().unwrap().len(), 10);
    assert_eq!(first["results"][0]["title"], "Class 00");
    assert_eq!(
        first["next"],
        "http://localhost/api/classes?page=2&page_size=10"
    );
    assert_eq!(first["previous"], Value::Null);

    let last = app.get("/api/classes?page=3&page_size=10").await.json();
    assert_eq!(last["results"].as_array().unwrap().len(), 5);
    assert_eq!(last["next"], Value::Null);
    assert_eq!(
        last["previous"],
        "http://localhost/api/classes?page=2&page_size=10"
    );
    let default = app.get("/api/classes?page=2").await.json();
    assert_eq!(
        (
            default["page_size"].as_i64(),
            default["results"].as_array().unwrap().len()
        ),
        (Some(20), 5)
    );
    assert_eq!(default["previous"], "http://localhost/api/classes?page=1");

    // Following `next` walks every class exactly once.
    let mut seen = Vec::new();
    let mut url = Some("/api/classes?page_size=7".to_owned());
    while let Some(next) = url {
        let page = app
            .get(next.trim_start_matches("http://localhost"))
            .await
            .json();
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].clone()),
        );
        url = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 25);

    for (query, status, needle) in [
        (
            "page=4&page_size=10",
            404,
            "page 4 does not exist; there are 3 pages",
        ),
        ("page=0", 400, "page must be a whole number from 1"),
        ("page=-1", 400, "page must be"),
        ("page=two", 400, "page must be"),
        ("page_size=0", 400, "page_size must be"),
        ("page_size=-3", 400, "page_size must be"),
        ("page_size=many", 400, "page_size must be"),
        ("page_size=101", 400, "page_size must be at most 100"),
        // Present but empty is not "absent": the schema says integer (schemathesis's ST201).
        ("page_size=&page=", 400, "page must be"),
        ("page_size=", 400, "page_size must be"),
        ("page=", 400, "page must be"),
    ] {
        let reply = app.get(&format!("/api/classes?{query}")).await;
        assert_eq!(reply.status.as_u16(), status, "{query}: {}", reply.body);
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(needle), "{query}: {message}");
    }
    // An empty list has one (empty) page.
    let empty_app = TestApp::new().await;
    let empty = empty_app.get("/api/classes").await.json();
    assert_eq!(
        (empty["count"].as_i64(), empty["total_pages"].as_i64()),
        (Some(0), Some(1))
    );
}

/// The app as it runs behind API Gateway's default domain, with three classes.
async fn gateway_app_with_three_classes() -> TestApp {
    let app = TestApp::with_vars(&[(
        "ALLOWED_HOSTS",
        "abc123def4.execute-api.us-east-1.amazonaws.com",
    )])
    .await;
    let staff_db = app.database();
    let email = shared::domain::EmailAddress::parse("staff@example.com").unwrap();
    let password = shared::domain::Password::parse(PASSWORD, Some(&email)).unwrap();
    let staff = shared::services::accounts::create_superuser(staff_db, &email, &password)
        .await
        .unwrap();
    for i in 0..3 {
        let draft = shared::domain::classes::ClassDraft {
            title: Some(format!("Class {i}")),
            starts_at: Some((Utc::now() + TimeDelta::days(1)).to_rfc3339()),
            duration_minutes: Some(30),
            capacity: Some(3),
            ..Default::default()
        };
        shared::services::classes::create_class(staff_db, "UTC".parse().unwrap(), &staff, &draft)
            .await
            .unwrap();
    }
    app
}

/// Sends a Lambda event through `lambda_http`'s conversion to the router; the JSON answer.
async fn invoke(app: &TestApp, event: &str) -> Value {
    let request = lambda_http::request::from_str(event).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn behind_a_rest_api_stage_the_stage_is_routed_away_and_kept_once_in_links() {
    let app = gateway_app_with_three_classes().await;
    let page = invoke(
        &app,
        include_str!("../../../../events/apigw-rest-get-classes.json"),
    )
    .await;
    assert_eq!(page["count"], 3);
    let base = "https://abc123def4.execute-api.us-east-1.amazonaws.com/prod/api/classes";
    assert_eq!(page["next"], format!("{base}?page=3&page_size=1"));
    assert_eq!(page["previous"], format!("{base}?page=1&page_size=1"));
}

#[tokio::test]
async fn behind_api_gateway_links_are_https_on_the_public_host_and_a_forged_forwarded_host_is_ignored()
 {
    let app = gateway_app_with_three_classes().await;
    let event = include_str!("../../../../events/apigw-http-get-healthz.json")
        .replace("\"rawPath\": \"/healthz\"", "\"rawPath\": \"/api/classes\"")
        .replace("\"path\": \"/healthz\"", "\"path\": \"/api/classes\"")
        .replace(
            "\"rawQueryString\": \"\"",
            "\"rawQueryString\": \"page_size=1&page=2\"",
        )
        .replace(
            "\"x-forwarded-proto\": \"https\"",
            "\"x-forwarded-proto\": \"https\", \"x-forwarded-host\": \"evil.example\"",
        );
    let page = invoke(&app, &event).await;
    assert_eq!(
        page["next"],
        "https://abc123def4.execute-api.us-east-1.amazonaws.com/api/classes?page=3&page_size=1"
    );
    assert_eq!(
        page["previous"],
        "https://abc123def4.execute-api.us-east-1.amazonaws.com/api/classes?page=1&page_size=1"
    );
}

#[tokio::test]
async fn users_book_and_cancel_occurrences_and_list_their_bookings() {
    let app = TestApp::new().await;
    let staff = staff_token(&app).await;
    let class = create(
        &app,
        &staff,
        class_body("Yoga", TimeDelta::days(1), "daily", 1),
    )
    .await
    .json();
    let occurrences = app
        .get(&format!(
            "/api/classes/{}/occurrences?page_size=2",
            class["id"].as_str().unwrap()
        ))
        .await
        .json();
    assert!(
        occurrences["count"].as_i64().unwrap() >= 14,
        "{occurrences}"
    );
    let first = &occurrences["results"][0];
    let mut keys: Vec<_> = first.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "available",
            "booked",
            "capacity",
            "class_id",
            "ends_at",
            "id",
            "starts_at"
        ]
    );
    assert_eq!(
        (first["capacity"].as_i64(), first["available"].as_i64()),
        (Some(1), Some(1))
    );
    let booking_path = format!("/api/occurrences/{}/booking", first["id"].as_str().unwrap());

    app.account("ada@example.com", true).await;
    app.account("bob@example.com", true).await;
    app.account("new@example.com", false).await;
    let ada = app.api_token("ada@example.com", PASSWORD).await;
    let bob = app.api_token("bob@example.com", PASSWORD).await;
    let new = app.api_token("new@example.com", PASSWORD).await;

    let unverified = app.authed(Method::POST, &booking_path, &new, None).await;
    assert_eq!(unverified.status, StatusCode::FORBIDDEN);
    let booked = app.authed(Method::POST, &booking_path, &ada, None).await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    let booking = booked.json();
    assert_eq!(booking["occurrence_id"], first["id"]);
    assert_eq!(booking["class_id"], class["id"]);
    let twice = app.authed(Method::POST, &booking_path, &ada, None).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let full = app.authed(Method::POST, &booking_path, &bob, None).await;
    assert_eq!(full.status, StatusCode::CONFLICT);
    assert!(
        full.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("full")
    );

    let mine = app
        .authed(Method::GET, "/api/bookings", &ada, None)
        .await
        .json();
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["results"][0]["id"], booking["id"]);
    assert_eq!(
        app.get("/api/bookings").await.status,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        app.authed(Method::DELETE, &booking_path, &ada, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.authed(Method::DELETE, &booking_path, &ada, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.authed(Method::POST, &booking_path, &bob, None)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn control_characters_in_class_text_are_refused_with_422_naming_the_field() {
    let app = TestApp::new().await;
    let token = staff_token(&app).await;
    let cases = [
        (
            "title",
            "a\r\nBcc: x@evil.tld",
            "a header injection in the title",
        ),
        ("title", "Yoga\u{0}", "a NUL in the title"),
        ("title", "Yoga\tflow", "a tab in the title"),
        ("location", "Studio\n1", "a newline in the location"),
        (
            "description",
            "Bring\u{0} a mat",
            "a NUL in the description",
        ),
        (
            "description",
            "Bring\u{1b}[2J a mat",
            "an escape in the description",
        ),
    ];
    for (field, value, case) in cases {
        let mut body = class_body("Yoga", TimeDelta::days(1), "none", 10);
        body[field] = json!(value);
        let reply = create(&app, &token, body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}: {}",
            reply.body
        );
        assert!(
            reply.json()["error"]["fields"][field].is_string(),
            "{case}: {}",
            reply.body
        );
    }
    assert_eq!(
        app.count("select count(*) from classes").await,
        0,
        "nothing stored"
    );

    // A description keeps its line breaks and tabs.
    let mut body = class_body("Yoga", TimeDelta::days(1), "none", 10);
    body["description"] = json!("Bring a mat.\r\n\tAnd water.");
    let reply = create(&app, &token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.json()["description"], "Bring a mat.\r\n\tAnd water.");

    // The same check on a change; and a NUL where no field check applies (a search) is never
    // a 500 on either database.
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let patched = app
        .authed(
            Method::PATCH,
            &format!("/api/classes/{id}"),
            &token,
            Some(json!({"title": "x\u{0}"})),
        )
        .await;
    assert_eq!(
        patched.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        patched.body
    );
}
