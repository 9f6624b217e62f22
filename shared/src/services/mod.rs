//! Use cases: each written once here and called by the web, worker, scheduler and CLI.

pub mod accounts;
pub mod admin;
// example-app:begin
pub mod classes;
// example-app:end
pub mod dead_letters;
pub mod deploy;
pub mod dev_mailbox;
pub mod outbox;
pub mod sessions;
