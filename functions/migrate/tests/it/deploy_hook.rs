//! The deploy hook on the committed CloudFormation events, both in-process and as the real
//! binary under the Runtime API emulator, answering on a loopback "pre-signed URL".

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::put;
use migrate::{PHYSICAL_RESOURCE_ID, Status};
use runtime_api_emulator::{Emulator, Outcome};
use serde_json::{Value, json};
use shared::config::{Config, ConfigError, Profile, Vars};
use shared::domain::EmailAddress;
use shared::store::users;
use shared::testing::{TestDb, lambda_env, user};
use tokio::sync::{Mutex, mpsc};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "deploy-hook-Password-1";

fn event(kind: &str) -> Value {
    let path = format!(
        "{}/../../events/cloudformation-{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The production environment of template.yaml, on the test database.
fn lambda_vars(database_url: &str) -> Vec<(String, String)> {
    lambda_vars_with(database_url, ADMIN_PASSWORD)
}

fn lambda_vars_with(database_url: &str, superuser_password: &str) -> Vec<(String, String)> {
    lambda_env(
        database_url,
        &[
            ("SUPERUSER_EMAIL", ADMIN),
            ("SUPERUSER_PASSWORD", superuser_password),
            ("AWS_LAMBDA_FUNCTION_NAME", "migrate"),
        ],
    )
}

fn config_for(database_url: &str) -> Result<Config, ConfigError> {
    config_with(database_url, ADMIN_PASSWORD)
}

fn config_with(database_url: &str, superuser_password: &str) -> Result<Config, ConfigError> {
    Config::from_vars(
        &Profile::Lambda,
        &Vars::from_pairs(lambda_vars_with(database_url, superuser_password)),
    )
}

/// The stored password hash of `email`'s account.
async fn password_hash(test: &TestDb, email: &str) -> Option<String> {
    let mut conn = test.db.acquire().await.unwrap();
    let email = EmailAddress::parse(email).unwrap();
    users::find_user_by_email(&mut conn, &email)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn verifies(password: &str, hash: &str) -> bool {
    shared::crypto::verify_password(password, hash)
        .await
        .unwrap()
}

async fn user_count(test: &TestDb) -> i64 {
    let mut conn = test.db.acquire().await.unwrap();
    shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar::<_, i64>("select count(*) from users")
            .fetch_one(&mut *c)
            .await
    })
    .unwrap()
}

#[tokio::test]
async fn create_migrates_and_ensures_the_superuser_update_changes_nothing_delete_keeps_data() {
    let test = TestDb::empty().await;
    let url = test.config.url.expose().to_owned();

    let created = migrate::handle(event("create"), async { config_for(&url) })
        .await
        .unwrap();
    let r = &created.response;
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(r.physical_resource_id, PHYSICAL_RESOURCE_ID);
    assert_eq!(r.logical_resource_id, "DatabaseMigrations");
    assert_eq!(r.request_id, event("create")["RequestId"]);
    assert_eq!(r.stack_id, event("create")["StackId"]);
    assert_eq!(created.response_url, event("create")["ResponseURL"]);
    let applied = test.db.applied_migrations().await.unwrap();
    assert!(!applied.is_empty());
    assert_eq!(
        r.data["MigrationsApplied"],
        applied
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(r.data["Superuser"], "created");
    assert_eq!(user_count(&test).await, 1);

    let updated = migrate::handle(event("update"), async { config_for(&url) })
        .await
        .unwrap();
    let r = &updated.response;
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(r.physical_resource_id, "database-migrations");
    assert_eq!(r.data["MigrationsApplied"], "");
    assert_eq!(r.data["Superuser"], "already existed");
    assert!(r.reason.contains("already up to date"), "{}", r.reason);

    // Delete never reads the settings: a stack deletion cannot be blocked by them.
    let deleted = migrate::handle(event("delete"), async {
        panic!("Delete read the configuration")
    })
    .await
    .unwrap();
    assert_eq!(deleted.response.status, Status::Success);
    assert_eq!(user_count(&test).await, 1);
    assert_eq!(test.db.applied_migrations().await.unwrap(), applied);
}

#[tokio::test]
async fn a_second_deploy_leaves_an_existing_superusers_password_alone() {
    let test = TestDb::empty().await;
    let url = test.config.url.expose().to_owned();
    let created = migrate::handle(event("create"), async { config_for(&url) })
        .await
        .unwrap();
    assert_eq!(created.response.data["Superuser"], "created");
    let hash = password_hash(&test, ADMIN).await.unwrap();
    assert!(verifies(ADMIN_PASSWORD, &hash).await);

    // The next deploy carries another SuperuserPassword (a changed parameter, or the admin
    // changed theirs since): the account keeps the password it has.
    let changed = "another-deploy-Password-2";
    let updated = migrate::handle(event("update"), async { config_with(&url, changed) })
        .await
        .unwrap();
    assert_eq!(updated.response.status, Status::Success);
    assert_eq!(updated.response.data["Superuser"], "already existed");
    assert_eq!(
        password_hash(&test, ADMIN).await.as_ref(),
        Some(&hash),
        "password unchanged"
    );
    assert!(!verifies(changed, &hash).await);
}

#[tokio::test]
async fn a_deploy_takes_over_an_ordinary_account_with_the_superusers_email_and_sets_its_password() {
    let test = TestDb::new().await;
    let url = test.config.url.expose().to_owned();
    let squatter = user(&test.db, ADMIN, false, false).await;
    let before = password_hash(&test, ADMIN).await;

    let answered = migrate::handle(event("create"), async { config_for(&url) })
        .await
        .unwrap();
    assert_eq!(answered.response.status, Status::Success);
    assert_eq!(
        answered.response.data["Superuser"],
        "promoted from an existing account"
    );
    let mut conn = test.db.acquire().await.unwrap();
    let promoted = users::find_user_by_id(&mut conn, squatter.id)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    assert!(promoted.is_superuser && promoted.is_staff);
    assert_ne!(promoted.password_hash, before, "password replaced");
    assert!(verifies(ADMIN_PASSWORD, &promoted.password_hash.unwrap()).await);
}

#[tokio::test]
async fn a_bad_setting_or_an_unreachable_database_fails_the_deploy_with_the_reason() {
    let bad = migrate::handle(event("create"), async {
        Config::from_vars(
            &Profile::Lambda,
            &Vars::from_pairs([("AWS_LAMBDA_FUNCTION_NAME", "migrate")]),
        )
    })
    .await
    .unwrap();
    assert_eq!(bad.response.status, Status::Failed);
    assert!(
        bad.response.reason.contains("must be set"),
        "{}",
        bad.response.reason
    );

    // Nothing listens on port 1.
    let down = migrate::handle(event("update"), async {
        config_for("postgres://app:secret@127.0.0.1:1/app")
    })
    .await
    .unwrap();
    assert_eq!(down.response.status, Status::Failed);
    assert!(
        !down.response.reason.contains("secret"),
        "{}",
        down.response.reason
    );
    assert!(
        down.response.reason.contains("migrations"),
        "{}",
        down.response.reason
    );
}

#[tokio::test]
async fn a_malformed_request_is_answered_failed_when_it_says_where_and_an_error_otherwise() {
    let mut broken = event("create");
    broken["RequestType"] = json!("Explode");
    let answered = migrate::handle(broken, async { panic!("not read") })
        .await
        .unwrap();
    assert_eq!(answered.response.status, Status::Failed);
    assert!(
        answered
            .response
            .reason
            .contains("not a CloudFormation custom resource request")
    );

    let error = migrate::handle(json!({"job": "sweep-outbox"}), async { panic!("not read") })
        .await
        .unwrap_err();
    assert_eq!(error.error_type, "InvalidEvent");
    assert!(
        error.error_message.contains("Custom::DatabaseMigrations"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_rollback_to_the_previous_release_tolerates_newer_migrations() {
    let test = TestDb::new().await;
    let mut conn = test.db.acquire().await.unwrap();
    // A migration applied by a newer release this binary does not know.
    shared::on_conn!(&mut conn, |c| {
        sqlx::query(
            "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
             values (99990101000000, 'from a newer release', true, $1, 1)",
        )
        .bind(vec![0u8])
        .execute(&mut *c)
        .await
        .map(|_| ())
    })
    .unwrap();
    drop(conn);
    let url = test.config.url.expose().to_owned();
    let rolled_back = migrate::handle(event("update"), async { config_for(&url) })
        .await
        .unwrap();
    assert_eq!(
        rolled_back.response.status,
        Status::Success,
        "{:?}",
        rolled_back.response
    );
    // The strict migrator (the CLI) still refuses it.
    assert!(test.db.migrate().await.is_err());
}

/// What CloudFormation's pre-signed URL received.
struct Received {
    content_type: Option<String>,
    body: Value,
}

async fn response_url() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/cfn-response",
            put(
                |State(tx): State<Arc<Mutex<mpsc::UnboundedSender<Received>>>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let received = Received {
                        content_type: headers
                            .get("content-type")
                            .map(|v| v.to_str().unwrap().to_owned()),
                        body: serde_json::from_slice(&body).unwrap(),
                    };
                    tx.lock().await.send(received).unwrap();
                },
            ),
        )
        .with_state(Arc::new(Mutex::new(tx)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/cfn-response?X-Amz-Signature=abc",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn pointed_at(kind: &str, url: &str) -> Vec<u8> {
    let mut event = event(kind);
    event["ResponseURL"] = json!(url);
    serde_json::to_vec(&event).unwrap()
}

#[tokio::test]
async fn the_binary_answers_cloudformation_for_each_request_type_and_survives_a_malformed_event() {
    let test = TestDb::empty().await;
    let (url, mut answers) = response_url().await;
    let emulator = Emulator::start("migrate").await;
    let function = emulator.spawn(
        env!("CARGO_BIN_EXE_migrate"),
        lambda_vars(test.config.url.expose()),
    );

    for (kind, superuser) in [("create", "created"), ("update", "already existed")] {
        let outcome = emulator.invoke(pointed_at(kind, &url)).await;
        let Some(Outcome::Response(_)) = &outcome else {
            panic!("{kind}: {outcome:?}\n{}", function.output());
        };
        let answer = answers.recv().await.unwrap();
        assert_eq!(
            answer.content_type, None,
            "the URL is signed without a content type"
        );
        assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
        assert_eq!(answer.body["PhysicalResourceId"], PHYSICAL_RESOURCE_ID);
        assert_eq!(answer.body["RequestId"], event(kind)["RequestId"]);
        assert_eq!(answer.body["Data"]["Superuser"], superuser);
    }

    // A truncated event: an error for this invocation, and the loop goes on.
    let outcome = emulator
        .invoke(&b"{\"RequestType\": \"Cre"[..])
        .await
        .unwrap();
    let message = outcome.error_message();
    assert!(message.contains("EOF while parsing"), "{message}");
    // JSON, but not a custom resource request: nothing to answer on, a typed failure.
    let outcome = emulator.invoke(r#"{"job": "sweep-outbox"}"#).await.unwrap();
    assert_eq!(outcome.reported_type(), "InvalidEvent", "{outcome:?}");
    assert!(
        outcome.error_message().contains("no ResponseURL"),
        "{outcome:?}"
    );

    let outcome = emulator.invoke(pointed_at("delete", &url)).await;
    assert!(matches!(outcome, Some(Outcome::Response(_))), "{outcome:?}");
    let answer = answers.recv().await.unwrap();
    assert_eq!(answer.body["Status"], "SUCCESS");
    assert_eq!(user_count(&test).await, 1);
    // An answer that cannot be delivered fails the invocation (Lambda retries it) as a
    // HandlerError with the reason.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/answer", listener.local_addr().unwrap())
    };
    let outcome = emulator
        .invoke(pointed_at("delete", &closed))
        .await
        .unwrap();
    assert_eq!(outcome.reported_type(), "HandlerError", "{outcome:?}");
    assert!(
        outcome
            .error_message()
            .starts_with("sending the response: "),
        "{outcome:?}"
    );
    // The logs are JSON lines, as CloudWatch gets them.
    let output = function.output();
    assert!(
        output.lines().any(|l| serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["message"] == "deploy hook answered")),
        "{output}"
    );
}

#[tokio::test]
async fn the_binary_with_a_bad_setting_answers_failed_with_the_variable_instead_of_dying() {
    let (url, mut answers) = response_url().await;
    let emulator = Emulator::start("migrate").await;
    let mut function = emulator.spawn(
        env!("CARGO_BIN_EXE_migrate"),
        [("DATABASE_URL", "postgres://db.example.com/app")],
    );
    let outcome = emulator.invoke(pointed_at("create", &url)).await;
    assert!(
        matches!(outcome, Some(Outcome::Response(_))),
        "{outcome:?}\n{}",
        function.output()
    );
    let answer = answers.recv().await.unwrap();
    assert_eq!(answer.body["Status"], "FAILED");
    assert!(
        answer.body["Reason"]
            .as_str()
            .unwrap()
            .starts_with("SECRET_KEY must be set"),
        "{}",
        answer.body
    );
    // Still serving: the next deploy gets its answer from the same instance.
    let outcome = emulator.invoke(pointed_at("delete", &url)).await;
    assert!(matches!(outcome, Some(Outcome::Response(_))), "{outcome:?}");
    assert_eq!(answers.recv().await.unwrap().body["Status"], "SUCCESS");
    assert_eq!(function.exit_code(Duration::from_millis(100)).await, None);
}
