//! Use cases: each written once here and called by the web, worker, scheduler and CLI.

pub mod accounts;
pub mod admin;
pub mod classes;
pub mod dead_letters;
pub mod deploy;
pub mod dev_mailbox;
pub mod outbox;
pub mod sessions;
