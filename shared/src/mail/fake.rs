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
    hang_after: usize,
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

    /// The next `n` successful sends are recorded and then never return: the provider took the
    /// message but the worker died before it could record `sent` (the test aborts the task).
    pub fn hang_after_next_sends(&self, n: usize) {
        self.lock().hang_after += n;
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
        // The guard must be gone before any await (the future stays `Send`).
        let (result, hang) = {
            let mut state = self.lock();
            state.attempts += 1;
            match state.failures.pop_front() {
                Some(FailureKind::Transient) => (
                    Err(SendError::transient("fake: throttled (retry later)")),
                    false,
                ),
                Some(FailureKind::Permanent) => {
                    (Err(SendError::permanent("fake: address rejected")), false)
                }
                None => {
                    state.sent.push(email.clone());
                    let hang = state.hang_after > 0;
                    if hang {
                        state.hang_after -= 1;
                    }
                    let id = format!("fake-{}", state.sent.len());
                    (
                        Ok(SentEmail {
                            provider_message_id: id,
                        }),
                        hang,
                    )
                }
            }
        };
        if hang {
            std::future::pending::<()>().await;
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
