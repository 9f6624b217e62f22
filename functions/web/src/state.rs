use std::sync::Arc;

use shared::config::Config;
use shared::db::Db;

use crate::templates::Templates;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub templates: Arc<Templates>,
}

impl AppState {
    /// Builds the pool (lazily: no connection yet) and the templates.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect_lazy(&config.database)?;
        Self::with_db(config, db)
    }

    /// With an existing pool (the local runner shares one; tests bring a fresh database).
    pub fn with_db(config: Config, db: Db) -> anyhow::Result<Self> {
        let templates = Arc::new(Templates::new(&config)?);
        Ok(Self {
            config: Arc::new(config),
            db,
            templates,
        })
    }
}
