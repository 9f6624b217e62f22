//! The accounts JSON API: sign-up with email verification and API tokens, on the database
//! under test.

use crate::common;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use common::{Reply, TestApp, token_in};
use shared::store::emails::EmailRow;

async fn signed_up(app: &TestApp, email: &str, password: &str) -> Reply {
    app.post_json(
        "/api/auth/signup",
        serde_json::json!({"email": email, "password": password}),
    )
    .await
}

#[tokio::test]
async fn signup_sends_a_verification_link_built_from_site_url_that_works_once() {
    let app = TestApp::new().await;
    let reply = signed_up(&app, "Ada@Example.com", "correct horse battery").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);

    let rows = app.outbox().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].kind.as_str(), rows[0].to_address.as_str()),
        ("verify_email", "ada@example.com")
    );
    assert!(
        rows[0]
            .body_text
            .contains("http://127.0.0.1:3000/verify-email?token="),
        "{}",
        rows[0].body_text
    );
    assert!(!app.drain_queued().is_empty(), "the worker was told");

    let token = token_in(&rows[0]);
    let verified = app
        .post_json("/api/auth/verify", serde_json::json!({"token": token}))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.json()["is_verified"], true);
    assert_eq!(verified.json()["email"], "ada@example.com");

    let again = app
        .post_json("/api/auth/verify", serde_json::json!({"token": token}))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "single use");
    assert_eq!(again.json()["error"]["code"], "bad_request");
}

#[tokio::test]
async fn an_expired_verification_token_is_refused() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let token = token_in(&app.outbox().await[0]);
    // Time is moved, not slept: the token's expiry is set in the past.
    let past = shared::clock::now() - chrono::TimeDelta::seconds(1);
    app.set_time("update email_tokens set expires_at = $1", past)
        .await;
    let reply = app
        .post_json("/api/auth/verify", serde_json::json!({"token": token}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn signup_answers_the_same_for_a_registered_address_and_emails_its_owner() {
    let app = TestApp::new().await;
    let first = signed_up(&app, "ada@example.com", "correct horse battery").await;
    // Again within the hour, unverified: the verification email already sent is the answer.
    let again = signed_up(&app, "ada@example.com", "correct horse battery").await;
    assert_eq!(again.status, first.status);
    assert_eq!(
        app.outbox().await.len(),
        1,
        "a double submit sends one email"
    );
    // An hour later (the account's time is moved, not slept), the owner is told.
    let earlier = shared::clock::now() - chrono::TimeDelta::minutes(61);
    app.set_time("update users set created_at = $1", earlier)
        .await;
    let second = signed_up(&app, "ADA@example.com", "another passphrase").await;
    assert_eq!(second.status, first.status);
    assert_eq!(second.body, first.body, "no account enumeration");
    let kinds: Vec<String> = app
        .outbox()
        .await
        .into_iter()
        .map(|r| r.kind.to_string())
        .collect();
    assert_eq!(kinds, ["verify_email", "account_exists"]);
    // At most one such email an hour.
    signed_up(&app, "ada@example.com", "a third passphrase").await;
    assert_eq!(app.outbox().await.len(), 2);
}

#[tokio::test]
async fn signup_refuses_bad_fields_with_422_and_field_messages() {
    let app = TestApp::new().await;
    let cases = [
        ("not-an-email", "correct horse battery", "email"),
        ("ada@example.com", "short", "password"),
        ("ada@example.com", "password1", "password"),
        (
            "ada.lovelace@example.com",
            "ada.lovelace@example.com",
            "password",
        ),
    ];
    for (email, password, field) in cases {
        let reply = signed_up(&app, email, password).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email}/{password}"
        );
        let json = reply.json();
        assert_eq!(json["error"]["code"], "invalid");
        assert!(
            json["error"]["fields"][field].is_string(),
            "{email}/{password}: {json}"
        );
    }
    let malformed = app
        .send(
            Method::POST,
            "/api/auth/signup",
            &[("content-type", "application/json")],
            Body::from("{"),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["error"]["code"], "bad_request");
    assert!(app.outbox().await.is_empty());
}

#[tokio::test]
async fn fifty_concurrent_signups_with_one_address_make_one_user_and_one_verification_email() {
    let app = TestApp::new().await;
    // Polled together, as concurrent requests are.
    let replies = futures_util::future::join_all(
        (0..50).map(|_| signed_up(&app, "ada@example.com", "correct horse battery")),
    )
    .await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::ACCEPTED),
        "no 5xx"
    );
    let rows = app.outbox().await;
    let verifications = rows.iter().filter(|r| r.kind == "verify_email").count();
    assert_eq!(verifications, 1, "{}", shared::testing::backend());
    let db = &app.db.as_ref().unwrap().db;
    let mut conn = db.acquire().await.unwrap();
    assert_eq!(
        shared::store::users::count_users(&mut conn).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn tokens_authenticate_with_bearer_or_token_and_can_be_revoked() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;

    let wrong = app
        .post_json(
            "/api/auth/token",
            serde_json::json!({"email": "ada@example.com", "password": "wrong password"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/auth/token",
            serde_json::json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body, "no account enumeration");

    let issued = app
        .post_json(
            "/api/auth/token",
            serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let token = issued.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64, "256 random bits, hex");

    for scheme in ["Bearer", "Token"] {
        let auth = format!("{scheme} {token}");
        let me = app
            .request(Method::GET, "/api/me", &[("authorization", &auth)])
            .await;
        assert_eq!(me.status, StatusCode::OK, "{scheme}");
        let json = me.json();
        assert_eq!(json["email"], "ada@example.com");
        assert_eq!(
            (
                json["is_verified"].as_bool(),
                json["is_staff"].as_bool(),
                json["is_superuser"].as_bool()
            ),
            (Some(false), Some(false), Some(false))
        );
        assert!(json["id"].is_string());
    }

    // Stored hashed: the token itself is nowhere in the database.
    let db = &app.db.as_ref().unwrap().db;
    let mut conn = db.acquire().await.unwrap();
    let (stored, used): (String, Option<chrono::DateTime<chrono::Utc>>) =
        shared::on_conn!(&mut conn, |c| {
            sqlx::query_as("select token_hash, last_used_at from api_tokens")
                .fetch_one(&mut *c)
                .await
        })
        .unwrap();
    drop(conn);
    assert_ne!(stored, token);
    assert!(used.is_some(), "last_used_at recorded");

    let auth = format!("Bearer {token}");
    let revoked = app
        .request(
            Method::DELETE,
            "/api/auth/token",
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = app
        .request(Method::GET, "/api/me", &[("authorization", &auth)])
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(after.json()["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn the_api_never_authenticates_by_cookie_or_a_malformed_header() {
    let app = TestApp::new().await;
    for headers in [
        vec![],
        vec![("cookie", "session=abc")],
        vec![("authorization", "Basic YWRhOnB3")],
        vec![("authorization", "Bearer not-a-token")],
    ] {
        let reply = app.request(Method::GET, "/api/me", &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{headers:?}");
    }
    let unknown = format!("Bearer {}", "0".repeat(64));
    let reply = app
        .request(Method::GET, "/api/me", &[("authorization", &unknown)])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stored_password_hashes_are_argon2id_at_owasp_parameters() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let db = &app.db.as_ref().unwrap().db;
    let mut conn = db.acquire().await.unwrap();
    let email = shared::domain::EmailAddress::parse("ada@example.com").unwrap();
    let user = shared::store::users::find_user_by_email(&mut conn, &email)
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash
            .unwrap()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
}

async fn token_for(app: &TestApp, email: &str, password: &str) -> Reply {
    app.post_json(
        "/api/auth/token",
        serde_json::json!({"email": email, "password": password}),
    )
    .await
}

async fn move_throttle_windows_back(app: &TestApp, by: chrono::TimeDelta) {
    let started = shared::clock::now() - by;
    app.set_time("update auth_throttle set window_started_at = $1", started)
        .await;
}

#[tokio::test]
async fn login_failures_are_limited_per_account_with_retry_after_and_never_for_good() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let limit = shared::services::accounts::LOGIN_FAILURES_PER_ACCOUNT;
    for attempt in 1..=limit {
        let reply = token_for(&app, "ada@example.com", "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Locked for now, even with the right password.
    let locked = token_for(&app, "ADA@example.com", "correct horse battery").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.json()["error"]["code"], "too_many_requests");
    let retry_after: i64 = locked.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");

    // Once the window has passed (time moved, not slept), the account works again.
    move_throttle_windows_back(&app, shared::services::accounts::LOGIN_WINDOW).await;
    let again = token_for(&app, "ada@example.com", "correct horse battery").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

#[tokio::test]
async fn login_failures_are_limited_per_client_address_across_accounts() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let limit = shared::services::accounts::LOGIN_FAILURES_PER_CLIENT;
    // In process there is no peer address: every request comes from "unknown".
    let db = &app.db.as_ref().unwrap().db;
    let mut conn = db.acquire().await.unwrap();
    let now = shared::clock::now();
    for _ in 0..limit {
        shared::store::throttle::record_failure(
            &mut conn,
            "ip:unknown",
            now,
            now - chrono::TimeDelta::minutes(15),
        )
        .await
        .unwrap();
    }
    drop(conn);
    let reply = token_for(&app, "ada@example.com", "correct horse battery").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_successful_login_clears_the_account_failures() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    for _ in 0..3 {
        token_for(&app, "ada@example.com", "wrong password").await;
    }
    assert_eq!(
        token_for(&app, "ada@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
    let db = &app.db.as_ref().unwrap().db;
    let mut conn = db.acquire().await.unwrap();
    let cutoff = shared::clock::now() - chrono::TimeDelta::minutes(15);
    let account =
        shared::store::throttle::current_failures(&mut conn, "account:ada@example.com", cutoff)
            .await
            .unwrap();
    assert_eq!(account, None);
}

async fn reset_requested(app: &TestApp, email: &str) -> Reply {
    app.post_json(
        "/api/auth/password-reset",
        serde_json::json!({"email": email}),
    )
    .await
}

#[tokio::test]
async fn password_reset_answers_the_same_for_unknown_addresses_and_revokes_everything() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let old_token = token_for(&app, "ada@example.com", "correct horse battery")
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let known = reset_requested(&app, "ada@example.com").await;
    let unknown = reset_requested(&app, "nobody@example.com").await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(
        (known.status, known.body.as_str()),
        (unknown.status, unknown.body.as_str())
    );
    let resets: Vec<EmailRow> = app
        .outbox()
        .await
        .into_iter()
        .filter(|r| r.kind == "password_reset")
        .collect();
    assert_eq!(resets.len(), 1, "only the real account gets mail");
    assert!(
        resets[0]
            .body_text
            .contains("http://127.0.0.1:3000/password-reset/confirm?token=")
    );
    let token = token_in(&resets[0]);

    let weak = app
        .post_json(
            "/api/auth/password-reset/confirm",
            serde_json::json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(
        weak.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a weak password does not use up the link"
    );

    let done = app
        .post_json(
            "/api/auth/password-reset/confirm",
            serde_json::json!({"token": token, "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);

    // Signed out everywhere: the old API token is dead; the old password too.
    let me = app
        .request(
            Method::GET,
            "/api/me",
            &[("authorization", &format!("Bearer {old_token}"))],
        )
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        token_for(&app, "ada@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_for(&app, "ada@example.com", "a brand new passphrase")
            .await
            .status,
        StatusCode::CREATED
    );

    let again = app
        .post_json(
            "/api/auth/password-reset/confirm",
            serde_json::json!({"token": token, "password": "yet another passphrase"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "single use");
}

#[tokio::test]
async fn a_reset_link_expires_after_an_hour() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    reset_requested(&app, "ada@example.com").await;
    let row = app
        .outbox()
        .await
        .into_iter()
        .find(|r| r.kind == "password_reset")
        .unwrap();
    let token = token_in(&row);
    // An hour and a second later (time moved, not slept).
    let expired = shared::clock::now() - chrono::TimeDelta::seconds(1);
    app.set_time(
        "update email_tokens set expires_at = $1 where purpose = 'reset_password'",
        expired,
    )
    .await;
    let reply = app
        .post_json(
            "/api/auth/password-reset/confirm",
            serde_json::json!({"token": token, "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let created_at = row.created_at;
    assert!(shared::clock::now() - created_at < chrono::TimeDelta::minutes(1));
}

#[tokio::test]
async fn resend_verification_sends_a_new_link_to_unverified_accounts_at_most_every_five_minutes() {
    let app = TestApp::new().await;
    let resend = |email: &'static str| {
        app.post_json(
            "/api/auth/verify/resend",
            serde_json::json!({"email": email}),
        )
    };
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let verifications = |rows: Vec<EmailRow>| {
        rows.into_iter()
            .filter(|r| r.kind == "verify_email")
            .count()
    };

    // Just sent at sign-up: nothing new yet; the answer is the same for a stranger.
    let soon = resend("ada@example.com").await;
    let stranger = resend("nobody@example.com").await;
    assert_eq!(soon.status, StatusCode::ACCEPTED);
    assert_eq!(soon.body, stranger.body);
    assert_eq!(verifications(app.outbox().await), 1);

    // Five minutes later (time moved on the outbox row), a new link goes out; both work once.
    let earlier = shared::clock::now() - chrono::TimeDelta::minutes(6);
    app.set_time("update emails set created_at = $1", earlier)
        .await;
    resend("ada@example.com").await;
    let rows = app.outbox().await;
    assert_eq!(verifications(rows.clone()), 2);
    let newest = rows.iter().rfind(|r| r.kind == "verify_email").unwrap();
    let verified = app
        .post_json(
            "/api/auth/verify",
            serde_json::json!({"token": token_in(newest)}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK);

    // A verified account gets nothing more.
    app.set_time("update emails set created_at = $1", earlier)
        .await;
    resend("ada@example.com").await;
    assert_eq!(verifications(app.outbox().await), 2);
}

#[tokio::test]
async fn a_hash_with_older_parameters_is_replaced_at_the_next_login() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    // As an older release would have stored it: argon2id with weaker parameters.
    let old = {
        use argon2::password_hash::PasswordHasher as _;
        let params = argon2::Params::new(8192, 1, 1, None).unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string()
    };
    let db = &app.db.as_ref().unwrap().db;
    let email = shared::domain::EmailAddress::parse("ada@example.com").unwrap();
    let mut conn = db.acquire().await.unwrap();
    let user = shared::store::users::find_user_by_email(&mut conn, &email)
        .await
        .unwrap()
        .unwrap();
    shared::store::users::set_password_hash(&mut conn, user.id, &old, shared::clock::now())
        .await
        .unwrap();
    drop(conn);

    assert_eq!(
        token_for(&app, "ada@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
    let mut conn = db.acquire().await.unwrap();
    let user = shared::store::users::find_user_by_email(&mut conn, &email)
        .await
        .unwrap()
        .unwrap();
    let hash = user.password_hash.unwrap();
    assert!(
        hash.starts_with(shared::crypto::CURRENT_HASH_PREFIX),
        "{hash}"
    );
    drop(conn);
    assert_eq!(
        token_for(&app, "ada@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn changing_the_password_keeps_this_token_and_revokes_the_others() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let token = |reply: Reply| reply.json()["token"].as_str().unwrap().to_owned();
    let this = token(token_for(&app, "ada@example.com", "correct horse battery").await);
    let other = token(token_for(&app, "ada@example.com", "correct horse battery").await);
    let change = |current: &'static str, new: &'static str| {
        let auth = format!("Bearer {this}");
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/me/password",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                Body::from(
                    serde_json::json!({"current_password": current, "new_password": new})
                        .to_string(),
                ),
            )
            .await
        }
    };

    let wrong = change("not my password", "a brand new passphrase").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.json()["error"]["fields"]["current_password"].is_string());
    let weak = change("correct horse battery", "password1").await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.json()["error"]["fields"]["new_password"].is_string());

    let done = change("correct horse battery", "a brand new passphrase").await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let me = |token: String| {
        let app = &app;
        async move {
            app.request(
                Method::GET,
                "/api/me",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await
            .status
        }
    };
    assert_eq!(me(this.clone()).await, StatusCode::OK, "this token stays");
    assert_eq!(
        me(other).await,
        StatusCode::UNAUTHORIZED,
        "the others are revoked"
    );
    assert_eq!(
        token_for(&app, "ada@example.com", "a brand new passphrase")
            .await
            .status,
        StatusCode::CREATED
    );

    let anonymous = app
        .send(
            Method::POST,
            "/api/me/password",
            &[("content-type", "application/json")],
            Body::from("{}"),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn guessing_the_current_password_is_limited_like_a_login() {
    let app = TestApp::new().await;
    signed_up(&app, "ada@example.com", "correct horse battery").await;
    let reply = token_for(&app, "ada@example.com", "correct horse battery").await;
    let auth = format!("Bearer {}", reply.json()["token"].as_str().unwrap());
    let change = |current: &'static str| {
        let (app, auth) = (&app, auth.clone());
        async move {
            let body = serde_json::json!({"current_password": current, "new_password": "a brand new passphrase"});
            app.send(
                Method::POST,
                "/api/me/password",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                Body::from(body.to_string()),
            )
            .await
        }
    };
    for _ in 0..shared::services::accounts::LOGIN_FAILURES_PER_ACCOUNT {
        assert_eq!(
            change("a wrong guess").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let limited = change("correct horse battery").await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

/// The tokens of the reset links in the outbox, oldest first.
async fn reset_links(app: &TestApp) -> Vec<String> {
    app.outbox()
        .await
        .iter()
        .filter(|row| row.kind == "password_reset")
        .map(token_in)
        .collect()
}

async fn confirm_reset(app: &TestApp, token: &str, password: &str) -> Reply {
    app.post_json(
        "/api/auth/password-reset/confirm",
        serde_json::json!({"token": token, "password": password}),
    )
    .await
}

#[tokio::test]
async fn every_outstanding_reset_link_dies_when_the_password_changes_or_the_account_is_deactivated()
{
    // Each way the password can change, or the account be closed, with two reset links A and B
    // outstanding: afterwards neither works (an attacker who saw A in the mailbox cannot take
    // the account back).
    let cases = [
        "reset with link B",
        "password changed through the API",
        "password changed on the account page",
        "account deactivated by the admin",
    ];
    for case in cases {
        let app = TestApp::new().await;
        app.account("ada@example.com", true).await;
        reset_requested(&app, "ada@example.com").await;
        reset_requested(&app, "ada@example.com").await;
        let links = reset_links(&app).await;
        let [a, b] = [links[0].clone(), links[1].clone()];
        match case {
            "reset with link B" => {
                let reply = confirm_reset(&app, &b, "a brand new passphrase").await;
                assert_eq!(reply.status, StatusCode::OK, "{case}: {}", reply.body);
            }
            "password changed through the API" => {
                let token = app.api_token("ada@example.com", common::PASSWORD).await;
                let reply = app
                    .authed(
                        Method::POST,
                        "/api/me/password",
                        &token,
                        Some(serde_json::json!({
                            "current_password": common::PASSWORD,
                            "new_password": "a brand new passphrase",
                        })),
                    )
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::NO_CONTENT,
                    "{case}: {}",
                    reply.body
                );
            }
            "password changed on the account page" => {
                let mut browser = common::Browser::new(&app);
                browser.log_in("ada@example.com", common::PASSWORD).await;
                browser.get("/account").await;
                let reply = browser
                    .post(
                        "/account/password",
                        &[
                            ("current_password", common::PASSWORD),
                            ("new_password", "a brand new passphrase"),
                        ],
                    )
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::SEE_OTHER,
                    "{case}: {}",
                    reply.body
                );
            }
            "account deactivated by the admin" => {
                app.staff("root@example.com").await;
                let db = app.database();
                let mut conn = db.acquire().await.unwrap();
                let find = |email: &str| shared::domain::EmailAddress::parse(email).unwrap();
                let root =
                    shared::store::users::find_user_by_email(&mut conn, &find("root@example.com"))
                        .await
                        .unwrap()
                        .unwrap();
                let ada =
                    shared::store::users::find_user_by_email(&mut conn, &find("ada@example.com"))
                        .await
                        .unwrap()
                        .unwrap();
                drop(conn);
                shared::services::admin::deactivate_user(db, &root, ada.id)
                    .await
                    .unwrap();
            }
            _ => unreachable!(),
        }
        for (name, link) in [("A", &a), ("B", &b)] {
            let reply = confirm_reset(&app, link, "the attackers passphrase").await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{case}: link {name} still works: {}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn reset_emails_are_limited_per_address_and_per_client_with_the_same_answer() {
    use shared::services::accounts::{MAIL_REQUESTS_PER_CLIENT, RESET_EMAILS_PER_ADDRESS};
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let first = reset_requested(&app, "ada@example.com").await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // One client asks again and again for one address: a few emails, then none; every answer
    // is the same 202 (a limited request looks like any other).
    for attempt in 2..=30 {
        let reply = reset_requested(&app, "ada@example.com").await;
        assert_eq!(reply.status, first.status, "attempt {attempt}");
        assert_eq!(reply.body, first.body, "attempt {attempt}");
    }
    let sent = reset_links(&app).await.len() as i64;
    assert_eq!(sent, RESET_EMAILS_PER_ADDRESS, "emails for one address");

    // The per-client limit: in process every request comes from "unknown", and it has used
    // its allowance above, so a request for another account sends nothing either.
    const { assert!(30 > MAIL_REQUESTS_PER_CLIENT) };
    app.account("bob@example.com", true).await;
    let reply = reset_requested(&app, "bob@example.com").await;
    assert_eq!((reply.status, &reply.body), (first.status, &first.body));
    let to_bob = app
        .outbox()
        .await
        .iter()
        .filter(|row| row.kind == "password_reset" && row.to_address == "bob@example.com")
        .count();
    assert_eq!(to_bob, 0, "the client is over its limit");

    // The window passes (time moved, not slept): the client may ask again.
    move_throttle_windows_back(&app, shared::services::accounts::LOGIN_WINDOW).await;
    reset_requested(&app, "bob@example.com").await;
    assert_eq!(
        reset_links(&app).await.len() as i64,
        RESET_EMAILS_PER_ADDRESS + 1
    );
}

#[tokio::test]
async fn an_api_token_may_be_given_a_lifetime_and_stops_working_when_it_ends() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let request = |extra: serde_json::Value| {
        let mut body =
            serde_json::json!({"email": "ada@example.com", "password": common::PASSWORD});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        app.post_json("/api/auth/token", body)
    };
    let refusals = [
        (
            serde_json::json!({"expires_in_days": 0}),
            "expires_in_days",
            "zero days",
        ),
        (
            serde_json::json!({"expires_in_days": 366}),
            "expires_in_days",
            "over a year",
        ),
        (
            serde_json::json!({"expires_in_days": -5}),
            "expires_in_days",
            "negative",
        ),
        (
            serde_json::json!({"name": "ci\r\nx"}),
            "name",
            "a line break in the name",
        ),
        (
            serde_json::json!({"name": "ci\u{0}"}),
            "name",
            "a NUL in the name",
        ),
    ];
    for (extra, field, case) in refusals {
        let reply = request(extra).await;
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

    let reply = request(serde_json::json!({"name": "ci", "expires_in_days": 30})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.authed(Method::GET, "/api/me", &token, None)
            .await
            .status,
        StatusCode::OK
    );

    // The account page lists it with its expiry; a token without one says "never".
    let forever = app.api_token("ada@example.com", common::PASSWORD).await;
    let mut browser = common::Browser::new(&app);
    browser.log_in("ada@example.com", common::PASSWORD).await;
    let page = browser.get("/account").await;
    let in_30_days = (chrono::Utc::now() + chrono::TimeDelta::days(30))
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        page.body.contains(&in_30_days),
        "the expiry is shown: {}",
        page.body
    );
    assert!(page.body.contains(">never</td>"), "{}", page.body);

    app.set_time(
        "update api_tokens set expires_at = $1 where name = 'ci'",
        chrono::Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    assert_eq!(
        app.authed(Method::GET, "/api/me", &token, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "an expired token"
    );
    assert_eq!(
        app.authed(Method::GET, "/api/me", &forever, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_account_page_creates_a_token_with_the_chosen_lifetime() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = common::Browser::new(&app);
    browser.log_in("ada@example.com", common::PASSWORD).await;
    browser.get("/account").await;
    let reply = browser
        .post(
            "/account/tokens",
            &[("name", "laptop"), ("expires_in_days", "90")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let in_90_days = (chrono::Utc::now() + chrono::TimeDelta::days(90))
        .format("%Y-%m-%d")
        .to_string();
    assert!(reply.body.contains(&in_90_days), "{}", reply.body);
    let bad = browser
        .post(
            "/account/tokens",
            &[("name", "laptop"), ("expires_in_days", "soon")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("enter between 1 and 365 days"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn a_nul_or_line_break_in_any_account_field_is_refused_cleanly_never_a_500() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let cases = [
        (
            "/api/auth/signup",
            serde_json::json!({"email": "a\u{0}b@example.com", "password": "correct horse battery"}),
            422,
            "sign-up, NUL in the email",
        ),
        (
            "/api/auth/signup",
            serde_json::json!({"email": "ada@example.com\r\nbcc: x@evil.tld", "password": "correct horse battery"}),
            422,
            "sign-up, CRLF in the email",
        ),
        (
            "/api/auth/token",
            serde_json::json!({"email": "ada\u{0}@example.com", "password": "x"}),
            401,
            "token, NUL in the email",
        ),
        (
            "/api/auth/token",
            serde_json::json!({"email": "ada@example.com", "password": "correct\u{0}horse"}),
            401,
            "token, NUL in the password",
        ),
        (
            "/api/auth/password-reset",
            serde_json::json!({"email": "ada\u{0}@example.com"}),
            202,
            "reset, NUL in the email",
        ),
        (
            "/api/auth/verify/resend",
            serde_json::json!({"email": "ada\u{0}@example.com"}),
            202,
            "resend, NUL in the email",
        ),
        (
            "/api/auth/verify",
            serde_json::json!({"token": "ab\u{0}cd"}),
            400,
            "verify, NUL in the token",
        ),
        (
            "/api/auth/password-reset/confirm",
            serde_json::json!({"token": "ab\u{0}cd", "password": "a brand new passphrase"}),
            400,
            "reset confirm, NUL in the token",
        ),
    ];
    for (path, body, status, case) in cases {
        let reply = app.post_json(path, body).await;
        assert_eq!(reply.status.as_u16(), status, "{case}: {}", reply.body);
    }
}
