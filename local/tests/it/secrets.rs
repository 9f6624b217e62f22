//! Secrets Manager (moto's, the real API) and PostgreSQL: the secrets a function is given by
//! ARN, a secret that cannot be read, and a rotated password. `#[ignore]`d with the reason;
//! `.ci/run` runs them with `--ignored` on its PostgreSQL step.

use shared::testing::{TestDb, new_secret};
use uuid::Uuid;

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&shared::aws::sdk_config().await)
}

#[tokio::test]
#[ignore = "needs the AWS emulator and PostgreSQL: .ci/run runs it with --ignored"]
async fn the_secrets_a_function_is_given_by_arn_are_read_from_secrets_manager() {
    use shared::config::{Config, Profile};
    shared::testing::require_aws_emulator();
    // As the stack makes them: RDS's master secret, two generated values.
    let database = new_secret(r#"{"username": "app", "password": "rds-managed-1"}"#).await;
    let key = "generated-by-cloudformation-0123456789abcdefghijklmnopqrstuvwxyz";
    let secret_key = new_secret(key).await;
    let superuser = new_secret("Generated24CharPassword1").await;
    let mut vars = shared::testing::vars_without_secrets(&[
        ("DATABASE_SECRET_ARN", &database),
        ("RDS_HOSTNAME", "db.abc.us-east-1.rds.amazonaws.com"),
        ("RDS_PORT", "5432"),
        ("RDS_DB_NAME", "app"),
        ("DATABASE_CA_BUNDLE", "rds"),
        ("SECRET_KEY_SECRET_ARN", &secret_key),
        ("SUPERUSER_PASSWORD_SECRET_ARN", &superuser),
    ]);

    let reader = shared::secrets::resolve(&mut vars).await.unwrap();

    assert!(reader.is_some());
    let config = Config::from_vars(&Profile::Lambda, &vars).unwrap();
    assert_eq!(
        config.database.url.expose(),
        "postgres://app:rds-managed-1@db.abc.us-east-1.rds.amazonaws.com:5432/app"
    );
    assert_eq!(config.secret_key.expose(), key);
    assert_eq!(
        config.superuser_password.unwrap().expose(),
        "Generated24CharPassword1"
    );
    assert_eq!(
        config.database.ca_bundle,
        Some(shared::config::CaBundle::Rds)
    );
}

#[tokio::test]
#[ignore = "needs the AWS emulator and PostgreSQL: .ci/run runs it with --ignored"]
async fn a_secret_that_cannot_be_read_stops_start_up_naming_its_variable() {
    shared::testing::require_aws_emulator();
    let key = new_secret("generated-by-cloudformation-0123456789abcdefghijklmnopqrstuvwxyz").await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:starter/gone-AbCdEf";
    let mut vars = shared::testing::vars_without_secrets(&[
        ("DATABASE_SECRET_ARN", missing),
        ("SECRET_KEY_SECRET_ARN", &key),
    ]);

    let err = shared::secrets::resolve(&mut vars).await.unwrap_err();

    assert_eq!(err.var, "DATABASE_SECRET_ARN");
    let message = err.to_string();
    assert!(message.contains("could not be read"), "{message}");
    assert!(message.contains(missing), "{message}");
    assert!(message.contains("ResourceNotFound"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator and PostgreSQL: .ci/run runs it with --ignored"]
async fn a_rotated_password_is_read_again_from_the_secret_and_the_same_pool_reconnects() {
    use shared::config::{Config, Profile};
    shared::testing::require_aws_emulator();
    shared::testing::require_postgres();
    // A role that must give its password (scripts/throwaway-postgres.sh: password_login
    // members use SCRAM), as the RDS master user does.
    let test = TestDb::new().await;
    let role = format!("rotated_{}", Uuid::now_v7().simple());
    let admin = |sql: String| {
        let db = test.db.clone();
        async move {
            let mut conn = db.acquire().await.unwrap();
            shared::on_conn!(&mut conn, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *c)
                .await
                .map(|_| ()))
            .unwrap();
        }
    };
    admin(format!(
        "create role {role} login password 'first-Password-1' in role password_login"
    ))
    .await;
    let server = url::Url::parse(test.config.url.expose()).unwrap();
    let secret = new_secret(&format!(
        r#"{{"username": "{role}", "password": "first-Password-1"}}"#
    ))
    .await;
    let key = new_secret("generated-by-cloudformation-0123456789abcdefghijklmnopqrstuvwxyz").await;
    let port = server.port().unwrap().to_string();
    let database = server.path().trim_start_matches('/').to_owned();
    let mut vars = shared::testing::vars_without_secrets(&[
        ("DATABASE_SECRET_ARN", &secret),
        ("RDS_HOSTNAME", "127.0.0.1"),
        ("RDS_PORT", &port),
        ("RDS_DB_NAME", &database),
        ("SECRET_KEY_SECRET_ARN", &key),
    ]);
    let reader = shared::secrets::resolve(&mut vars).await.unwrap().unwrap();
    let mut config = Config::from_vars(&Profile::Lambda, &vars).unwrap();
    config.database.credentials = Some(std::sync::Arc::new(shared::secrets::DatabaseSecret::new(
        reader,
        secret.clone(),
    )));
    let db = shared::db::Db::connect_lazy(&config.database).unwrap();
    db.ping().await.expect("the first password works");

    // RDS rotates: the role's password and the secret change together; the connection the
    // pool held is gone (a frozen instance's connection closed by the server).
    admin(format!("alter role {role} password 'second-Password-2'")).await;
    secrets_client()
        .await
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(format!(
            r#"{{"username": "{role}", "password": "second-Password-2"}}"#
        ))
        .send()
        .await
        .unwrap();
    admin(format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'"
    ))
    .await;
    // Frozen for a while: the pool checks a connection unused for this long before using it.
    tokio::time::sleep(shared::db::PING_AFTER_IDLE + std::time::Duration::from_millis(200)).await;

    db.ping()
        .await
        .expect("the pool re-read the secret and reconnected");

    // A password that stays wrong is not re-read on every request: the refusal stands, as a
    // 503 (the database is unavailable to this function), until the next renewal is due.
    admin(format!("alter role {role} password 'third-Password-3'")).await;
    admin(format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'"
    ))
    .await;
    tokio::time::sleep(shared::db::PING_AFTER_IDLE + std::time::Duration::from_millis(200)).await;
    let err = db.ping().await.unwrap_err();
    assert!(
        matches!(shared::Error::from(err), shared::Error::Unavailable(_)),
        "a refused password is a 503"
    );
}
