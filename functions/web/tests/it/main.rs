//! The integration tests of this crate, one binary: each module was a file of its own
//! (one binary each, every one linking the whole dependency tree). `cargo test --test it
//! <module>::` runs one module.

mod accounts_api;
mod admin;
// example-app:begin
mod class_pages;
mod classes_api;
// example-app:end
mod common;
mod load;
mod openapi;
mod pages;
mod reliability;
mod request_ids;
mod router;
mod runtime_api;
mod security;
mod site_name;
