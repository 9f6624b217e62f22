//! The deploy hook: applies the migrations and makes sure the superuser named by the
//! configuration exists, on every deploy. The migrate function runs it from a CloudFormation
//! custom resource before the new code of the other functions goes live.

use crate::config::Config;
use crate::db::Db;
use crate::services::accounts::{self, Ensured};

/// What [`prepare_database`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Migration versions applied by this run (empty when the schema was up to date).
    pub applied: Vec<i64>,
    /// `None` when `SUPERUSER_EMAIL` is not set.
    pub superuser: Option<Ensured>,
}

/// Applies pending migrations, then ensures the superuser of `SUPERUSER_EMAIL` exists
/// ([`accounts::ensure_superuser`]: created when missing, an existing superuser's password
/// left alone). Both steps are idempotent: running the hook again changes nothing.
pub async fn prepare_database(config: &Config) -> anyhow::Result<Prepared> {
    let db = Db::connect_lazy(&config.database)?;
    let result = async {
        let applied = db.migrate_on_deploy().await?;
        let superuser = match (&config.superuser_email, &config.superuser_password) {
            (Some(email), Some(password)) => {
                Some(accounts::ensure_superuser(&db, email, password).await?)
            }
            _ => None,
        };
        anyhow::Ok(Prepared { applied, superuser })
    }
    .await;
    db.close().await;
    result
}
