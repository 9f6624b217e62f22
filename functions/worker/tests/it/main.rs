//! The integration tests of this crate, one binary: each module was a file of its own
//! (one binary each, every one linking the whole dependency tree). `cargo test --test it
//! <module>::` runs one module.

mod batch;
mod common;
mod queue_down;
mod runtime_api;
mod ses_errors;
