use std::sync::Arc;

use shared::config::Config;
use shared::db::Db;
use shared::queue::Queue;
use shared::services::accounts::Mailing;

use crate::templates::Templates;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    /// Where mail and other deferred work goes (SQS in Lambda, in-process locally).
    pub queue: Queue,
    pub templates: Arc<Templates>,
}

impl AppState {
    /// What use cases that send mail need.
    pub fn mailing(&self) -> Mailing<'_> {
        Mailing {
            config: &self.config,
            queue: &self.queue,
        }
    }

    /// For Lambda: the pool (lazily: no connection yet), the SQS queue (its client made at
    /// the first send: most requests send nothing), the templates (each parsed at its first
    /// use).
    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect_lazy(&config.database)?;
        // In Lambda the queue is SQS: there is no in-process receiving end to keep.
        let (queue, _) = Queue::from_config(&config);
        Ok(Self::new(config, db, queue))
    }

    /// With an existing pool and queue (the local runner shares its own; tests bring theirs).
    pub fn new(config: Config, db: Db, queue: Queue) -> Self {
        Self {
            templates: Arc::new(Templates::new(config.debug, &config.site_name)),
            config: Arc::new(config),
            db,
            queue,
        }
    }
}
