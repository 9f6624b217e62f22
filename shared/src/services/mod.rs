//! Use cases: each written once here and called by the web, worker, scheduler and CLI.

pub mod accounts;
pub mod classes;
pub mod deploy;
pub mod outbox;
pub mod sessions;
