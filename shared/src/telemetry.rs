//! Logging with `tracing`: readable lines on a terminal, JSON lines in Lambda (or with
//! `LOG_FORMAT=json`). Lambda sends stdout to CloudWatch Logs, so no agent is needed; the
//! local runner logs to stderr alone ([`init_stderr`]).
//!
//! JSON lines carry `timestamp`, `level`, `target`, the event's fields (`message` among them)
//! and `spans`, the fields of the spans the event happened in: the Lambda runtime's span holds
//! `requestId`, so every line of an invocation can be found by its request id.

use std::io::IsTerminal as _;

use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber of a Lambda function: JSON to stdout (CloudWatch Logs takes
/// both streams; the JSON lines have always gone to stdout), or text to stderr. Calling it
/// twice (as tests may) keeps the first one.
pub fn init(log: &LogConfig) {
    let subscriber = match log.format {
        LogFormat::Json => subscriber(log, std::io::stdout, false),
        LogFormat::Text => subscriber(log, std::io::stderr, std::io::stderr().is_terminal()),
    };
    // Err only means a subscriber is already installed.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The local runner's subscriber: both formats to stderr, so that standard output carries
/// only what a command prints (`cargo run -- invoke`'s JSON result, `runjob`'s report), even
/// with `LOG_FORMAT=json`.
pub fn init_stderr(log: &LogConfig) {
    let ansi = log.format == LogFormat::Text && std::io::stderr().is_terminal();
    let _ = tracing::subscriber::set_global_default(subscriber(log, std::io::stderr, ansi));
}

/// The subscriber `init` installs, writing to `writer`.
pub fn subscriber<W>(log: &LogConfig, writer: W, ansi: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The filter was validated with the rest of the configuration.
    let filter = log
        .filter
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    // The formatter passes everything (its own default stops at INFO); `filter` decides.
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_writer(writer);
    match log.format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish()
                .with(filter),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish().with(filter)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(format: LogFormat, filter: &str, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let log = LogConfig {
            filter: filter.to_owned(),
            format,
        };
        crate::testing::init_logs();
        tracing::subscriber::with_default(subscriber(&log, buffer.clone(), false), emit);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_level_target_message_fields_and_the_lambda_request_id() {
        let out = capture(LogFormat::Json, "info", || {
            // The span lambda_runtime opens around each invocation.
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "8f5e-req-1");
            let _entered = span.enter();
            tracing::info!(email_id = 42, "email sent");
            tracing::debug!("filtered out at info");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "shared::telemetry::tests");
        assert_eq!(line["message"], "email sent");
        assert_eq!(line["email_id"], 42);
        assert_eq!(line["spans"][0]["requestId"], "8f5e-req-1");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_lines_are_readable_and_follow_the_filter() {
        let out = capture(LogFormat::Text, "warn,shared=debug", || {
            tracing::debug!(user = "ada", "shown by the per-module directive");
        });
        assert!(out.contains("DEBUG"), "{out}");
        assert!(
            out.contains("shown by the per-module directive user=\"ada\""),
            "{out}"
        );
        assert!(!out.trim_start().starts_with('{'));
    }
}
