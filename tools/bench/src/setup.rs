//! Databases for the measurements: a SQLite file or a new PostgreSQL database, migrated and
//! seeded with classes (so the pages query real rows), and the events each function gets.

use std::str::FromStr as _;

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use shared::config::{DatabaseConfig, DatabaseKind, Secret};
use shared::db::Db;
use shared::domain::classes::ClassDraft;
use shared::domain::{EmailAddress, EmailKind};
use shared::mail::Rendered;
use shared::queue::Message;
use shared::services::{classes, outbox};
use sqlx::Connection as _;

/// Classes on the pages and in the list (one page of 20).
pub const CLASSES: usize = 20;

pub struct Database {
    pub label: &'static str,
    pub url: String,
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    pub async fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        Self::open("SQLite", url, Some(dir)).await
    }

    /// A new database on the server `server_url` names.
    pub async fn postgres(server_url: &str) -> anyhow::Result<Self> {
        let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
        let options = sqlx::postgres::PgConnectOptions::from_str(server_url)?;
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .context("connecting to the PostgreSQL server")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let mut url = url::Url::parse(server_url)?;
        url.set_path(&name);
        Self::open("PostgreSQL", url.to_string(), None).await
    }

    async fn open(
        label: &'static str,
        url: String,
        dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Self> {
        let kind = if label == "SQLite" {
            DatabaseKind::Sqlite
        } else {
            DatabaseKind::Postgres
        };
        let db = Db::connect_lazy(&DatabaseConfig::new(Secret::new(url.clone()), kind, 2))?;
        db.migrate().await?;
        let staff = shared::testing::user(&db, "staff@example.com", true, true).await;
        for i in 0..CLASSES {
            let draft = ClassDraft {
                title: Some(format!("Class {i}")),
                description: Some("A class to fill the page.".into()),
                location: Some("Studio 1".into()),
                starts_at: Some((Utc::now() + TimeDelta::hours(2 + i as i64)).to_rfc3339()),
                duration_minutes: Some(60),
                capacity: Some(12),
                recurrence: Some("weekly".into()),
                ..Default::default()
            };
            classes::create_class(&db, chrono_tz::UTC, &staff, &draft).await?;
        }
        Ok(Self {
            label,
            url,
            db,
            _dir: dir,
        })
    }

    /// `count` pending outbox rows and the SQS batches (of 10) that deliver them.
    pub async fn email_batches(&self, count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        let to = EmailAddress::parse("ada@example.com").map_err(anyhow::Error::msg)?;
        let rendered = Rendered {
            subject: "Benchmark".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
        };
        let mut ids = Vec::with_capacity(count);
        let mut tx = self.db.begin().await?;
        for _ in 0..count {
            ids.push(outbox::add(&mut tx, EmailKind::Test, &to, None, &rendered).await?);
        }
        tx.commit().await?;
        Ok(ids
            .chunks(10)
            .map(|chunk| {
                let records: Vec<Value> = chunk
                    .iter()
                    .map(|id| {
                        json!({
                            "messageId": uuid::Uuid::now_v7().to_string(),
                            "receiptHandle": "AQEB",
                            "body": Message::SendEmail { email_id: *id }.encode(),
                            "attributes": {"ApproximateReceiveCount": "1"},
                            "messageAttributes": {},
                            "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:app-worker",
                            "awsRegion": "us-east-1",
                        })
                    })
                    .collect();
                serde_json::to_vec(&json!({"Records": records})).expect("JSON")
            })
            .collect())
    }
}

/// The API Gateway host the web function is configured for.
pub const HOST: &str = "abc123def4.execute-api.us-east-1.amazonaws.com";

/// An HTTP API (payload 2.0) GET of `path_and_query`, asking for `accept`.
pub fn http_event(path_and_query: &str, accept: &str) -> Vec<u8> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    serde_json::to_vec(&json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": accept,
            "host": HOST,
            "user-agent": "bench",
            "x-forwarded-for": "203.0.113.10",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123def4",
            "domainName": HOST,
            "domainPrefix": "abc123def4",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:09:30:00 +0000",
            "timeEpoch": 1795858200000u64,
        },
        "isBase64Encoded": false,
    }))
    .expect("JSON")
}

/// A scheduler event for `job` at a tick of its own (so every run does the work).
pub fn job_event(job: &str, run: usize) -> Vec<u8> {
    let tick = Utc::now() + TimeDelta::days(1) + TimeDelta::hours(run as i64);
    serde_json::to_vec(&json!({"job": job, "scheduled_time": tick.to_rfc3339()})).expect("JSON")
}

/// The system's CA bundle, given to the functions as `SSL_CERT_FILE`.
///
/// The AWS SDK's HTTPS client loads the system's root certificates at init. Here (Debian)
/// that means the bundle plus about 150 files in `/etc/ssl/certs` (the web function's init:
/// 19 ms, against 12 ms with the bundle alone). On `provided.al2023` the certificate directory
/// holds only the bundle, so pointing at the bundle alone is closer to Lambda.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What a deployed function's environment holds, on `database`.
/// [`lambda_env`] as deployed: the database URL and `SECRET_KEY` in Secrets Manager (the AWS
/// emulator at `emulator`), the environment holding only their ARNs.
pub async fn secrets_env(
    database: &Database,
    emulator: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let client = aws_sdk_secretsmanager::Client::new(&shared::aws::sdk_config().await);
    let mut arns = Vec::new();
    for value in [
        serde_json::json!({ "url": database.url }).to_string(),
        shared::crypto::random_token(48),
    ] {
        let created = client
            .create_secret()
            .name(format!("bench/{}", uuid::Uuid::now_v7().simple()))
            .secret_string(value)
            .send()
            .await
            .context("creating a secret in the AWS emulator")?;
        arns.push(created.arn.context("no ARN")?);
    }
    Ok(shared::testing::lambda_env(
        "",
        &[
            ("ALLOWED_HOSTS", HOST),
            ("EMAIL_BACKEND", "console"),
            ("SSL_CERT_FILE", CA_BUNDLE),
            ("SECRET_KEY", ""),
            ("DATABASE_SECRET_ARN", &arns[0]),
            ("SECRET_KEY_SECRET_ARN", &arns[1]),
            ("AWS_ENDPOINT_URL", emulator),
        ],
    ))
}

pub fn lambda_env(database: &Database) -> Vec<(String, String)> {
    shared::testing::lambda_env(
        &database.url,
        &[
            ("ALLOWED_HOSTS", HOST),
            ("EMAIL_BACKEND", "console"),
            ("SSL_CERT_FILE", CA_BUNDLE),
        ],
    )
}
