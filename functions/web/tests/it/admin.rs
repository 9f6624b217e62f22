//! The admin as an operator uses it, on the database under test: who may enter, every list and
//! action, the action log; the dead-letter queue against the AWS emulator.

use crate::common;

use axum::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use common::{Browser, PASSWORD, Reply, TestApp, location};
// example-app:begin
use shared::domain::classes::ClassDraft;
// example-app:end
use shared::domain::{EmailAddress, User};
// example-app:begin
use shared::services::classes;
// example-app:end
use shared::store::users;
use uuid::Uuid;

const ROOT: &str = "root@example.com";

fn assert_redirect(reply: &Reply, to: &str) {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(location(reply), to);
}

async fn find_user(app: &TestApp, email: &str) -> User {
    let mut conn = app.database().acquire().await.unwrap();
    users::find_user_by_email(&mut conn, &EmailAddress::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// A browser signed in as `email`, holding the CSRF token of its session (the login page's
/// token belongs to the session before login).
async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let reply = browser.log_in(email, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    browser.get("/account").await;
    browser
}

async fn superuser(app: &TestApp) -> Browser<'_> {
    app.staff(ROOT).await;
    signed_in(app, ROOT).await
}

async fn admin_actions(app: &TestApp) -> i64 {
    app.count("select count(*) from admin_actions").await
}

// example-app:begin
/// A class starting tomorrow, repeating daily, made by `actor`.
async fn class(app: &TestApp, actor: &User, title: &str) -> shared::domain::classes::Class {
    let draft = ClassDraft {
        title: Some(title.into()),
        starts_at: Some((Utc::now() + TimeDelta::days(1)).to_rfc3339()),
        duration_minutes: Some(60),
        capacity: Some(10),
        recurrence: Some("daily".into()),
        ..Default::default()
    };
    classes::create_class(app.database(), chrono_tz::UTC, actor, &draft)
        .await
        .unwrap()
}

/// The id of a class's first upcoming occurrence.
async fn first_occurrence(app: &TestApp, class_id: Uuid) -> Uuid {
    classes::list_occurrences(app.database(), class_id, Default::default())
        .await
        .unwrap()
        .results[0]
        .id
}

// example-app:end
/// A count bound to one id (`select count(*) ... where ... = $1`).
async fn count_for(app: &TestApp, sql: &'static str, id: Uuid) -> i64 {
    let mut conn = app.database().acquire().await.unwrap();
    shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar(sql).bind(id).fetch_one(&mut *c).await
    })
    .unwrap()
}

/// The values of the hidden `name` fields of a page's forms, in order.
fn hidden_values(body: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    body.match_indices(&marker)
        .map(|(i, _)| {
            let start = i + marker.len();
            let end = start + body[start..].find('"').unwrap();
            body[start..end].to_owned()
        })
        .collect()
}

/// A route's path with its parameters filled: `{id}` with `id`, `{name}` with a job's name,
/// `{message_id}` with a made-up message id.
fn fill(path: &str, id: Uuid) -> String {
    path.replace("{id}", &id.to_string())
        .replace("{name}", "sweep-outbox")
        .replace("{message_id}", "00000000-message")
}

#[tokio::test]
async fn every_admin_route_refuses_visitors_and_users_who_are_not_superusers() {
    let app = TestApp::new().await;
    app.account("user@example.com", true).await;
    app.account("staff@example.com", true).await;
    let mut conn = app.database().acquire().await.unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query("update users set is_staff = true where email = 'staff@example.com'")
    )
    .unwrap();
    drop(conn);
    let target = find_user(&app, "user@example.com").await;
    let routes = web::admin_routes();
    // The list comes from the router's own builder; these must be in it.
    for (method, path) in [
        (Method::GET, "/admin"),
        (Method::GET, "/admin/users"),
        (Method::POST, "/admin/users/{id}/deactivate"),
        (Method::POST, "/admin/emails/{id}/retry"),
        // example-app:begin
        (Method::POST, "/admin/classes/{id}/delete"),
        // example-app:end
        (Method::POST, "/admin/jobs/{name}/run"),
        (Method::POST, "/admin/dead-letters/redrive"),
        (Method::POST, "/admin/users"),
        (Method::POST, "/admin/users/{id}/password"),
        (Method::POST, "/admin/users/{id}/password-reset"),
        (Method::POST, "/admin/users/{id}/delete"),
        (Method::POST, "/admin/users/{id}/sessions/revoke"),
        (Method::POST, "/admin/users/{id}/api-tokens/revoke"),
        (Method::POST, "/admin/users/{id}/sign-out"),
        // example-app:begin
        (Method::GET, "/admin/occurrences/{id}"),
        (Method::POST, "/admin/bookings/{id}/cancel"),
        // example-app:end
    ] {
        assert!(
            routes.iter().any(|r| r.method == method && r.path == path),
            "{method} {path} is not an admin route"
        );
    }
    let at_least = 25;
    // example-app:begin
    let at_least = at_least + 9;
    // example-app:end
    assert!(routes.len() >= at_least, "{} routes", routes.len());

    let mut visitor = Browser::new(&app);
    visitor.get("/login").await; // a cookie and a CSRF token, as a real visitor has
    let mut user = signed_in(&app, "user@example.com").await;
    let mut staff = signed_in(&app, "staff@example.com").await;
    for route in &routes {
        let path = fill(route.path, target.id);
        let what = format!("{} {path}", route.method);
        let anonymous = if route.method == Method::GET {
            visitor.get(&path).await
        } else {
            visitor.post(&path, &[("staff", "yes")]).await
        };
        assert_eq!(
            anonymous.status,
            StatusCode::SEE_OTHER,
            "{what}: {}",
            anonymous.body
        );
        let expected = if route.method == Method::GET {
            format!(
                "/login?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &path)
                    .finish()
            )
        } else {
            "/login?next=%2Fadmin".to_owned()
        };
        assert_eq!(location(&anonymous), expected, "{what}");
        for browser in [&mut user, &mut staff] {
            let reply = if route.method == Method::GET {
                browser.get(&path).await
            } else {
                browser.post(&path, &[("staff", "yes")]).await
            };
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{what}: {}",
                reply.body
            );
            // Refused by the admin's guard, not by a missing CSRF token.
            assert!(
                reply.body.contains("superusers only"),
                "{what}: {}",
                reply.body
            );
        }
    }
    assert_eq!(admin_actions(&app).await, 0);
    assert_eq!(app.count("select count(*) from job_runs").await, 0);
    let after = find_user(&app, "user@example.com").await;
    assert!(after.is_active && !after.is_staff);
    // A page outside the admin does not show the menu entry to them.
    assert!(!user.get("/").await.body.contains("href=\"/admin\""));
}

#[tokio::test]
async fn a_superuser_opens_every_admin_page() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    assert!(root.get("/").await.body.contains("href=\"/admin\""));
    app.account("someone@example.com", true).await;
    let user = find_user(&app, "someone@example.com").await;
    let email = app.outbox().await.pop().unwrap();
    // example-app:begin
    let actor = find_user(&app, ROOT).await;
    let class = class(&app, &actor, "Yoga").await;
    let occurrence = first_occurrence(&app, class.id).await;
    // example-app:end
    let overview = root.get("/admin").await;
    let users_tile = overview.body.split("Users</dt>").nth(1).unwrap();
    assert!(
        users_tile.starts_with("<dd class=\"text-2xl font-semibold\">2</dd>"),
        "{}",
        overview.body
    );
    for route in web::admin_routes() {
        if route.method != Method::GET {
            continue;
        }
        let id = match route.path.split('/').nth(2) {
            Some("emails") => email.id,
            // example-app:begin
            Some("occurrences") => occurrence,
            Some("classes") => class.id,
            // example-app:end
            _ => user.id,
        };
        let path = fill(route.path, id);
        let reply = root.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
    }
}

#[tokio::test]
async fn users_are_searched_filtered_and_paginated() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    for i in 0..22 {
        shared::testing::user(
            app.database(),
            &format!("member{i:02}@example.com"),
            i % 2 == 0,
            false,
        )
        .await;
    }
    shared::testing::user(app.database(), "ann_o@example.org", true, true).await;
    // 24 accounts: page 2 of the default 20 has 4, page 3 does not exist.
    let first = root.get("/admin/users").await;
    assert!(first.body.contains("Page 1 of 2"), "{}", first.body);
    assert!(first.body.contains("users?page=2\""), "{}", first.body);
    let second = root.get("/admin/users?page=2").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        root.get("/admin/users?page=3").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        root.get("/admin/users?page=0").await.status,
        StatusCode::BAD_REQUEST
    );

    let search = root.get("/admin/users?q=ANN_").await;
    assert!(search.body.contains("ann_o@example.org"));
    // A control character in a search (PostgreSQL refuses a NUL) finds what the rest finds.
    for list in [
        "users?q",
        "emails?to",
        // example-app:begin
        "classes?q",
        // example-app:end
    ] {
        let nul = root.get(&format!("/admin/{list}=%00ann%0D%0A")).await;
        assert_eq!(nul.status, StatusCode::OK, "{list}: {}", nul.body);
    }
    assert!(
        root.get("/admin/users?q=%00ann_")
            .await
            .body
            .contains("ann_o@example.org")
    );
    assert!(
        !search.body.contains("member00@"),
        "the _ matches only itself"
    );
    let staff = root.get("/admin/users?staff=yes").await;
    assert!(staff.body.contains("ann_o@example.org") && staff.body.contains(ROOT));
    assert!(!staff.body.contains("member"));
    let unverified = root.get("/admin/users?verified=no&q=member").await;
    assert!(unverified.body.contains("member01@") && !unverified.body.contains("member00@"));
    // The filters follow the reader to the next page.
    let many = root.get("/admin/users?q=member&page_size=5").await;
    assert!(
        many.body.contains("q=member&amp;page=2&amp;page_size=5"),
        "{}",
        many.body
    );
    let bad = root.get("/admin/users?active=maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("active must be yes, no or empty"));
}

#[tokio::test]
async fn deactivating_ends_every_session_and_token_and_reactivating_lets_them_back() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("member@example.com", true).await;
    let token = app.api_token("member@example.com", PASSWORD).await;
    let mut member = signed_in(&app, "member@example.com").await;
    let id = find_user(&app, "member@example.com").await.id;
    let page = format!("/admin/users/{id}");

    root.get(&page).await;
    let reply = root.post(&format!("{page}/deactivate"), &[]).await;
    assert_redirect(&reply, &format!("{page}?notice=deactivated"));
    let shown = root.get(location(&reply)).await;
    assert!(shown.body.contains("sessions and API tokens have ended"));
    assert!(shown.body.contains("inactive"));

    assert_redirect(&member.get("/account").await, "/login?next=%2Faccount");
    let me = app.authed(Method::GET, "/api/me", &token, None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let login = Browser::new(&app)
        .log_in("member@example.com", PASSWORD)
        .await;
    assert_ne!(
        login.status,
        StatusCode::SEE_OTHER,
        "a deactivated account cannot log in"
    );

    let reply = root.post(&format!("{page}/reactivate"), &[]).await;
    assert_redirect(&reply, &format!("{page}?notice=reactivated"));
    let login = Browser::new(&app)
        .log_in("member@example.com", PASSWORD)
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);

    // Logged with the acting superuser.
    let log = root.get("/admin/log").await;
    assert!(log.body.contains("user.deactivate") && log.body.contains("user.reactivate"));
    assert!(log.body.contains(ROOT));
    assert!(
        log.body.contains("2 sessions and API tokens ended"),
        "{}",
        log.body
    );
    assert_eq!(admin_actions(&app).await, 2);
}

#[tokio::test]
async fn staff_status_and_verification_emails_are_managed_and_a_superuser_cannot_lock_themselves_out()
 {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("new@example.com", false).await;
    let id = find_user(&app, "new@example.com").await.id;
    let page = format!("/admin/users/{id}");
    root.get(&page).await;

    let reply = root
        .post(&format!("{page}/staff"), &[("staff", "yes")])
        .await;
    assert_redirect(&reply, &format!("{page}?notice=staff_granted"));
    assert!(find_user(&app, "new@example.com").await.is_staff);
    let reply = root
        .post(&format!("{page}/staff"), &[("staff", "no")])
        .await;
    assert_redirect(&reply, &format!("{page}?notice=staff_removed"));
    assert!(!find_user(&app, "new@example.com").await.is_staff);
    let bad = root.post(&format!("{page}/staff"), &[("staff", "")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Signup sent one link a moment ago: a second within five minutes is refused.
    let before = app.outbox().await.len();
    let again = root.post(&format!("{page}/resend-verification"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("less than 5 minutes ago"));
    app.set_time(
        "update emails set created_at = $1",
        Utc::now() - TimeDelta::minutes(6),
    )
    .await;
    let reply = root.post(&format!("{page}/resend-verification"), &[]).await;
    assert_redirect(&reply, &format!("{page}?notice=verification_sent"));
    let outbox = app.outbox().await;
    assert_eq!(outbox.len(), before + 1);
    assert_eq!(outbox.last().unwrap().kind, "verify_email");
    assert_eq!(outbox.last().unwrap().to_address, "new@example.com");

    let me = find_user(&app, ROOT).await.id;
    let mine = format!("/admin/users/{me}");
    let refused = root.post(&format!("{mine}/deactivate"), &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("lock yourself out"));
    let refused = root
        .post(&format!("{mine}/staff"), &[("staff", "no")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let root_now = find_user(&app, ROOT).await;
    assert!(root_now.is_active && root_now.is_staff);

    // An action without the CSRF token changes nothing.
    let forged = root
        .post_raw(
            &format!("{page}/staff"),
            &[("staff", "yes")],
            &[("origin", "http://localhost")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!find_user(&app, "new@example.com").await.is_staff);
    assert_eq!(admin_actions(&app).await, 3);
}

#[tokio::test]
async fn the_outbox_is_counted_filtered_viewed_and_a_failed_email_retried() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("a@example.com", false).await;
    app.account("b@example.com", false).await;
    let outbox = app.outbox().await;
    let failed = &outbox[0];
    let mut conn = app.database().acquire().await.unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query(
            "update emails set status = 'failed', attempts = 10, \
             last_error = 'MessageRejected: address is on the suppression list' where id = $1"
        )
        .bind(failed.id)
    )
    .unwrap();
    drop(conn);

    let list = root.get("/admin/emails").await;
    assert!(
        list.body
            .contains("failed <span class=\"font-semibold\">1</span>"),
        "{}",
        list.body
    );
    assert!(
        list.body
            .contains("pending <span class=\"font-semibold\">1</span>")
    );
    let only_failed = root.get("/admin/emails?status=failed").await;
    assert!(
        only_failed.body.contains("a@example.com") && !only_failed.body.contains("b@example.com")
    );
    let by_address = root.get("/admin/emails?to=B@EXAMPLE").await;
    assert!(
        by_address.body.contains("b@example.com") && !by_address.body.contains("a@example.com")
    );
    assert_eq!(
        root.get("/admin/emails?status=lost").await.status,
        StatusCode::BAD_REQUEST
    );

    let page = format!("/admin/emails/{}", failed.id);
    let shown = root.get(&page).await;
    assert!(shown.body.contains("suppression list"));
    assert!(
        shown.body.contains("verify-email?token="),
        "the text body is shown"
    );
    // ...with the link's token masked, in the text and in the HTML preview.
    let live_token = common::token_in(failed);
    assert!(
        shown.body.contains("verify-email?token=[hidden]"),
        "{}",
        shown.body
    );
    let html = root.get(&format!("{page}/html")).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.body.contains("token=[hidden]"), "{}", html.body);
    for body in [&shown.body, &html.body] {
        assert!(!body.contains(&live_token), "the admin sees a live token");
    }
    let html = root.get(&format!("{page}/html")).await;
    assert_eq!(html.status, StatusCode::OK);
    let csp = html.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("sandbox; default-src 'none'"), "{csp}");
    assert_eq!(html.headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(root.get("/").await.headers["x-frame-options"], "DENY");

    app.drain_queued();
    let reply = root.post(&format!("{page}/retry"), &[]).await;
    assert_redirect(&reply, &format!("{page}?notice=retried"));
    let row = app
        .outbox()
        .await
        .into_iter()
        .find(|r| r.id == failed.id)
        .unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
    assert!(
        app.drain_queued()
            .iter()
            .any(|b| b.contains(&failed.id.to_string()))
    );
    // Only a failed one can be retried.
    let again = root.post(&format!("{page}/retry"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("this one is pending"));
    let log = root.get("/admin/log").await;
    assert!(log.body.contains("email.retry") && log.body.contains("after 10 attempts"));
}

// example-app:begin
#[tokio::test]
async fn classes_and_occurrences_are_edited_and_deleted() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    let actor = find_user(&app, ROOT).await;
    let yoga = class(&app, &actor, "Morning yoga").await;
    class(&app, &actor, "Evening run").await;
    let search = root.get("/admin/classes?q=YOGA").await;
    assert!(search.body.contains("Morning yoga") && !search.body.contains("Evening run"));

    let page = format!("/admin/classes/{}", yoga.id);
    root.get(&format!("{page}/edit")).await;
    let start = (yoga.schedule.starts_at)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let fields = [
        ("title", "Sunrise yoga"),
        ("description", ""),
        ("location", "Studio 2"),
        ("starts_at", start.as_str()),
        ("duration_minutes", "45"),
        ("capacity", "12"),
        ("recurrence", "daily"),
        ("repeat_until", ""),
    ];
    let reply = root.post(&format!("{page}/edit"), &fields).await;
    assert_redirect(&reply, &format!("{page}?notice=class_saved"));
    let saved = classes::get_class(app.database(), yoga.id).await.unwrap();
    assert_eq!((saved.title.as_str(), saved.capacity), ("Sunrise yoga", 12));
    let mut invalid = fields;
    invalid[0] = ("title", "");
    let reply = root.post(&format!("{page}/edit"), &invalid).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);

    // One occurrence with two bookings: its capacity cannot go below 2.
    let occurrences = classes::list_occurrences(app.database(), yoga.id, Default::default())
        .await
        .unwrap();
    let first = occurrences.results[0].id;
    for email in ["x@example.com", "y@example.com"] {
        app.account(email, true).await;
        classes::book(app.database(), &find_user(&app, email).await, first)
            .await
            .unwrap();
    }
    root.get(&page).await;
    let low = root
        .post(
            &format!("/admin/occurrences/{first}/capacity"),
            &[("capacity", "1")],
        )
        .await;
    assert_eq!(low.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(low.body.contains("2 places are booked"), "{}", low.body);
    let nonsense = root
        .post(
            &format!("/admin/occurrences/{first}/capacity"),
            &[("capacity", "lots")],
        )
        .await;
    assert_eq!(nonsense.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = root
        .post(
            &format!("/admin/occurrences/{first}/capacity"),
            &[("capacity", "2")],
        )
        .await;
    assert_redirect(&ok, &format!("{page}?notice=capacity_saved"));
    assert_eq!(
        classes::get_occurrence(app.database(), first)
            .await
            .unwrap()
            .capacity,
        2
    );

    let deleted = root
        .post(&format!("/admin/occurrences/{first}/delete"), &[])
        .await;
    assert_redirect(&deleted, &format!("{page}?notice=occurrence_deleted"));
    assert_eq!(app.count("select count(*) from bookings").await, 0);
    assert!(
        classes::get_occurrence(app.database(), first)
            .await
            .is_err()
    );

    let gone = root.post(&format!("{page}/delete"), &[]).await;
    assert_redirect(&gone, "/admin/classes?notice=class_deleted");
    assert_eq!(root.get(&page).await.status, StatusCode::NOT_FOUND);
    let log = root.get("/admin/log").await;
    for action in [
        "class.update",
        "occurrence.capacity",
        "occurrence.delete",
        "class.delete",
    ] {
        assert!(log.body.contains(action), "{action}");
    }
    assert!(log.body.contains("with 2 bookings"));
}

// example-app:end
#[tokio::test]
async fn job_runs_are_listed_and_a_job_runs_now() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    let overview = root.get("/admin/jobs").await;
    for job in shared::jobs::JOBS {
        assert!(overview.body.contains(job.name), "{}", job.name);
    }
    assert!(overview.body.contains("Never ran."));

    let reply = root.post("/admin/jobs/purge-expired/run", &[]).await;
    assert_redirect(&reply, "/admin/jobs/purge-expired?notice=job_ran");
    let runs = root.get(location(&reply)).await;
    assert!(runs.body.contains("succeeded"), "{}", runs.body);
    assert!(runs.body.contains(" ms") || runs.body.contains(" s<"));
    assert_eq!(
        app.count("select count(*) from job_runs where job = 'purge-expired'")
            .await,
        1
    );
    let unknown = root.post("/admin/jobs/launch-rockets/run", &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        root.get("/admin/jobs/launch-rockets").await.status,
        StatusCode::NOT_FOUND
    );
    let log = root.get("/admin/log").await;
    assert!(log.body.contains("job.run") && log.body.contains("job purge-expired"));
}

#[tokio::test]
async fn without_an_sqs_queue_the_dead_letter_page_says_why_and_its_actions_are_refused() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    let page = root.get("/admin/dead-letters").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("WORKER_QUEUE_URL</code> is not set"));
    let reply = root.post("/admin/dead-letters/redrive", &[]).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.body.contains("no dead-letter queue"));
    assert_eq!(admin_actions(&app).await, 0);
}

/// Receives what `url` holds right now (long polling for a second).
async fn receive_all(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let batch = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            return all;
        }
        for m in &batch {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        all.extend(batch);
    }
}

async fn send(client: &aws_sdk_sqs::Client, url: &str, body: &str) -> String {
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap()
}

#[tokio::test]
#[ignore = "needs the AWS emulator: .ci/run runs it with --ignored on both databases"]
async fn a_dead_letter_is_listed_redriven_to_the_worker_queue_and_delivered_by_the_worker() {
    // A worker queue whose redrive policy names a dead-letter queue, as template.yaml has it.
    let (client, worker_url, dlq_url) = shared::testing::queue_with_dead_letters().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::local_config(dir.path());
    config.worker_queue_url = Some(worker_url.parse().unwrap());
    let (_, unused) = shared::queue::Queue::local();
    // The queue the web function makes in Lambda: its SQS client is built at first use.
    let queue = shared::queue::Queue::sqs_on_first_send(&config).unwrap();
    let app = TestApp::with_queue(config, dir, queue, unused).await;
    let mut root = superuser(&app).await;

    // A signup's email whose message the worker failed five times: SQS moved it to the
    // dead-letter queue, and its row is still pending.
    app.account("late@example.com", false).await;
    let row = app.outbox().await.pop().unwrap();
    let message = receive_all(&client, &worker_url).await.pop().unwrap();
    let dead = send(&client, &dlq_url, message.body().unwrap()).await;
    let garbage = send(&client, &dlq_url, "{\"v\":1,\"kind\":\"launch_rockets\"}").await;

    let page = root.get("/admin/dead-letters").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(&dead) && page.body.contains(&garbage),
        "{}",
        page.body
    );
    assert!(page.body.contains(&row.id.to_string()), "links the email");
    assert!(page.body.contains("unknown message kind"));
    // Listing released what it received: the message can be taken at once.
    let reply = root
        .post(&format!("/admin/dead-letters/{dead}/redrive"), &[])
        .await;
    assert_redirect(&reply, "/admin/dead-letters?notice=redriven");
    let missing = root
        .post(&format!("/admin/dead-letters/{dead}/redrive"), &[])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The worker takes it from its queue and the email goes out.
    let moved = receive_all(&client, &worker_url).await;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].body(), message.body());
    let mailer = shared::mail::FakeMailer::new();
    let deps = worker::Deps {
        db: app.database().clone(),
        mailer: shared::mail::Mailer::Fake(mailer.clone()),
    };
    let event = worker::event_for(moved.iter().map(|m| {
        (
            m.message_id().unwrap().to_owned(),
            m.body().unwrap().to_owned(),
            1,
        )
    }));
    let response = worker::handle_batch(&deps, event).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = app
        .outbox()
        .await
        .into_iter()
        .find(|r| r.id == row.id)
        .unwrap();
    assert_eq!(sent.status, "sent");
    assert_eq!(mailer.sent().len(), 1);
    assert_eq!(mailer.sent()[0].to, "late@example.com");

    // The unreadable one is deleted; then three more are redriven at once.
    let reply = root
        .post(&format!("/admin/dead-letters/{garbage}/delete"), &[])
        .await;
    assert_redirect(&reply, "/admin/dead-letters?notice=dead_letter_deleted");
    assert!(
        root.get("/admin/dead-letters")
            .await
            .body
            .contains("is empty")
    );
    for i in 0..3 {
        send(&client, &dlq_url, &format!("message {i}")).await;
    }
    root.get("/admin/dead-letters").await;
    let reply = root.post("/admin/dead-letters/redrive", &[]).await;
    assert_redirect(&reply, "/admin/dead-letters?notice=redriven_all");
    assert_eq!(receive_all(&client, &worker_url).await.len(), 3);
    assert!(receive_all(&client, &dlq_url).await.is_empty());

    let log = root.get("/admin/log").await;
    for action in [
        "dead_letter.redrive",
        "dead_letter.delete",
        "dead_letter.redrive_all",
    ] {
        assert!(log.body.contains(action), "{action}");
    }
    assert!(log.body.contains("3 messages moved to the worker queue"));
    assert!(
        root.get("/admin").await.body.contains(">0</dd>"),
        "the dashboard counts them"
    );
}

/// The class attribute of the element whose text starts with `text` in `html`.
fn class_around(html: &str, text: &str) -> String {
    let at = html
        .find(text)
        .unwrap_or_else(|| panic!("{text:?} is not on the page:\n{html}"));
    let open = html[..at]
        .rfind('<')
        .unwrap_or_else(|| panic!("no element around {text:?}"));
    let tag = &html[open..at];
    tag.split("class=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn job_names_in_the_action_log_never_break_across_lines() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    let reply = root.post("/admin/jobs/sweep-outbox/run", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    for page in ["/admin/log", "/admin"] {
        let html = root.get(page).await.body;
        for text in ["job.run<", "job sweep-outbox<"] {
            let class = class_around(&html, text);
            assert!(
                class.split_whitespace().any(|c| c == "whitespace-nowrap"),
                "{page}: {text:?} may break mid-name (class {class:?})"
            );
        }
    }
}

// ---- The admin's everyday actions: users, passwords, sessions, API tokens ---------------------------------------------------

#[tokio::test]
async fn a_superuser_creates_an_account_and_a_taken_email_or_a_weak_password_is_refused_with_422() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("taken@example.com", true).await;
    root.get("/admin/users").await;

    let reply = root
        .post(
            "/admin/users",
            &[
                ("email", "New.Person@Example.com"),
                ("password", "a long new passphrase"),
                ("is_staff", "yes"),
            ],
        )
        .await;
    let created = find_user(&app, "new.person@example.com").await;
    assert_redirect(
        &reply,
        &format!("/admin/users/{}?notice=user_created", created.id),
    );
    assert!(created.is_staff && !created.is_superuser && !created.is_verified);
    assert!(created.is_active);
    let login = Browser::new(&app)
        .log_in("new.person@example.com", "a long new passphrase")
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);

    let users_before = app.count("select count(*) from users").await;
    let cases = [
        (
            "TAKEN@example.com",
            "a long new passphrase",
            "already exists",
            "a taken email, whatever its case",
        ),
        (
            "weak@example.com",
            "password",
            "10,000 most common",
            "a common password",
        ),
        (
            "weak@example.com",
            "short",
            "at least 8",
            "a short password",
        ),
        (
            "not an email",
            "a long new passphrase",
            "aria-invalid",
            "a malformed email",
        ),
    ];
    for (email, password, says, case) in cases {
        let reply = root
            .post(
                "/admin/users",
                &[
                    ("email", email),
                    ("password", password),
                    ("is_superuser", "yes"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{case}");
        assert!(reply.body.contains(says), "{case}: {}", reply.body);
        // The form comes back open with what was typed, never the password.
        assert!(
            reply
                .body
                .contains("<details class=\"mt-4 rounded-lg ring-1 ring-slate-200\" open>"),
            "{case}"
        );
        if password.contains(' ') {
            assert!(
                !reply.body.contains(password),
                "{case}: the password is echoed"
            );
        }
    }
    assert_eq!(app.count("select count(*) from users").await, users_before);

    let log = root.get("/admin/log").await;
    assert!(log.body.contains("user.create"), "{}", log.body);
    assert!(log.body.contains("new.person@example.com created (staff)"));
    assert_eq!(admin_actions(&app).await, 1);
}

#[tokio::test]
async fn setting_a_password_signs_the_account_out_everywhere_and_only_the_new_password_works() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("member@example.com", true).await;
    let token = app.api_token("member@example.com", PASSWORD).await;
    let mut member = signed_in(&app, "member@example.com").await;
    let id = find_user(&app, "member@example.com").await.id;
    let page = format!("/admin/users/{id}");
    root.get(&page).await;

    let weak = root
        .post(&format!("{page}/password"), &[("password", "member")])
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("id=\"password-error\""), "{}", weak.body);
    let login = Browser::new(&app)
        .log_in("member@example.com", PASSWORD)
        .await;
    assert_eq!(
        login.status,
        StatusCode::SEE_OTHER,
        "a refused password changes nothing"
    );

    let reply = root
        .post(
            &format!("{page}/password"),
            &[("password", "the admin chose this")],
        )
        .await;
    assert_redirect(&reply, &format!("{page}?notice=password_set"));

    let old = Browser::new(&app)
        .log_in("member@example.com", PASSWORD)
        .await;
    assert_ne!(
        old.status,
        StatusCode::SEE_OTHER,
        "the old password still works"
    );
    let new = Browser::new(&app)
        .log_in("member@example.com", "the admin chose this")
        .await;
    assert_eq!(new.status, StatusCode::SEE_OTHER, "{}", new.body);
    assert_redirect(&member.get("/account").await, "/login?next=%2Faccount");
    let me = app.authed(Method::GET, "/api/me", &token, None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    // Not on the admin's own account: that one has the account page.
    let me_id = find_user(&app, ROOT).await.id;
    let own = root
        .post(
            &format!("/admin/users/{me_id}/password"),
            &[("password", "the admin chose this")],
        )
        .await;
    assert_eq!(own.status, StatusCode::CONFLICT);

    let log = root.get("/admin/log").await;
    assert!(log.body.contains("user.set_password"), "{}", log.body);
    // The member's browser, the login above and the API token.
    assert!(
        log.body.contains("3 sessions and API tokens ended"),
        "{}",
        log.body
    );
    assert_eq!(admin_actions(&app).await, 1);
}

#[tokio::test]
async fn the_admin_sends_a_reset_link_and_is_told_when_the_address_limit_holds_one_back() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("member@example.com", true).await;
    let id = find_user(&app, "member@example.com").await.id;
    let page = format!("/admin/users/{id}");
    root.get(&page).await;

    for _ in 0..shared::services::accounts::RESET_EMAILS_PER_ADDRESS {
        let reply = root.post(&format!("{page}/password-reset"), &[]).await;
        assert_redirect(&reply, &format!("{page}?notice=reset_sent"));
    }
    let resets: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|r| r.kind == "password_reset")
        .collect();
    assert_eq!(resets.len(), 3);
    assert!(resets.iter().all(|r| r.to_address == "member@example.com"));
    // The link works: it is the public flow's link.
    let reply = app
        .post_json(
            "/api/auth/password-reset/confirm",
            serde_json::json!({"token": common::token_in(&resets[2]), "password": "reset by link"}),
        )
        .await;
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);

    let held = root.post(&format!("{page}/password-reset"), &[]).await;
    assert_eq!(held.status, StatusCode::CONFLICT, "{}", held.body);
    assert!(
        held.body.contains("the most an address gets"),
        "{}",
        held.body
    );
    let resets = app
        .outbox()
        .await
        .into_iter()
        .filter(|r| r.kind == "password_reset")
        .count();
    assert_eq!(resets, 3);

    let log = root.get("/admin/log").await;
    assert!(log.body.contains("user.send_password_reset"));
    assert_eq!(admin_actions(&app).await, 3);
}

#[tokio::test]
async fn deleting_an_account_takes_its_sessions_and_tokens_and_keeps_its_emails() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    let actor = find_user(&app, ROOT).await;
    app.account("member@example.com", true).await;
    app.api_token("member@example.com", PASSWORD).await;
    let _member = signed_in(&app, "member@example.com").await;
    let member = find_user(&app, "member@example.com").await;
    // example-app:begin
    let yoga = class(&app, &actor, "Yoga").await;
    let first = first_occurrence(&app, yoga.id).await;
    classes::book(app.database(), &member, first).await.unwrap();
    // example-app:end
    let emails = count_for(
        &app,
        "select count(*) from emails where user_id = $1",
        member.id,
    )
    .await;
    assert!(emails >= 1);
    let page = format!("/admin/users/{}", member.id);
    root.get(&page).await;

    let unconfirmed = root.post(&format!("{page}/delete"), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        count_for(&app, "select count(*) from users where id = $1", member.id).await,
        1
    );

    let reply = root
        .post(&format!("{page}/delete"), &[("confirm", "yes")])
        .await;
    assert_redirect(&reply, "/admin/users?notice=user_deleted");

    let id = member.id;
    assert_eq!(
        count_for(&app, "select count(*) from users where id = $1", id).await,
        0
    );
    for sql in [
        "select count(*) from sessions where user_id = $1",
        "select count(*) from api_tokens where user_id = $1",
        "select count(*) from email_tokens where user_id = $1",
        // example-app:begin
        "select count(*) from bookings where user_id = $1",
        // example-app:end
        "select count(*) from emails where user_id = $1",
    ] {
        assert_eq!(count_for(&app, sql, id).await, 0, "{sql}");
    }
    let kept = app
        .outbox()
        .await
        .into_iter()
        .filter(|r| r.to_address == "member@example.com")
        .count();
    assert_eq!(kept as i64, emails, "the emails stay in the outbox");
    assert_eq!(
        app.count("select count(*) from emails where user_id is null")
            .await,
        emails
    );
    // example-app:begin
    let occurrence = classes::get_occurrence(app.database(), first)
        .await
        .unwrap();
    assert_eq!(occurrence.booked, 0, "the place is freed");
    // example-app:end

    // Not yourself.
    let me = format!("/admin/users/{}", actor.id);
    root.get(&me).await;
    let own = root
        .post(&format!("{me}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert!(own.body.contains("lock yourself out"));
    assert_eq!(
        count_for(&app, "select count(*) from users where id = $1", actor.id).await,
        1
    );

    let log = root.get("/admin/log").await;
    assert!(
        log.body
            .contains("member@example.com deleted with 1 sessions, 1 API tokens"),
        "{}",
        log.body
    );
    // example-app:begin
    assert!(
        log.body.contains("1 API tokens and 1 bookings"),
        "{}",
        log.body
    );
    // example-app:end
    assert_eq!(admin_actions(&app).await, 1);
}

// example-app:begin
#[tokio::test]
async fn the_bookings_of_an_occurrence_are_listed_and_one_is_cancelled_freeing_its_place() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    let actor = find_user(&app, ROOT).await;
    let yoga = class(&app, &actor, "Yoga").await;
    let first = first_occurrence(&app, yoga.id).await;
    for email in ["ann@example.com", "bob@example.com"] {
        app.account(email, true).await;
        classes::book(app.database(), &find_user(&app, email).await, first)
            .await
            .unwrap();
    }
    let ann = find_user(&app, "ann@example.com").await;
    let class_page = root.get(&format!("/admin/classes/{}", yoga.id)).await;
    assert!(
        class_page
            .body
            .contains(&format!("href=\"/admin/occurrences/{first}\""))
    );

    let page = format!("/admin/occurrences/{first}");
    let listed = root.get(&page).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.body.contains("ann@example.com") && listed.body.contains("bob@example.com"));
    assert!(listed.body.contains("2 of 10"), "{}", listed.body);

    let booking = classes::list_bookings(app.database(), &ann, Default::default())
        .await
        .unwrap()
        .results[0]
        .id;
    let cancel = format!("/admin/bookings/{booking}/cancel");
    // (The form's action is escaped: `&#x2f;` for each slash.)
    assert!(
        listed.body.contains(&booking.to_string()),
        "{}",
        listed.body
    );
    let reply = root.post(&cancel, &[]).await;
    assert_redirect(&reply, &format!("{page}?notice=booking_cancelled"));

    let occurrence = classes::get_occurrence(app.database(), first)
        .await
        .unwrap();
    assert_eq!(occurrence.booked, 1, "the place is freed");
    assert_eq!(
        count_for(
            &app,
            "select count(*) from bookings where user_id = $1",
            ann.id
        )
        .await,
        0
    );
    let after = root.get(&page).await;
    assert!(!after.body.contains("ann@example.com") && after.body.contains("bob@example.com"));
    let again = root.post(&cancel, &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let log = root.get("/admin/log").await;
    assert!(log.body.contains("booking.cancel"));
    assert!(
        log.body.contains("booking of ann@example.com"),
        "{}",
        log.body
    );
    assert_eq!(admin_actions(&app).await, 1);
}

// example-app:end
#[tokio::test]
async fn an_accounts_sessions_and_tokens_are_listed_without_secrets_and_revoked_one_or_all() {
    let app = TestApp::new().await;
    let mut root = superuser(&app).await;
    app.account("member@example.com", true).await;
    let tokens = [
        app.api_token("member@example.com", PASSWORD).await,
        app.api_token("member@example.com", PASSWORD).await,
    ];
    let mut laptop = signed_in(&app, "member@example.com").await;
    let mut phone = signed_in(&app, "member@example.com").await;
    let id = find_user(&app, "member@example.com").await.id;
    let sessions_sql = "select count(*) from sessions where user_id = $1";
    let tokens_sql = "select count(*) from api_tokens where user_id = $1";
    let page = format!("/admin/users/{id}");

    let shown = root.get(&page).await;
    let handles = hidden_values(&shown.body, "session");
    let token_ids = hidden_values(&shown.body, "token_id");
    assert_eq!((handles.len(), token_ids.len()), (2, 2), "{}", shown.body);
    for secret in [
        laptop.session_token(),
        phone.session_token(),
        tokens[0].clone(),
        tokens[1].clone(),
    ] {
        assert!(!shown.body.contains(&secret), "a token is on the page");
        let hash = shared::crypto::hash_token(&secret);
        assert!(
            !shown.body.contains(&hash[..16]),
            "a token hash is on the page"
        );
    }

    let reply = root
        .post(
            &format!("{page}/sessions/revoke"),
            &[("session", &handles[0])],
        )
        .await;
    assert_redirect(&reply, &format!("{page}?notice=session_revoked"));
    assert_eq!(count_for(&app, sessions_sql, id).await, 1);
    let still_in = [laptop.get("/account").await, phone.get("/account").await]
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(still_in, 1, "exactly one of the two sessions ended");
    let gone = root
        .post(
            &format!("{page}/sessions/revoke"),
            &[("session", &handles[0])],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    root.get(&page).await;
    let reply = root
        .post(
            &format!("{page}/api-tokens/revoke"),
            &[("token_id", &token_ids[0])],
        )
        .await;
    assert_redirect(&reply, &format!("{page}?notice=token_revoked"));
    assert_eq!(count_for(&app, tokens_sql, id).await, 1);
    let mut working = 0;
    for token in &tokens {
        let me = app.authed(Method::GET, "/api/me", token, None).await;
        working += usize::from(me.status == StatusCode::OK);
    }
    assert_eq!(working, 1, "exactly one of the two tokens was revoked");

    let reply = root.post(&format!("{page}/sign-out"), &[]).await;
    assert_redirect(&reply, &format!("{page}?notice=signed_out"));
    assert_eq!(count_for(&app, sessions_sql, id).await, 0);
    assert_eq!(count_for(&app, tokens_sql, id).await, 0);
    assert!(find_user(&app, "member@example.com").await.is_active);

    let log = root.get("/admin/log").await;
    for action in [
        "user.revoke_session",
        "user.revoke_api_token",
        "user.revoke_all",
    ] {
        assert!(log.body.contains(action), "{action}: {}", log.body);
    }
    assert_eq!(admin_actions(&app).await, 3);
}
