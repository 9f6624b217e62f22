//! Queries, one file per table group. Each function takes anything that implements
//! [`Exec`](crate::db::Exec) (a transaction or a pooled connection) and is written once for
//! both backends with [`on_conn!`](crate::on_conn).

pub mod admin;
// example-app:begin
pub mod classes;
// example-app:end
pub mod emails;
pub mod jobs;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;
