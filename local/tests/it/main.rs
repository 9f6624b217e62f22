//! The integration tests of this crate, one binary: each module was a file of its own
//! (one binary each, every one linking the whole dependency tree). `cargo test --test it
//! <module>::` runs one module.

mod aws;
// example-app:begin
mod browser;
// example-app:end
mod cli;
mod reliability_doc;
mod secrets;
// starter-only:begin
mod startproject;
// starter-only:end
mod template;
