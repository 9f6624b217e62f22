use shared::config::Config;
use shared::db::Db;
use shared::queue::{LocalMessage, Queue};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::worker_loop::{self, BATCH_SIZE};

/// The functions of template.yaml in one process: one pool and one queue for all of them.
pub struct Functions {
    pub config: Config,
    /// The worker's dependencies; every function here shares its pool.
    pub worker: worker::Deps,
    /// Where the functions send work for the worker.
    pub queue: Queue,
    /// The in-process queue's receiving end; `None` with SQS, where a worker polls the queue.
    received: Option<UnboundedReceiver<LocalMessage>>,
}

impl Functions {
    /// The worker's dependencies as Lambda builds them ([`worker::Deps::from_config`]) and the
    /// queue the configuration names ([`Queue::from_config`]).
    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let worker = worker::Deps::from_config(&config).await?;
        let (queue, received) = Queue::from_config(&config);
        Ok(Self {
            config,
            worker,
            queue,
            received,
        })
    }

    pub fn db(&self) -> &Db {
        &self.worker.db
    }

    /// The web function's state, on the shared pool and queue.
    pub fn web(&self) -> web::AppState {
        web::AppState::new(self.config.clone(), self.db().clone(), self.queue.clone())
    }

    /// The scheduler's dependencies, on the shared pool and queue.
    pub fn scheduler(&self) -> scheduler::Deps {
        scheduler::Deps {
            config: self.config.clone(),
            db: self.db().clone(),
            queue: self.queue.clone(),
        }
    }

    /// True when messages go to an SQS queue (`WORKER_QUEUE_URL` is set), not in process.
    pub fn uses_sqs(&self) -> bool {
        self.received.is_none()
    }

    /// Hands what the in-process queue holds now to the worker's Lambda handler, in SQS-sized
    /// batches, and returns how many messages it handed over. With SQS there is nothing here
    /// to hand over: a worker polling the queue gets them.
    pub async fn run_worker_on_queued(&mut self) -> usize {
        let Some(received) = &mut self.received else {
            return 0;
        };
        let mut handled = 0;
        loop {
            let mut batch = Vec::new();
            while batch.len() < BATCH_SIZE
                && let Ok(message) = received.try_recv()
            {
                batch.push((format!("local-{handled}"), message.body, 1));
                handled += 1;
            }
            if batch.is_empty() {
                return handled;
            }
            worker::handle_batch(&self.worker, worker::event_for(batch)).await;
        }
    }

    /// Starts the worker beside the other functions (once): it drains the in-process queue, or
    /// long-polls SQS as Lambda's event source mapping would. Returns the task and where the
    /// worker reads from.
    pub fn spawn_worker(&mut self) -> (JoinHandle<()>, String) {
        let (deps, queue) = (self.worker.clone(), self.queue.clone());
        let task = match self.received.take() {
            Some(received) => tokio::spawn(worker_loop::run_local(deps, queue, received)),
            None => tokio::spawn(worker_loop::run_sqs(deps, queue)),
        };
        let source = match &self.config.worker_queue_url {
            Some(url) => format!("SQS queue {url}"),
            None => "in-process queue".to_owned(),
        };
        (task, source)
    }
}
