//! Logging with `tracing`: readable lines on a terminal, JSON lines in Lambda (or with
//! `LOG_FORMAT=json`). Lambda sends stdout to CloudWatch Logs, so no agent is needed.
//!
//! JSON lines carry `timestamp`, `level`, `target`, the event's fields (`message` among them)
//! and `spans`, the fields of the spans the event happened in: the Lambda runtime's span holds
//! `requestId`, so every line of an invocation can be found by its request id.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Calling it twice (tests) keeps the first one.
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::builder()
        .parse(&log.filter)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stdout)
            .try_init(),
        LogFormat::Text => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // Err only means a subscriber is already installed.
    let _ = result;
}
