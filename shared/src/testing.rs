//! A fresh, migrated database per test, on the backend `TEST_DATABASE_URL` names:
//! unset (or a `sqlite:` URL) gives a SQLite file in a temporary directory; a `postgres://`
//! URL gives a new database on that server. `.ci/run` runs the suite once per backend.
//!
//! These helpers panic on failure: they are for tests only.

use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tempfile::TempDir;

use crate::config::{DatabaseConfig, DatabaseKind, Secret};
use crate::db::Db;

pub struct TestDb {
    pub db: Db,
    pub config: DatabaseConfig,
    // Keeps the SQLite file alive for the test's duration.
    _dir: Option<TempDir>,
}

/// A complete production environment (what a deployed Lambda gets), for configuration tests
/// that remove or break one variable at a time.
pub fn production_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("DEBUG", "false"),
        (
            "SECRET_KEY",
            "k8Jq2vX9mN4pL7rT1wY6zB3cF5hD0gS8aE2uI9oP4lK7jH1mN6bV3c",
        ),
        (
            "DATABASE_URL",
            "postgres://app:secret@db.example.com:5432/app",
        ),
        ("ALLOWED_HOSTS", "app.example.com"),
        ("SITE_URL", "https://app.example.com"),
        ("EMAIL_BACKEND", "ses"),
        ("DEFAULT_FROM_EMAIL", "noreply@example.com"),
        ("FORCE_HTTPS", "true"),
        (
            "WORKER_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/app-worker",
        ),
    ]
}

/// [`production_vars`] as a deployed function has them before its secrets are read: no
/// `SECRET_KEY` or `DATABASE_URL` (their ARNs come in `extra`), and the variable Lambda sets.
pub fn vars_without_secrets(extra: &[(&str, &str)]) -> crate::config::Vars {
    let mut pairs: Vec<(&str, &str)> = production_vars()
        .into_iter()
        .filter(|(var, _)| !matches!(*var, "SECRET_KEY" | "DATABASE_URL"))
        .collect();
    pairs.push(("AWS_LAMBDA_FUNCTION_NAME", "starter-web"));
    pairs.extend_from_slice(extra);
    crate::config::Vars::from_pairs(pairs)
}

/// Needs the AWS emulator (moto); the tests that call this are `#[ignore]`d, and `.ci/run` runs
/// them with `--ignored` once it has started the emulator and PostgreSQL.
pub fn require_aws_emulator() -> String {
    std::env::var("AWS_EMULATOR_URL")
        .expect("this test needs the AWS emulator: start scripts/aws-emulator.sh")
}

/// In the AWS emulator: a new worker queue whose redrive policy names a new dead-letter queue,
/// as template.yaml has them. Returns the SQS client and the two queues' URLs (worker, dead
/// letters).
pub async fn queue_with_dead_letters() -> (aws_sdk_sqs::Client, String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    require_aws_emulator();
    let client = aws_sdk_sqs::Client::new(&crate::aws::sdk_config().await);
    let suffix = uuid::Uuid::now_v7().simple();
    let create = |name: String, policy: Option<String>| {
        let client = client.clone();
        async move {
            let mut request = client.create_queue().queue_name(name);
            if let Some(policy) = policy {
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
            }
            request
                .send()
                .await
                .expect("the emulator creates the queue")
                .queue_url
                .expect("a queue URL")
        }
    };
    let dlq_url = create(format!("dlq-{suffix}"), None).await;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the emulator reads the queue's attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("the dead-letter queue's ARN");
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5});
    let worker_url = create(format!("worker-{suffix}"), Some(policy.to_string())).await;
    (client, worker_url, dlq_url)
}

/// Needs PostgreSQL (`TEST_DATABASE_URL`); for `#[ignore]`d tests, as above.
pub fn require_postgres() {
    assert_eq!(
        backend(),
        "postgres",
        "this test needs PostgreSQL: set TEST_DATABASE_URL (scripts/throwaway-postgres.sh)"
    );
}

/// The environment template.yaml gives a function, on `database_url`, with `overrides` set
/// (an empty value removes the variable): for running the real binaries under the Runtime API
/// emulator. AWS credentials are fake; nothing at init contacts AWS.
pub fn lambda_env(database_url: &str, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = production_vars()
        .into_iter()
        .chain([
            ("DATABASE_URL", database_url),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("AWS_SESSION_TOKEN", "test"),
        ])
        .chain(overrides.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.retain(|_, v| !v.is_empty());
    env.into_iter().collect()
}

/// Logs to stderr when `TEST_LOG` is set (its value is the filter, e.g. `TEST_LOG=debug`).
///
/// Otherwise a global subscriber that prints nothing, so that tests which capture logs with a
/// thread-local subscriber (`tracing::subscriber::set_default`) see every line: tracing caches
/// each call site's interest process-wide, and a call site first reached on a thread with no
/// subscriber at all is cached as "never", for every thread (a capture once came back empty).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        crate::telemetry::init(&crate::config::LogConfig {
            filter: if filter.is_empty() || filter == "1" {
                "debug".into()
            } else {
                filter
            },
            format: crate::config::LogFormat::Text,
            access_log: true,
            xray_daemon: None,
        });
    } else {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    }
}

/// The backend under test, for messages.
pub fn backend() -> &'static str {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => "postgres",
        _ => "sqlite",
    }
}

impl TestDb {
    /// A new database with every migration applied.
    pub async fn new() -> Self {
        let test_db = Self::empty().await;
        test_db.db.migrate().await.expect("migrations apply");
        test_db
    }

    /// A new database with nothing in it.
    pub async fn empty() -> Self {
        init_logs();
        let server = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
        if server.starts_with("postgres") {
            let name = format!("test_{}", uuid::Uuid::now_v7().simple());
            let admin = PgConnectOptions::from_str(&server).expect("TEST_DATABASE_URL parses");
            let mut conn = PgConnection::connect_with(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "TEST_DATABASE_URL names a PostgreSQL server that cannot be reached: {e}"
                    )
                });
            sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut conn)
                .await
                .expect("create the test database");
            conn.close().await.ok();
            let mut url = url::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&name);
            let config =
                DatabaseConfig::new(Secret::new(url.to_string()), DatabaseKind::Postgres, 5);
            let db = Db::connect_lazy(&config).expect("pool");
            Self {
                db,
                config,
                _dir: None,
            }
        } else {
            let dir = tempfile::tempdir().expect("temporary directory");
            let config = DatabaseConfig::new(
                Secret::new(format!("sqlite://{}", dir.path().join("test.db").display())),
                DatabaseKind::Sqlite,
                5,
            );
            let db = Db::connect_lazy(&config).expect("pool");
            Self {
                db,
                config,
                _dir: Some(dir),
            }
        }
    }
}

/// A local-profile configuration (DEBUG on, as `cargo run` has it) with `extra` variables.
pub fn local_config(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> crate::config::Config {
    crate::config::Config::from_vars(
        &crate::config::Profile::Local {
            data_dir: data_dir.to_path_buf(),
        },
        &crate::config::Vars::from_pairs(extra.iter().copied()),
    )
    .expect("a valid test configuration")
}

/// An account made directly in the store (no email), with the flags a test needs. Its password
/// hash is a placeholder nobody can log in with.
pub async fn user(db: &Db, email: &str, verified: bool, staff: bool) -> crate::domain::User {
    let new = crate::store::users::NewUser {
        email: crate::domain::EmailAddress::parse(email).expect("a valid test email"),
        password_hash: None,
        is_verified: verified,
        is_staff: staff,
        is_superuser: false,
    };
    let mut conn = db.acquire().await.expect("a connection");
    crate::store::users::insert_user(&mut conn, &new, crate::clock::now())
        .await
        .expect("insert a test user")
}

/// A new secret holding `value` in the AWS emulator (Secrets Manager); its ARN.
pub async fn new_secret(value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await)
        .create_secret()
        .name(format!("starter/test-{}", uuid::Uuid::now_v7().simple()))
        .secret_string(value)
        .send()
        .await
        .expect("create a secret in the AWS emulator")
        .arn
        .expect("the new secret's ARN")
}

/// The certificate authority that signed the test PostgreSQL server's certificate
/// (`TEST_DATABASE_CA`, set by `scripts/throwaway-postgres.sh`); for `#[ignore]`d tests.
pub fn require_test_database_ca() -> std::path::PathBuf {
    std::env::var("TEST_DATABASE_CA")
        .expect("this test needs PostgreSQL with TLS: start scripts/throwaway-postgres.sh")
        .into()
}

/// Fault points: named places in the production code where a test can make a run stop dead,
/// as if its Lambda crashed or timed out there. A point is written as
///
/// ```ignore
/// #[cfg(any(test, feature = "testing"))]
/// crate::testing::faults::point("materialize: batch committed").await;
/// ```
///
/// so it does not exist in a build without the `testing` feature. A point is armed only inside
/// the future a test wraps with [`faults::Fault::run`] (a task-local, so tests running at the
/// same time in one binary never trip each other's points).
pub mod faults {
    use std::future::Future;
    use std::sync::Arc;

    use tokio::sync::Notify;

    tokio::task_local! {
        static ARMED: Fault;
    }

    /// A crash armed at the point `name`.
    #[derive(Clone)]
    pub struct Fault {
        name: &'static str,
        reached: Arc<Notify>,
    }

    impl Fault {
        pub fn new(name: &'static str) -> Self {
            Self {
                name,
                reached: Arc::new(Notify::new()),
            }
        }

        /// Runs `future` with this fault armed: on reaching the point it never resumes. The
        /// test then drops (or aborts) it, which is the crash.
        pub async fn run<F: Future>(&self, future: F) -> F::Output {
            ARMED.scope(self.clone(), future).await
        }

        /// Resolves once the armed future has reached the point.
        pub async fn reached(&self) {
            self.reached.notified().await;
        }
    }

    /// The fault point `name`: parks forever if a test armed it for this task, else nothing.
    pub async fn point(name: &'static str) {
        let armed = ARMED
            .try_with(|fault| (fault.name == name).then(|| fault.reached.clone()))
            .ok()
            .flatten();
        if let Some(reached) = armed {
            tracing::info!(point = name, "fault point reached: the run stops here");
            // A stored permit: the test may start waiting after the point was reached.
            reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}
