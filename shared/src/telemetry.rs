//! Logging with `tracing`: readable lines on a terminal, JSON lines in Lambda (or with
//! `LOG_FORMAT=json`). Lambda sends stdout to CloudWatch Logs, so no agent is needed; the
//! local runner logs to stderr alone ([`init_stderr`]).
//!
//! JSON lines carry `timestamp`, `level`, `target`, the event's fields (`message` among them)
//! and `spans`, the fields of the spans the event happened in: the Lambda runtime's span holds
//! `requestId`, so every line of an invocation can be found by its request id.
//!
//! Metric events ([`crate::metrics`]) pass whatever the filter says, and in JSON are written
//! as their embedded-metric-format object (with the fields of their spans) instead of a log
//! line, so that CloudWatch extracts them.
//!
//! In a function Lambda traces (`AWS_XRAY_DAEMON_ADDRESS` set), the same subscriber also sends
//! X-Ray the statements and AWS calls of sampled invocations ([`crate::xray`]); the log's lines
//! stay what its filter says.

use std::io::IsTerminal as _;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::{LookupSpan, Registry};

use crate::config::{LogConfig, LogFormat};
use crate::{metrics, xray};

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

/// The subscriber `init` installs, writing to `writer`: the log, and the X-Ray exporter when
/// `log.xray_daemon` is set, behind one filter ([`xray::Gate`]). The events the gate lets
/// through for the exporter alone (sqlx's statements at `debug`) are not written.
pub fn subscriber<W>(log: &LogConfig, writer: W, ansi: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The filter was validated with the rest of the configuration.
    let filter = log
        .filter
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    // Metrics are not logs: a quieter log level must not stop them (`metrics=off` still does).
    let filter = if log.filter.contains(metrics::TARGET) {
        filter
    } else {
        filter.with_target(metrics::TARGET, tracing::Level::INFO)
    };
    let gate = xray::Gate::new(filter.clone(), log.xray_daemon.is_some());
    let registry = Registry::default().with(log.xray_daemon.map(xray::Exporter::new));
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match log.format {
        LogFormat::Json => Box::new(
            registry
                .with(
                    layer.fmt_fields(JsonFields::new()).event_format(LogOnly {
                        log: filter,
                        format: MetricLines(
                            tracing_subscriber::fmt::format()
                                .json()
                                .flatten_event(true)
                                .with_current_span(false)
                                .with_span_list(true),
                        ),
                    }),
                )
                .with(gate),
        ),
        LogFormat::Text => Box::new(
            registry
                .with(layer.with_ansi(ansi).event_format(LogOnly {
                    log: filter,
                    format: tracing_subscriber::fmt::format(),
                }))
                .with(gate),
        ),
    }
}

/// An event format that writes only the events the log's own filter lets through: the others
/// were let through for the X-Ray exporter.
struct LogOnly<F> {
    log: Targets,
    format: F,
}

impl<S, N, F> FormatEvent<S, N> for LogOnly<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        if self.log.would_enable(meta.target(), meta.level()) {
            self.format.format_event(ctx, writer, event)
        } else {
            // Nothing formatted, nothing written.
            Ok(())
        }
    }
}

/// The JSON event format, except for metric events: their `emf` object is the line, with the
/// fields of the spans they happened in added as members (outermost span first; a name the
/// object already has is kept).
struct MetricLines<F>(F);

impl<S, N, F> FormatEvent<S, N> for MetricLines<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target() != metrics::TARGET {
            return self.0.format_event(ctx, writer, event);
        }
        let mut emf = EmfField::default();
        event.record(&mut emf);
        let Some(Value::Object(mut line)) = emf.0.and_then(|s| serde_json::from_str(&s).ok())
        else {
            return self.0.format_event(ctx, writer, event);
        };
        for span in ctx.event_scope().into_iter().flat_map(|s| s.from_root()) {
            let extensions = span.extensions();
            let fields = extensions
                .get::<FormattedFields<N>>()
                .and_then(|f| serde_json::from_str::<Value>(f.as_str()).ok());
            if let Some(Value::Object(fields)) = fields {
                for (name, value) in fields {
                    line.entry(name).or_insert(value);
                }
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The `emf` field of a metric event.
#[derive(Default)]
struct EmfField(Option<String>);

impl Visit for EmfField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "emf" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "emf" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::capture::Buffer;

    fn capture(format: LogFormat, filter: &str, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let log = LogConfig {
            filter: filter.to_owned(),
            format,
            access_log: true,
            xray_daemon: None,
        };
        crate::testing::init_logs();
        tracing::subscriber::with_default(subscriber(&log, buffer.clone(), false), emit);
        buffer.text()
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

    #[test]
    fn a_metric_in_json_is_an_emf_line_carrying_its_spans_ids() {
        let out = capture(LogFormat::Json, "info", || {
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "8f5e-req-1");
            let _entered = span.enter();
            crate::metrics::count(
                crate::metrics::Metric::EmailsSent,
                &[(crate::metrics::Dimension::Kind, "verify_email")],
            );
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(crate::metrics::check_emf(&line), Ok(()), "{line}");
        assert_eq!(line["EmailsSent"], 1.0);
        assert_eq!(line["Kind"], "verify_email");
        assert_eq!(line["requestId"], "8f5e-req-1");
        assert!(line.get("level").is_none(), "not a log line: {line}");
    }

    #[test]
    fn metrics_pass_a_quieter_log_level_unless_switched_off_by_name() {
        let emit = || crate::metrics::count(crate::metrics::Metric::SignUps, &[]);
        let quiet = capture(LogFormat::Json, "error", emit);
        assert!(quiet.contains(r#""SignUps":1"#), "{quiet}");
        let off = capture(LogFormat::Json, "info,metrics=off", emit);
        assert_eq!(off, "");
    }

    #[test]
    fn a_metric_in_text_is_a_readable_log_line() {
        let out = capture(LogFormat::Text, "info", || {
            crate::metrics::count(crate::metrics::Metric::SignUps, &[]);
        });
        assert!(out.contains("metrics: SignUps 1"), "{out}");
    }
}
