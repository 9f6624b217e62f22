//! The integration tests of this crate, one binary: each module was a file of its own
//! (one binary each, every one linking the whole dependency tree). `cargo test --test it
//! <module>::` runs one module.

// example-app:begin
mod classes;
// example-app:end
mod db;
mod guide;
mod metrics;
mod xray;
