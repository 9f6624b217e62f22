//! The class pages as a browser uses them, on the database under test.

use crate::common;

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use common::{Browser, PASSWORD, Reply, TestApp, location};

fn assert_redirect_starts(reply: &Reply, prefix: &str) {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(location(reply).starts_with(prefix), "{}", location(reply));
}

/// A local `datetime-local` value some time from now.
fn local_start(from_now: TimeDelta) -> String {
    (Utc::now() + from_now).format("%Y-%m-%dT%H:%M").to_string()
}

async fn staff_browser(app: &TestApp) -> Browser<'_> {
    app.staff("staff@example.com").await;
    let mut browser = Browser::new(app);
    browser.log_in("staff@example.com", PASSWORD).await;
    browser
}

/// Creates a class through the staff form; returns its page's path.
async fn create_class(browser: &mut Browser<'_>, title: &str, capacity: &str) -> String {
    browser.get("/classes/new").await;
    let start = local_start(TimeDelta::days(1));
    let reply = browser
        .post(
            "/classes/new",
            &[
                ("title", title),
                ("description", "Bring a mat."),
                ("location", "Studio 1"),
                ("starts_at", &start),
                ("duration_minutes", "60"),
                ("capacity", capacity),
                ("recurrence", "daily"),
                ("repeat_until", ""),
            ],
        )
        .await;
    assert_redirect_starts(&reply, "/classes/");
    location(&reply).split('?').next().unwrap().to_owned()
}

#[tokio::test]
async fn staff_create_classes_through_the_form_with_field_errors_and_others_cannot() {
    let app = TestApp::new().await;
    let mut staff = staff_browser(&app).await;
    let form = staff.get("/classes/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let bad = staff
        .post(
            "/classes/new",
            &[
                ("title", ""),
                ("starts_at", "tomorrow"),
                ("duration_minutes", "sixty"),
                ("capacity", "0"),
                ("recurrence", "daily"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for message in [
        "enter a title",
        "enter a date and time",
        "enter between 1 and",
        "number of places",
    ] {
        assert!(bad.body.contains(message), "{message}");
    }
    assert!(
        bad.body.contains("value=\"tomorrow\""),
        "entered values are kept"
    );

    let path = create_class(&mut staff, "Morning yoga", "8").await;
    let page = staff.get(&path).await;
    assert!(page.body.contains("Morning yoga") && page.body.contains("Bring a mat."));
    assert!(page.body.contains("/edit"));

    app.account("ada@example.com", true).await;
    let mut ada = Browser::new(&app);
    ada.log_in("ada@example.com", PASSWORD).await;
    assert_eq!(ada.get("/classes/new").await.status, StatusCode::FORBIDDEN);
    ada.get("/classes").await;
    let refused = ada.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    staff.get(&path).await;
    let deleted = staff.post(&format!("{path}/delete"), &[]).await;
    assert_redirect_starts(&deleted, "/classes");
    assert_eq!(staff.get(&path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_class_list_pages_with_links_and_a_page_past_the_end_is_a_404_page() {
    let app = TestApp::new().await;
    let mut staff = staff_browser(&app).await;
    for i in 0..3 {
        create_class(&mut staff, &format!("Class {i}"), "5").await;
    }
    let first = staff.get("/classes?page_size=2").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("Page 1 of 2"), "{}", first.body);
    assert!(first.body.contains("page=2&amp;page_size=2"), "a next link");
    let second = staff.get("/classes?page=2&page_size=2").await;
    assert!(second.body.contains("Class 2") && !second.body.contains("Class 0"));
    let past = staff.get("/classes?page=3&page_size=2").await;
    assert_eq!(past.status, StatusCode::NOT_FOUND);
    assert!(past.body.contains("page 3 does not exist"));
    assert_eq!(
        staff.get("/classes?page=zero").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn verified_users_book_and_cancel_on_the_pages_and_a_full_class_is_refused_clearly() {
    let app = TestApp::new().await;
    let mut staff = staff_browser(&app).await;
    let path = create_class(&mut staff, "Pilates", "1").await;
    let class_id = path.trim_start_matches("/classes/").to_owned();
    let occurrences = app
        .get(&format!("/api/classes/{class_id}/occurrences"))
        .await
        .json();
    let first = occurrences["results"][0]["id"].as_str().unwrap().to_owned();

    // Unverified: told to verify, no button; a forged POST is refused.
    app.account("new@example.com", false).await;
    let mut new = Browser::new(&app);
    new.log_in("new@example.com", PASSWORD).await;
    let page = new.get(&path).await;
    assert!(page.body.contains("Verify your email address to book"));
    assert!(!page.body.contains(&format!("/occurrences/{first}/book")));
    let forged = new.post(&format!("/occurrences/{first}/book"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    app.account("ada@example.com", true).await;
    let mut ada = Browser::new(&app);
    ada.log_in("ada@example.com", PASSWORD).await;
    ada.get(&path).await;
    let booked = ada.post(&format!("/occurrences/{first}/book"), &[]).await;
    assert_redirect_starts(&booked, &format!("{path}?notice=booked"));
    let page = ada.get(location(&booked)).await;
    assert!(page.body.contains("You are booked"));
    let mine = ada.get("/bookings").await;
    assert!(mine.body.contains("Pilates"), "{}", mine.body);

    app.account("bob@example.com", true).await;
    let mut bob = Browser::new(&app);
    bob.log_in("bob@example.com", PASSWORD).await;
    bob.get(&path).await;
    let full = bob.post(&format!("/occurrences/{first}/book"), &[]).await;
    assert_eq!(full.status, StatusCode::CONFLICT);
    assert!(full.body.contains("this class is full"), "{}", full.body);

    let cancelled = ada
        .post(
            &format!("/occurrences/{first}/cancel"),
            &[("back", "/bookings")],
        )
        .await;
    assert_redirect_starts(&cancelled, "/bookings?notice=cancelled");
    let again = bob.post(&format!("/occurrences/{first}/book"), &[]).await;
    assert_redirect_starts(&again, &format!("{path}?notice=booked"));
    assert_redirect_starts(&Browser::new(&app).get("/bookings").await, "/login?next=");
}
