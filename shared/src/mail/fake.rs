//! A mailer for tests: records what it sends and fails on cue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{FailureKind, OutgoingEmail, SendError, SentEmail};

#[derive(Debug, Clone, Default)]
pub struct FakeMailer {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    failures: VecDeque<FailureKind>,
    sent: Vec<OutgoingEmail>,
    attempts: usize,
    delay: Duration,
}

impl FakeMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` sends fail with `kind`, then sends succeed again.
    pub fn fail_next(&self, n: usize, kind: FailureKind) {
        let mut state = self.lock();
        state.failures.extend(std::iter::repeat_n(kind, n));
    }

    /// Each send takes this long (to overlap concurrent deliveries).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Messages sent successfully, in order.
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.lock().sent.clone()
    }

    /// Every call to `send`, failed ones included.
    pub fn attempts(&self) -> usize {
        self.lock().attempts
    }

    pub async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, SendError> {
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.lock();
        state.attempts += 1;
        match state.failures.pop_front() {
            Some(FailureKind::Transient) => {
                Err(SendError::transient("fake: throttled (retry later)"))
            }
            Some(FailureKind::Permanent) => Err(SendError::permanent("fake: address rejected")),
            None => {
                state.sent.push(email.clone());
                Ok(SentEmail {
                    provider_message_id: format!("fake-{}", state.sent.len()),
                })
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
