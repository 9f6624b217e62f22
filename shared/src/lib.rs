//! Everything the functions share. A guided tour, in dependency order:

/// The AWS SDK configuration (region, credentials, emulator endpoints).
pub mod aws;
/// The clock, at the database's precision.
pub mod clock;
/// Settings from the environment (and `.env` locally), validated once at start-up.
pub mod config;
/// Random tokens, token hashes, argon2id password hashing.
pub mod crypto;
/// The pool for SQLite or PostgreSQL, transactions, the embedded migrations.
pub mod db;
/// Pure domain types (`EmailAddress`, `Password`, `User`, ...): parsed, never re-validated.
pub mod domain;
/// The application error and how database errors map onto it.
pub mod error;
/// The worked example of `docs/first-model.md` (notes), compiled with the tests only.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod guide;
/// Scheduled jobs: one registry, one file per job, each run by an EventBridge schedule.
pub mod jobs;
/// Email templates and the console / SES mailers.
pub mod mail;
/// Business and health metrics as CloudWatch embedded-metric-format log lines.
pub mod metrics;
/// One pagination type for HTML and JSON lists.
pub mod pagination;
/// Versioned messages for the worker, and the SQS or in-process queue that carries them.
pub mod queue;
/// Secrets read at init from AWS Secrets Manager (ARNs in the environment, never values).
pub mod secrets;
/// Use cases, called by web, worker, scheduler and the CLI alike.
pub mod services;
/// Queries, one file per table group, written once for both backends.
pub mod store;
/// `tracing` set up for a terminal or for CloudWatch (JSON lines).
pub mod telemetry;
/// Fresh databases for tests (SQLite files, or PostgreSQL databases when `TEST_DATABASE_URL`
/// names a server).
#[cfg(any(test, feature = "testing"))]
pub mod testing;
/// X-Ray subsegments for the SQL statements and AWS calls of a sampled invocation.
pub mod xray;

pub use error::{Error, Result};
