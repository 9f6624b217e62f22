//! The schema on a real database: SQLite by default, PostgreSQL when `TEST_DATABASE_URL` names
//! a server (`.ci/run` runs this file on both).

// Row tuples read best inline.
#![allow(clippy::type_complexity)]

use chrono::{DateTime, TimeDelta, Utc};
use shared::clock;
use shared::db::Db;
use shared::domain::{EmailAddress, Password};
use shared::error::Error;
use shared::on_conn;
use shared::services::accounts::{self, Ensured};
use shared::store::users::{self, NewUser};
use shared::testing::{TestDb, backend};
use uuid::Uuid;

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

async fn new_user(db: &Db, address: &str) -> shared::domain::User {
    let mut tx = db.begin().await.unwrap();
    let user = users::insert_user(
        &mut tx,
        &NewUser {
            email: email(address),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            is_verified: false,
            is_staff: false,
            is_superuser: false,
        },
        clock::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    user
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_a_second_run_is_a_no_op() {
    let test = TestDb::empty().await;
    assert!(
        test.db.applied_migrations().await.is_err(),
        "no migrations table yet"
    );
    let applied = test.db.migrate().await.unwrap();
    let expected: Vec<i64> = shared::db::MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(applied, expected, "{}: every migration applied", backend());
    assert!(
        test.db.migrate().await.unwrap().is_empty(),
        "second run applies nothing"
    );
}

#[tokio::test]
async fn a_user_round_trips_with_every_field() {
    let test = TestDb::new().await;
    let created = new_user(&test.db, "Ada@Example.com").await;
    let mut conn = test.db.acquire().await.unwrap();
    let by_email = users::find_user_by_email(&mut conn, &email("ada@example.com"))
        .await
        .unwrap()
        .expect("found by email");
    assert_eq!(by_email, created, "{}", backend());
    let by_id = users::find_user_by_id(&mut conn, created.id).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&created));
    assert_eq!(created.email.as_str(), "ada@example.com");
    assert!(created.is_active && !created.is_verified && !created.is_staff);
    assert_eq!(users::count_users(&mut conn).await.unwrap(), 1);
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case_even_in_raw_sql() {
    let test = TestDb::new().await;
    new_user(&test.db, "ada@example.com").await;
    // Bypass the normalising type: the database's lower(email) index still refuses it.
    let mut tx = test.db.begin().await.unwrap();
    let now = clock::now();
    let result = on_conn!(&mut tx, |c| sqlx::query(
        "insert into users (id, email, created_at, updated_at) values ($1, $2, $3, $3)"
    )
    .bind(Uuid::now_v7())
    .bind("ADA@example.com")
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()));
    let err = result.expect_err("duplicate email accepted");
    assert!(shared::error::is_unique_violation(&err), "{err}");
}

#[tokio::test]
async fn every_table_round_trips_its_columns() {
    let test = TestDb::new().await;
    let user = new_user(&test.db, "ada@example.com").await;
    let now = clock::now();
    let later = now + TimeDelta::hours(48);
    let mut tx = test.db.begin().await.unwrap();

    // sessions
    let session: (String, Uuid, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) = on_conn!(&mut tx, |c| {
        sqlx::query_as(
            "insert into sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             values ($1, $2, $3, $3, $4) returning token_hash, user_id, created_at, last_seen_at, expires_at",
        )
        .bind("session-hash")
        .bind(user.id)
        .bind(now)
        .bind(later)
        .fetch_one(&mut *c)
        .await
    })
    .unwrap();
    assert_eq!(session, ("session-hash".into(), user.id, now, now, later));

    // api_tokens
    let token_id = Uuid::now_v7();
    let token: (
        Uuid,
        Uuid,
        String,
        String,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    ) = on_conn!(&mut tx, |c| {
        sqlx::query_as(
            "insert into api_tokens (id, user_id, token_hash, name, created_at, last_used_at) \
                 values ($1, $2, $3, $4, $5, $5) \
                 returning id, user_id, token_hash, name, last_used_at, expires_at",
        )
        .bind(token_id)
        .bind(user.id)
        .bind("token-hash")
        .bind("laptop")
        .bind(now)
        .fetch_one(&mut *c)
        .await
    })
    .unwrap();
    assert_eq!(
        token,
        (
            token_id,
            user.id,
            "token-hash".into(),
            "laptop".into(),
            Some(now),
            None
        )
    );

    // email_tokens, and the purpose check constraint
    let purpose: (String, Option<DateTime<Utc>>) = on_conn!(&mut tx, |c| {
        sqlx::query_as(
            "insert into email_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             values ($1, $2, $3, $4, $5) returning purpose, used_at",
        )
        .bind("email-token-hash")
        .bind(user.id)
        .bind("verify_email")
        .bind(now)
        .bind(later)
        .fetch_one(&mut *c)
        .await
    })
    .unwrap();
    assert_eq!(purpose, ("verify_email".into(), None));

    // emails (the outbox)
    let email_id = Uuid::now_v7();
    let outbox: (Uuid, String, Option<Uuid>, String, Option<String>, String, i32, Option<String>) =
        on_conn!(&mut tx, |c| {
            sqlx::query_as(
                "insert into emails (id, kind, user_id, to_address, subject, body_text, body_html, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 returning id, kind, user_id, to_address, body_html, status, attempts, provider_message_id",
            )
            .bind(email_id)
            .bind("verify_email")
            .bind(user.id)
            .bind("ada@example.com")
            .bind("Verify your email")
            .bind("Click the link")
            .bind(Some("<p>Click the link</p>"))
            .bind(now)
            .fetch_one(&mut *c)
            .await
        })
        .unwrap();
    assert_eq!(
        outbox,
        (
            email_id,
            "verify_email".into(),
            Some(user.id),
            "ada@example.com".into(),
            Some("<p>Click the link</p>".into()),
            "pending".into(),
            0,
            None
        )
    );
    tx.commit().await.unwrap();

    // Check constraints hold on both backends.
    let mut tx = test.db.begin().await.unwrap();
    let bad_status = on_conn!(&mut tx, |c| {
        sqlx::query("update emails set status = 'lost' where id = $1")
            .bind(email_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
    });
    assert!(
        bad_status.is_err(),
        "{}: unknown status accepted",
        backend()
    );
}

#[tokio::test]
async fn deleting_a_user_removes_their_sessions_and_keeps_their_emails() {
    let test = TestDb::new().await;
    let user = new_user(&test.db, "ada@example.com").await;
    let now = clock::now();
    let mut tx = test.db.begin().await.unwrap();
    on_conn!(&mut tx, |c| {
        sqlx::query(
            "insert into sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             values ('s', $1, $2, $2, $2)",
        )
        .bind(user.id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
    })
    .unwrap();
    on_conn!(&mut tx, |c| {
        sqlx::query(
            "insert into emails (id, kind, user_id, to_address, subject, body_text, created_at, \
             updated_at) values ($1, 'welcome', $2, 'ada@example.com', 's', 'b', $3, $3)",
        )
        .bind(Uuid::now_v7())
        .bind(user.id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
    })
    .unwrap();
    on_conn!(&mut tx, |c| {
        sqlx::query("delete from users where id = $1")
            .bind(user.id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
    })
    .unwrap();
    let counts: (i64, i64) = on_conn!(&mut tx, |c| {
        sqlx::query_as(
            "select (select count(*) from sessions), (select count(*) from emails where user_id is null)",
        )
        .fetch_one(&mut *c)
        .await
    })
    .unwrap();
    assert_eq!(counts, (0, 1), "{}: foreign keys enforced", backend());
}

#[tokio::test]
async fn create_superuser_refuses_an_existing_email_with_a_conflict() {
    let test = TestDb::new().await;
    let password = Password::parse("a long passphrase", None).unwrap();
    let user = accounts::create_superuser(&test.db, &email("admin@example.com"), &password)
        .await
        .unwrap();
    assert!(user.is_superuser && user.is_staff && user.is_verified && user.is_active);
    let err = accounts::create_superuser(&test.db, &email("ADMIN@example.com"), &password)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("already exists")),
        "{err:?}"
    );
}

#[tokio::test]
async fn ensure_superuser_is_idempotent_and_takes_over_an_ordinary_account() {
    let test = TestDb::new().await;
    let password = Password::parse("a long passphrase", None).unwrap();
    let admin = email("admin@example.com");
    assert_eq!(
        accounts::ensure_superuser(&test.db, &admin, &password)
            .await
            .unwrap(),
        Ensured::Created
    );
    let mut conn = test.db.acquire().await.unwrap();
    let created = users::find_user_by_email(&mut conn, &admin)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    assert_eq!(
        accounts::ensure_superuser(&test.db, &admin, &password)
            .await
            .unwrap(),
        Ensured::AlreadyExisted
    );

    // Someone signed up with the admin's address first: the deploy takes the account over.
    let squatter = new_user(&test.db, "ops@example.com").await;
    let mut tx = test.db.begin().await.unwrap();
    shared::store::tokens::insert_api_token(
        &mut tx,
        "squatter-token",
        squatter.id,
        "x",
        clock::now(),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        accounts::ensure_superuser(&test.db, &squatter.email, &password)
            .await
            .unwrap(),
        Ensured::Promoted
    );
    let mut conn = test.db.acquire().await.unwrap();
    let promoted = users::find_user_by_id(&mut conn, squatter.id)
        .await
        .unwrap()
        .unwrap();
    assert!(promoted.is_superuser && promoted.is_staff && promoted.is_verified);
    assert_ne!(
        promoted.password_hash, squatter.password_hash,
        "password replaced"
    );
    let hash = promoted.password_hash.unwrap();
    assert!(
        shared::crypto::verify_password("a long passphrase", &hash)
            .await
            .unwrap()
    );
    let tokens = shared::store::tokens::touch_api_token(&mut conn, "squatter-token", clock::now())
        .await
        .unwrap();
    assert_eq!(tokens, None, "signed out everywhere");
    let unchanged = users::find_user_by_id(&mut conn, created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.password_hash, created.password_hash);
    assert_eq!(users::count_users(&mut conn).await.unwrap(), 2);
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_reported_as_unavailable() {
    let config = shared::config::DatabaseConfig::new(
        shared::config::Secret::new("postgres://nobody@127.0.0.1:1/none"),
        shared::config::DatabaseKind::Postgres,
        1,
    );
    let db = Db::connect_lazy(&config).unwrap();
    let err = db.ping().await.unwrap_err();
    assert!(matches!(Error::from(err), Error::Unavailable(_)));
}

/// The server process behind a pooled connection.
async fn backend_pid(db: &Db) -> Result<i32, sqlx::Error> {
    let mut conn = db.acquire().await?;
    on_conn!(&mut conn, |c| sqlx::query_scalar::<_, i32>(
        "select pg_backend_pid()"
    )
    .fetch_one(&mut *c)
    .await)
}

/// Ends server process `pid` (as a restart, a failover or an idle timeout would) and waits
/// until it is gone.
async fn terminate_backend(admin: &Db, pid: i32) {
    let mut conn = admin.acquire().await.unwrap();
    on_conn!(&mut conn, |c| {
        sqlx::query("select pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut *c)
            .await
            .unwrap();
        for _ in 0..100 {
            let alive: i64 =
                sqlx::query_scalar("select count(*) from pg_stat_activity where pid = $1")
                    .bind(pid)
                    .fetch_one(&mut *c)
                    .await
                    .unwrap();
            if alive == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("backend {pid} did not end");
    })
}

#[tokio::test]
#[ignore = "needs PostgreSQL: .ci/run runs it with --ignored"]
async fn a_connection_the_server_closed_is_replaced_and_a_recent_one_is_trusted_without_a_ping() {
    use shared::db::PING_AFTER_IDLE;
    shared::testing::require_postgres();
    let test = TestDb::new().await;
    let mut config = test.config.clone();
    config.max_connections = 1;
    let db = Db::connect_lazy(&config).unwrap();

    // Closed while the pool held it, and unused for longer than PING_AFTER_IDLE (a frozen
    // Lambda instance): the ping at acquire finds it closed, and the pool opens another.
    let first = backend_pid(&db).await.unwrap();
    terminate_backend(&test.db, first).await;
    tokio::time::sleep(PING_AFTER_IDLE + std::time::Duration::from_millis(200)).await;
    let second = backend_pid(&db)
        .await
        .expect("the closed connection was found and replaced before the query");
    assert_ne!(second, first);

    // Used a moment ago: handed out without that round trip, so a query on a connection the
    // server has just closed fails, once; sqlx's check when the pool takes it back finds it
    // broken, and the next query gets a new connection. (The pool takes a connection back in
    // a task of its own, with a ping: it must be back before the server closes it.)
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    terminate_backend(&test.db, second).await;
    let err = backend_pid(&db).await.unwrap_err();
    assert!(
        matches!(Error::from(err), Error::Unavailable(_)),
        "a closed connection is a 503"
    );
    let third = backend_pid(&db).await.expect("a new connection");
    assert_ne!(third, second);
}

/// A connection's TLS, as the server sees it.
async fn connection_uses_tls(db: &Db) -> Result<bool, sqlx::Error> {
    let mut conn = db.acquire().await?;
    on_conn!(&mut conn, |c| sqlx::query_scalar::<_, bool>(
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
    )
    .fetch_one(&mut *c)
    .await)
}

#[tokio::test]
#[ignore = "needs PostgreSQL with TLS: .ci/run runs it with --ignored"]
async fn with_a_ca_bundle_the_server_must_prove_itself_and_another_authority_is_refused() {
    use shared::config::{CaBundle, DatabaseConfig, DatabaseKind, Secret};
    shared::testing::require_postgres();
    let ca = shared::testing::require_test_database_ca();
    let test = TestDb::new().await;
    // The suite's URL turns TLS off; the bundle alone must turn it on.
    let mut url = url::Url::parse(test.config.url.expose()).unwrap();
    url.set_query(None);
    let config = |bundle| {
        let mut config =
            DatabaseConfig::new(Secret::new(url.to_string()), DatabaseKind::Postgres, 1);
        config.ca_bundle = Some(bundle);
        config
    };

    let verified = Db::connect_lazy(&config(CaBundle::File(ca))).unwrap();
    assert!(connection_uses_tls(&verified).await.unwrap());

    // Amazon RDS's authorities did not sign this server's certificate: no connection, and the
    // request it was for is told the database is unavailable (503), not served in clear.
    let rds = Db::connect_lazy(&config(CaBundle::Rds)).unwrap();
    let err = rds.ping().await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(matches!(Error::from(err), Error::Unavailable(_)));
}

#[tokio::test]
async fn an_email_row_reads_typed_and_an_unknown_kind_is_a_clear_error() {
    use shared::domain::{EmailKind, EmailStatus};
    use shared::store::emails;

    let test = TestDb::new().await;
    let rendered = shared::mail::Rendered {
        subject: "Hello".into(),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
    };
    let mut tx = test.db.begin().await.unwrap();
    let id = shared::services::outbox::add(
        &mut tx,
        EmailKind::PasswordReset,
        &email("ada@example.com"),
        None,
        &rendered,
    )
    .await
    .unwrap();
    let stranger = Uuid::now_v7();
    let now = clock::now();
    on_conn!(&mut tx, |c| sqlx::query(
        "insert into emails (id, kind, to_address, subject, body_text, status, attempts, \
         created_at, updated_at) values ($1, 'carrier_pigeon', 'ada@example.com', 's', 't', \
         'pending', 0, $2, $2)"
    )
    .bind(stranger)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
    .unwrap();
    tx.commit().await.unwrap();

    let mut conn = test.db.acquire().await.unwrap();
    let row = emails::find_email(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(
        (row.kind, row.status),
        (EmailKind::PasswordReset, EmailStatus::Pending)
    );
    let err = emails::find_email(&mut conn, stranger).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown email kind \"carrier_pigeon\""),
        "{}: {err}",
        backend()
    );
}
