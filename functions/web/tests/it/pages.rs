//! The account pages as a browser uses them: sessions, cookies, CSRF, login limits, the
//! account page; on the database under test.

use crate::common;

use axum::http::StatusCode;
use common::{Browser, PASSWORD, Reply, TestApp, location, token_in};
use shared::crypto;

async fn me_with(app: &TestApp, token: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    app.request(
        axum::http::Method::GET,
        "/api/me",
        &[("authorization", &auth)],
    )
    .await
    .status
}

fn assert_redirect(reply: &Reply, to: &str) {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(location(reply), to);
}

#[tokio::test]
async fn a_visitor_signs_up_verifies_logs_in_and_out_through_the_pages() {
    let app = TestApp::new().await;
    let mut browser = Browser::new(&app);

    let form = browser.get("/signup").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"csrf_token\""), "{}", form.body);
    let done = browser
        .post(
            "/signup",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_redirect(&done, "/signup/sent");
    assert!(
        browser
            .get("/signup/sent")
            .await
            .body
            .contains("Check your inbox")
    );

    // The link in the email leads to a page with a button, which verifies the address.
    let email = app.outbox().await.pop().unwrap();
    assert_eq!(email.kind, "verify_email");
    let link = format!("/verify-email?token={}", token_in(&email));
    assert!(email.body_text.contains(&link), "{}", email.body_text);
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = token_in(&email);
    let verified = browser.post("/verify-email", &[("token", &token)]).await;
    assert_redirect(&verified, "/login?notice=verified");
    assert!(
        browser
            .get("/login?notice=verified")
            .await
            .body
            .contains("Your address is verified")
    );

    // Login gives a new session token and opens the account page.
    let anonymous = browser.session_token();
    let login = browser.log_in("ada@example.com", PASSWORD).await;
    assert_redirect(&login, "/account");
    let session = browser.session_token();
    assert_ne!(session, anonymous, "a new session id at login");
    let page = browser.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("ada@example.com") && page.body.contains("verified"));
    assert_eq!(app.count("select count(*) from sessions").await, 1);

    // Logout deletes the session on the server: the old cookie no longer opens anything.
    let out = browser.post("/logout", &[]).await;
    assert_redirect(&out, "/login?notice=logged-out");
    assert_ne!(browser.session_token(), session);
    assert_eq!(app.count("select count(*) from sessions").await, 0);
    browser.cookie = Some(format!("sid={session}"));
    let page = browser.get("/account").await;
    assert_redirect(&page, "/login?next=%2Faccount");
}

#[tokio::test]
async fn the_session_lives_in_the_database_hashed_and_expires() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    let token = browser.session_token();
    let hash = crypto::hash_token(&token);
    let mut conn = app.database().acquire().await.unwrap();
    let stored: Vec<String> = shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar("select token_hash from sessions")
            .fetch_all(&mut *c)
            .await
    })
    .unwrap();
    drop(conn);
    assert_eq!(
        stored,
        vec![hash],
        "only the SHA-256 of the cookie is stored"
    );

    app.set_time(
        "update sessions set expires_at = $1",
        chrono::Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;
    assert_redirect(&browser.get("/account").await, "/login?next=%2Faccount");
}

#[tokio::test]
async fn a_session_slides_with_use_but_ends_at_its_absolute_lifetime() {
    use shared::services::sessions::{SESSION_MAX_AGE, SESSION_TTL};
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    let expires_at = || async {
        let mut conn = app.database().acquire().await.unwrap();
        shared::on_conn!(&mut conn, |c| {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "select expires_at from sessions",
            )
            .fetch_one(&mut *c)
            .await
        })
        .unwrap()
    };
    let now = shared::clock::now();
    let soon = now + chrono::TimeDelta::hours(1);

    // Ten days old and about to expire: a page view slides it a whole idle period on.
    app.set_time(
        "update sessions set created_at = $1",
        now - chrono::TimeDelta::days(10),
    )
    .await;
    app.set_time("update sessions set expires_at = $1", soon)
        .await;
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
    assert!(expires_at().await > now + SESSION_TTL - chrono::TimeDelta::minutes(1));

    // Used every day since its login: close to the absolute lifetime it is no longer extended
    // past it...
    let created = now - SESSION_MAX_AGE + chrono::TimeDelta::hours(2);
    app.set_time("update sessions set created_at = $1", created)
        .await;
    app.set_time("update sessions set expires_at = $1", soon)
        .await;
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
    assert_eq!(expires_at().await, soon, "not extended");

    // ...and past it, it is over whatever its expiry says.
    app.set_time(
        "update sessions set created_at = $1",
        now - SESSION_MAX_AGE - chrono::TimeDelta::minutes(1),
    )
    .await;
    app.set_time("update sessions set expires_at = $1", now + SESSION_TTL)
        .await;
    assert_redirect(&browser.get("/account").await, "/login?next=%2Faccount");
}

#[tokio::test]
async fn the_cookie_is_httponly_lax_and_host_prefixed_and_secure_over_https() {
    let app = TestApp::new().await;
    let local = app.get("/login").await;
    let cookie = local.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sid="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain-HTTP localhost: {cookie}");

    let https = TestApp::production().await;
    let reply = https
        .request(
            axum::http::Method::GET,
            "/login",
            &[("host", "app.example.com"), ("x-forwarded-proto", "https")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-sid="), "{cookie}");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(reply.headers["cache-control"], "private, no-cache");
}

#[tokio::test]
async fn forms_without_the_right_token_or_from_another_origin_get_403_and_change_nothing() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.get("/login").await;
    let good = browser.csrf.clone().unwrap();
    let mut other = Browser::new(&app);
    other.get("/login").await;
    let foreign = other.csrf.clone().unwrap();
    assert_ne!(good, foreign);
    // Ada's token with its last digit changed.
    let tampered = format!(
        "{}{}",
        &good[..63],
        if good.ends_with('0') { '1' } else { '0' }
    );

    let with = |token: &str| -> Vec<(String, String)> {
        vec![
            ("email".into(), "ada@example.com".into()),
            ("password".into(), PASSWORD.into()),
            ("csrf_token".into(), token.into()),
        ]
    };
    let ours = vec![("origin", "http://localhost")];
    type Fields = Vec<(String, String)>;
    type Headers<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Fields, Headers)> = vec![
        ("no token", with(&good)[..2].to_vec(), ours.clone()),
        ("a malformed token", with("00ff"), ours.clone()),
        ("a tampered token", with(&tampered), ours.clone()),
        ("another browser's token", with(&foreign), ours.clone()),
        (
            "a foreign origin",
            with(&good),
            vec![("origin", "https://evil.example")],
        ),
        (
            "a look-alike origin",
            with(&good),
            vec![("origin", "http://localhost.evil.example")],
        ),
        (
            "the https variant",
            with(&good),
            vec![("origin", "https://localhost")],
        ),
        ("Origin: null", with(&good), vec![("origin", "null")]),
        ("neither Origin nor Referer", with(&good), vec![]),
        (
            "a foreign Referer",
            with(&good),
            vec![("referer", "https://evil.example/login")],
        ),
    ];
    for (case, fields, headers) in cases {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let reply = browser.post_raw("/login", &fields, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{case}: {}",
            reply.body
        );
        assert!(reply.body.contains("403"), "{case}: an HTML error page");
        assert_eq!(
            app.count("select count(*) from sessions").await,
            0,
            "{case}"
        );
    }

    // No cookie at all (a cross-site form in a browser that blocks our cookie).
    let mut cookieless = Browser::new(&app);
    let fields = [
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("csrf_token", good.as_str()),
    ];
    let reply = cookieless
        .post_raw("/login", &fields, &[("origin", "http://localhost")])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // The right token from our origin, from SITE_URL's, or with only a Referer of ours, works.
    for (case, headers) in [
        ("own origin", vec![("origin", "http://localhost")]),
        ("SITE_URL", vec![("origin", "http://127.0.0.1:3000")]),
        ("referer", vec![("referer", "http://localhost/login")]),
    ] {
        let mut browser = Browser::new(&app);
        browser.get("/login").await;
        let token = browser.csrf.clone().unwrap();
        let fields = [
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf_token", token.as_str()),
        ];
        let reply = browser.post_raw("/login", &fields, &headers).await;
        assert_redirect(&reply, "/account");
        assert!(reply.status.is_redirection(), "{case}");
    }
}

#[tokio::test]
async fn the_api_is_not_subject_to_the_form_checks_and_never_reads_the_cookie() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    let cookie = browser.cookie.clone().unwrap();
    let reply = app
        .request(axum::http::Method::GET, "/api/me", &[("cookie", &cookie)])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_login_form_error_keeps_the_email_and_the_limit_answers_429_with_retry_after() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.get("/login").await;
    for _ in 0..shared::services::accounts::LOGIN_FAILURES_PER_ACCOUNT {
        let reply = browser
            .post(
                "/login",
                &[("email", "ada@example.com"), ("password", "wrong password")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("do not match an account"));
        assert!(reply.body.contains("value=\"ada@example.com\""));
        assert!(
            !reply.body.contains("wrong password"),
            "the password is never echoed"
        );
    }
    let limited = browser
        .post(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(limited.body.contains("Too many failed attempts"));
    assert_eq!(app.count("select count(*) from sessions").await, 0);

    // The same limit covers the API: the two share one counter per account.
    let api = app
        .post_json(
            "/api/auth/token",
            serde_json::json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_account_page_needs_a_session_and_login_returns_only_to_local_pages() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    assert_redirect(&browser.get("/account").await, "/login?next=%2Faccount");

    let form = browser
        .get("/login?next=%2Faccount%3Fnotice%3Dverified")
        .await;
    // (minijinja escapes `/` in attributes.)
    assert!(
        form.body
            .contains("name=\"next\" value=\"&#x2f;account?notice=verified\""),
        "{}",
        form.body
    );
    for (next, to) in [
        ("/account?notice=verified", "/account?notice=verified"),
        ("https://evil.example/", "/account"),
        ("//evil.example", "/account"),
    ] {
        let mut browser = Browser::new(&app);
        browser.get("/login").await;
        let reply = browser
            .post(
                "/login",
                &[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_redirect(&reply, to);
    }
}

#[tokio::test]
async fn an_unverified_user_can_log_in_is_told_to_verify_and_can_ask_for_a_new_link() {
    let app = TestApp::new().await;
    app.account("ada@example.com", false).await;
    let mut browser = Browser::new(&app);
    assert_redirect(
        &browser.log_in("ada@example.com", PASSWORD).await,
        "/account",
    );
    let page = browser.get("/account").await;
    assert!(
        page.body.contains("Please verify your address"),
        "{}",
        page.body
    );
    // example-app:begin
    assert!(page.body.contains("cannot book classes"));
    // example-app:end

    // The signup email is recent, so the resend waits its five minutes...
    app.set_time(
        "update emails set created_at = $1",
        chrono::Utc::now() - chrono::TimeDelta::minutes(6),
    )
    .await;
    let reply = browser.post("/account/verification", &[]).await;
    assert_redirect(&reply, "/account?notice=verification-sent");
    let emails = app.outbox().await;
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[1].kind, "verify_email");
    // Right after, the page says a link went out recently instead of pretending to send one.
    let again = browser.post("/account/verification", &[]).await;
    assert_redirect(&again, "/account?notice=verification-recent");
    assert_eq!(app.outbox().await.len(), 2);
}

#[tokio::test]
async fn a_password_reset_through_the_pages_signs_out_every_session_and_token() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut elsewhere = Browser::new(&app);
    elsewhere.log_in("ada@example.com", PASSWORD).await;
    let token = app.api_token("ada@example.com", PASSWORD).await;

    let mut browser = Browser::new(&app);
    browser.get("/password-reset").await;
    let reply = browser
        .post("/password-reset", &[("email", "ada@example.com")])
        .await;
    assert_redirect(&reply, "/password-reset/sent");
    let unknown = browser
        .post("/password-reset", &[("email", "nobody@example.com")])
        .await;
    assert_redirect(&unknown, "/password-reset/sent");
    assert_eq!(
        unknown.body, reply.body,
        "the same answer for an unknown address"
    );
    let email = app.outbox().await.pop().unwrap();
    assert_eq!(email.kind, "password_reset");
    let reset_token = token_in(&email);
    let link = format!("/password-reset/confirm?token={reset_token}");
    assert!(email.body_text.contains(&link));
    assert_eq!(browser.get(&link).await.status, StatusCode::OK);

    let weak = browser
        .post(
            "/password-reset/confirm",
            &[("token", &reset_token), ("password", "password")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("most common"), "{}", weak.body);

    let done = browser
        .post(
            "/password-reset/confirm",
            &[
                ("token", &reset_token),
                ("password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_redirect(&done, "/login?notice=password-reset");
    assert_eq!(app.count("select count(*) from sessions").await, 0);
    assert_eq!(me_with(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_redirect(&elsewhere.get("/account").await, "/login?next=%2Faccount");

    // The used link says so when it opens; posting it anyway is refused the same way.
    let dead = browser.get(&link).await;
    assert_eq!(dead.status, StatusCode::BAD_REQUEST, "a used link");
    assert!(
        dead.body.contains("This link cannot be used"),
        "{}",
        dead.body
    );
    browser.get("/password-reset").await; // this browser's new CSRF token
    let again = browser
        .post(
            "/password-reset/confirm",
            &[
                ("token", &reset_token),
                ("password", "another new passphrase"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "a used link");
    assert_redirect(
        &browser
            .log_in("ada@example.com", "a brand new passphrase")
            .await,
        "/account",
    );
}

#[tokio::test]
async fn changing_the_password_on_the_account_page_keeps_this_session_only() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut elsewhere = Browser::new(&app);
    elsewhere.log_in("ada@example.com", PASSWORD).await;
    let token = app.api_token("ada@example.com", PASSWORD).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    browser.get("/account").await;

    let wrong = browser
        .post(
            "/account/password",
            &[
                ("current_password", "not it"),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("not your current password"));
    assert_eq!(app.count("select count(*) from sessions").await, 2);

    let done = browser
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_redirect(&done, "/account?notice=password-changed");
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
    assert_redirect(&elsewhere.get("/account").await, "/login?next=%2Faccount");
    assert_eq!(me_with(&app, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_tokens_are_created_shown_once_listed_and_revoked_on_the_account_page() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    app.account("bob@example.com", true).await;
    let bobs = app.api_token("bob@example.com", PASSWORD).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    browser.get("/account").await;

    let created = browser.post("/account/tokens", &[("name", "laptop")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    let marker = "id=\"new-token\"";
    let at = created.body.find(marker).expect("the new token is shown");
    let start = at + created.body[at..].find('>').unwrap() + 1;
    let token = created.body[start..start + 64].to_owned();
    assert_eq!(me_with(&app, &token).await, StatusCode::OK);

    let page = browser.get("/account").await;
    assert!(page.body.contains("laptop"));
    assert!(!page.body.contains(&token), "shown only once");

    let unnamed = browser.post("/account/tokens", &[("name", " ")]).await;
    assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unnamed.body.contains("enter a name"));
    let long = "x".repeat(101);
    let too_long = browser.post("/account/tokens", &[("name", &long)]).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Bob's token cannot be revoked from Ada's account.
    let mut conn = app.database().acquire().await.unwrap();
    let ids: Vec<(uuid::Uuid, String)> = shared::on_conn!(&mut conn, |c| {
        sqlx::query_as("select id, name from api_tokens order by created_at")
            .fetch_all(&mut *c)
            .await
    })
    .unwrap();
    drop(conn);
    let bobs_id = ids[0].0;
    let adas_id = ids.iter().find(|(_, name)| name == "laptop").unwrap().0;
    let refused = browser
        .post(&format!("/account/tokens/{bobs_id}/revoke"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(me_with(&app, &bobs).await, StatusCode::OK);

    let revoked = browser
        .post(&format!("/account/tokens/{adas_id}/revoke"), &[])
        .await;
    assert_redirect(&revoked, "/account?notice=token-revoked");
    assert_eq!(me_with(&app, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signup_form_errors_come_back_with_422_field_messages_and_the_email_kept() {
    let app = TestApp::new().await;
    let mut browser = Browser::new(&app);
    browser.get("/signup").await;
    let reply = browser
        .post(
            "/signup",
            &[("email", "ada@example.com"), ("password", "short")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("value=\"ada@example.com\""));
    assert!(reply.body.contains("aria-invalid=\"true\""));
    assert!(
        reply.body.contains("at least 8 characters"),
        "{}",
        reply.body
    );
    assert!(app.outbox().await.is_empty());

    let empty = browser.post("/signup", &[]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_verification_or_reset_link_without_a_token_is_a_clear_400() {
    let app = TestApp::new().await;
    for path in ["/verify-email", "/password-reset/confirm"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.body.contains("no token"), "{path}: {}", reply.body);
    }
}

#[tokio::test]
async fn error_pages_show_the_logged_in_navigation() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    let missing = browser.get("/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("ada@example.com"), "{}", missing.body);
    assert!(missing.body.contains("action=\"/logout\""));
    let anonymous = Browser::new(&app).get("/no-such-page").await;
    assert!(anonymous.body.contains("href=\"/login\""));
}

#[tokio::test]
async fn logging_in_over_a_session_ends_the_old_one() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    app.account("bob@example.com", true).await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    browser.log_in("bob@example.com", PASSWORD).await;
    assert_eq!(app.count("select count(*) from sessions").await, 1);
    assert!(
        browser
            .get("/account")
            .await
            .body
            .contains("bob@example.com")
    );
}

/// A reset link as the email has it, for `email`.
async fn reset_link(app: &TestApp, email: &str) -> String {
    let mut browser = Browser::new(app);
    browser.get("/password-reset").await;
    browser.post("/password-reset", &[("email", email)]).await;
    let sent = app.outbox().await.pop().unwrap();
    assert_eq!(sent.kind, "password_reset");
    format!("/password-reset/confirm?token={}", token_in(&sent))
}

#[tokio::test]
async fn every_page_shows_a_signed_in_user_their_navigation() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let live = reset_link(&app, "ada@example.com").await;
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    for path in [
        "/",
        // example-app:begin
        "/classes",
        "/bookings",
        // example-app:end
        "/account",
        "/_dev/mail",
        "/signup/sent",
        "/password-reset/sent",
        live.as_str(),
        "/password-reset/confirm?token=no-such-token",
        "/verify-email?token=no-such-token",
        "/no-such-page",
    ] {
        let page = browser.get(path).await;
        assert!(
            page.content_type().starts_with("text/html"),
            "{path}: {}",
            page.status
        );
        assert!(
            page.body.contains("ada@example.com") && page.body.contains("action=\"/logout\""),
            "{path} does not show the signed-in navigation: {}",
            page.body
        );
        assert!(
            !page.body.contains("href=\"/signup\""),
            "{path} offers a signed-in user to sign up: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn a_dead_reset_link_says_so_before_a_password_is_typed() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    app.account("bob@example.com", true).await;
    let live = reset_link(&app, "ada@example.com").await;
    let page = app.get(&live).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    // Opening the link does not use it.
    assert_eq!(app.get(&live).await.status, StatusCode::OK);

    let used = reset_link(&app, "ada@example.com").await;
    let token = used.split("token=").nth(1).unwrap().to_owned();
    let mut browser = Browser::new(&app);
    browser.get(&used).await;
    let done = browser
        .post(
            "/password-reset/confirm",
            &[("token", &token), ("password", "a brand new passphrase")],
        )
        .await;
    assert_redirect(&done, "/login?notice=password-reset");

    let expired = reset_link(&app, "bob@example.com").await;
    app.set_time(
        "update email_tokens set expires_at = $1 where used_at is null",
        chrono::Utc::now() - chrono::TimeDelta::seconds(1),
    )
    .await;

    for (what, link) in [
        (
            "unknown",
            "/password-reset/confirm?token=no-such-token".to_owned(),
        ),
        ("used", used),
        ("expired", expired),
        ("once live, now ended by the reset", live),
    ] {
        let page = app.get(&link).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            page.body
        );
        assert!(
            page.body.contains("This link cannot be used"),
            "{what}: {}",
            page.body
        );
        assert!(
            page.body.contains("href=\"&#x2f;password-reset\"")
                && page.body.contains("Ask for a new link"),
            "{what}: a way to a new link: {}",
            page.body
        );
        assert!(
            !page.body.contains("name=\"password\""),
            "{what}: no form to type a password into: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn login_and_password_reset_send_a_signed_in_user_to_the_account_as_signup_does() {
    let app = TestApp::new().await;
    app.account("ada@example.com", true).await;
    let mut anonymous = Browser::new(&app);
    for path in ["/login", "/password-reset", "/signup"] {
        assert_eq!(anonymous.get(path).await.status, StatusCode::OK, "{path}");
    }
    let mut browser = Browser::new(&app);
    browser.log_in("ada@example.com", PASSWORD).await;
    for (path, to) in [
        ("/signup", "/account"),
        ("/login", "/account"),
        ("/password-reset", "/account"),
        (
            "/login?next=%2Fadmin%2Fusers%3Fpage%3D2",
            "/admin/users?page=2",
        ),
        // example-app:begin
        ("/login?next=%2Fbookings", "/bookings"),
        ("/login?next=%2Fclasses%3Fpage%3D2", "/classes?page=2"),
        // example-app:end
        ("/login?next=%2F%2Fevil.example", "/account"),
        ("/login?next=https%3A%2F%2Fevil.example%2F", "/account"),
        ("/login?next=%2Flogin", "/account"),
        ("/login?next=%2Flogin%3Fnext%3D%252Flogin", "/account"),
    ] {
        let reply = browser.get(path).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            reply.body
        );
        assert_eq!(location(&reply), to, "{path}");
    }
}

#[tokio::test]
async fn the_development_mailbox_counts_one_email_in_the_singular() {
    let app = TestApp::new().await;
    app.account("ada@example.com", false).await;
    let emails = app.outbox().await.len();
    let page = app.get("/_dev/mail").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(emails, 1, "one email in the outbox");
    assert!(!page.body.contains("1 emails"), "{}", page.body);
    assert!(
        page.body.contains("The one email in the outbox."),
        "{}",
        page.body
    );
}
