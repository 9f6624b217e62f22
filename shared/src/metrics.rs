//! Business and health metrics in CloudWatch's embedded metric format (EMF): one JSON log line
//! per event, from which CloudWatch Logs extracts the metric. No API call, no agent, no
//! background task: the line goes to stdout with the other logs.
//!
//! Each metric is emitted once, where its event happens (the use case in `services`, the
//! outbox's send path, the job runner, the dead-letter redrive, the Lambda init), as a one-line
//! call: `metrics::count(Metric::SignUps, &[])`.
//!
//! - **Namespace**: one per stack, `METRICS_NAMESPACE` (template.yaml sets the stack name),
//!   set once at init by [`init`].
//! - **Dimensions**: few, because each distinct combination is a billed custom metric: the
//!   email's kind, the job's name, the function's name (cold starts). Nothing per user or per
//!   request; those ids travel as plain members of the line (below), searchable in Logs
//!   Insights but never dimensions.
//! - **The line**: the event carries the EMF object as its `emf` field; in JSON format the log
//!   formatter writes that object itself as the line (not an escaped string inside a log
//!   line, which EMF would not read), adding the fields of the spans it happened in (the Lambda
//!   request id, the API Gateway request id, the SQS message id, the job tick). Locally (text
//!   format) it is an ordinary log line: `INFO metrics: SignUps 1 emf={...}`.
//!
//! ## Why this and not a metrics crate (measured; BENCHMARKS.md, "Metrics and tracing")
//! Three ways to write EMF were built into the same small probe (tokio, the JSON logger, one
//! metric) with this workspace's release profile and timed process against process:
//! - the `metrics` facade with `metrics_cloudwatch_embedded` as its recorder: +139 KB, start
//!   cost within noise; but a global recorder aggregates until something flushes it, so every
//!   entry point (the Lambda handlers, the local runner, the tests) needs its flush hook, and
//!   its Lambda integration wraps `lambda_runtime::run`, which our handlers do not use;
//! - AWS's `metrique` (wide events, `#[metrics]` structs): +131 KB and about 2.5 times the
//!   probe's CPU per start (a background writer thread, started at init), over the 1 ms init
//!   budget; its unit-of-work records fit a service with one request type better than these
//!   scattered business events;
//! - this module (typed names, lines through the existing logger): +12 KB in the probe, start
//!   cost within noise, no new dependency, and the lines are captured by any test that
//!   captures logs.

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The `tracing` target of metric events; the JSON formatter writes their `emf` field as the
/// line, and the log filter always lets them through.
pub const TARGET: &str = "metrics";

/// The namespace when none was configured (tests and tools that skip [`init`]).
pub const DEFAULT_NAMESPACE: &str = "serverless-starter";

static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Sets the namespace of every metric this process emits (the first call wins).
pub fn init(namespace: &str) {
    let _ = NAMESPACE.set(namespace.to_owned());
}

fn namespace() -> &'static str {
    NAMESPACE.get().map_or(DEFAULT_NAMESPACE, String::as_str)
}

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Every metric the app emits. The dashboard in template.yaml names these; a test holds the
/// two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A new account (not a repeated sign-up for a registered address).
    SignUps,
    /// An email address verified.
    Verifications,
    /// A login or token request with wrong credentials, or for an inactive account.
    LoginsRefused,
    /// An email accepted by the provider, by `Kind`.
    EmailsSent,
    /// An email given up for good, by `Kind`.
    EmailsFailed,
    /// A transient send failure; SQS delivers the message again, by `Kind`.
    EmailsRetried,
    // example-app:begin
    /// A place booked in a class.
    Bookings,
    // example-app:end
    /// A scheduled job ran (its tick was not already done), by `Job`.
    JobRuns,
    /// A job's run failed, by `Job`.
    JobFailures,
    /// How long a job's run took, by `Job`.
    JobDuration,
    /// Messages moved from the worker's dead-letter queue back to its queue.
    DeadLettersRedriven,
    /// A Lambda instance started, by `Function`.
    ColdStarts,
}

impl Metric {
    pub const ALL: &[Metric] = &[
        Metric::SignUps,
        Metric::Verifications,
        Metric::LoginsRefused,
        Metric::EmailsSent,
        Metric::EmailsFailed,
        Metric::EmailsRetried,
        // example-app:begin
        Metric::Bookings,
        // example-app:end
        Metric::JobRuns,
        Metric::JobFailures,
        Metric::JobDuration,
        Metric::DeadLettersRedriven,
        Metric::ColdStarts,
    ];

    /// The name CloudWatch shows.
    pub fn name(self) -> &'static str {
        match self {
            Metric::SignUps => "SignUps",
            Metric::Verifications => "Verifications",
            Metric::LoginsRefused => "LoginsRefused",
            Metric::EmailsSent => "EmailsSent",
            Metric::EmailsFailed => "EmailsFailed",
            Metric::EmailsRetried => "EmailsRetried",
            // example-app:begin
            Metric::Bookings => "Bookings",
            // example-app:end
            Metric::JobRuns => "JobRuns",
            Metric::JobFailures => "JobFailures",
            Metric::JobDuration => "JobDuration",
            Metric::DeadLettersRedriven => "DeadLettersRedriven",
            Metric::ColdStarts => "ColdStarts",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::JobDuration => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }
}

/// The dimensions there are (few: each value is a separate, billed metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// An email's kind (`verify_email`, `password_reset`, ...).
    Kind,
    /// A scheduled job's name.
    Job,
    /// The Lambda function's name.
    Function,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Kind => "Kind",
            Dimension::Job => "Job",
            Dimension::Function => "Function",
        }
    }
}

/// One event of `metric` (value 1).
pub fn count(metric: Metric, dimensions: &[(Dimension, &str)]) {
    emit(&[(metric, 1.0)], dimensions);
}

/// A job's run: one line with its run, its failure (0 or 1) and its duration.
pub fn job_run(job: &str, succeeded: bool, elapsed: std::time::Duration) {
    let failures = if succeeded { 0.0 } else { 1.0 };
    emit(
        &[
            (Metric::JobRuns, 1.0),
            (Metric::JobFailures, failures),
            (Metric::JobDuration, elapsed.as_secs_f64() * 1000.0),
        ],
        &[(Dimension::Job, job)],
    );
}

/// Emits one EMF line holding `values`, all with the same `dimensions`.
pub fn emit(values: &[(Metric, f64)], dimensions: &[(Dimension, &str)]) {
    let line = document(namespace(), chrono::Utc::now(), values, dimensions);
    let mut summary = String::new();
    for (metric, value) in values {
        let _ = write!(summary, "{} {value} ", metric.name());
    }
    for (dimension, value) in dimensions {
        let _ = write!(summary, "{}={value} ", dimension.name());
    }
    tracing::info!(target: TARGET, emf = %line, "{}", summary.trim_end());
}

/// The EMF object: `_aws` (timestamp, namespace, the one dimension set, each metric's name
/// and unit), then each dimension's value and each metric's value as members.
pub fn document(
    namespace: &str,
    at: chrono::DateTime<chrono::Utc>,
    values: &[(Metric, f64)],
    dimensions: &[(Dimension, &str)],
) -> Value {
    let definitions: Vec<Value> = values
        .iter()
        .map(|(m, _)| json!({"Name": m.name(), "Unit": m.unit().as_str()}))
        .collect();
    let dimension_set: Vec<&str> = dimensions.iter().map(|(d, _)| d.name()).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_set],
                "Metrics": definitions,
            }],
        }),
    );
    for (dimension, value) in dimensions {
        root.insert(dimension.name().to_owned(), Value::from(*value));
    }
    for (metric, value) in values {
        root.insert(metric.name().to_owned(), json!(value));
    }
    Value::Object(root)
}

/// Checks `line` against the EMF specification's structure: `_aws.Timestamp` (epoch
/// milliseconds), `_aws.CloudWatchMetrics[]` with `Namespace`, `Dimensions` (arrays of member
/// names, each member a string) and `Metrics[]` (`Name`, a known `Unit`), each metric's value a
/// number member of the root. Returns the first violation.
pub fn check_emf(line: &Value) -> Result<(), String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = line.as_object().ok_or("the line is not a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    aws.get("Timestamp")
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .ok_or("_aws.Timestamp must be epoch milliseconds")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("_aws.CloudWatchMetrics must be a non-empty array")?;
    for directive in directives {
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("a directive has no Namespace")?;
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
            return Err(format!("bad Namespace {namespace:?}"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("a directive has no Dimensions array")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("a dimension set has over 30 dimensions".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                if root
                    .get(name)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(format!(
                        "dimension {name} is not a non-empty string member of the root"
                    ));
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty() && m.len() <= 100)
            .ok_or("a directive needs 1 to 100 Metrics")?;
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or("a metric has no Name")?;
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                return Err(format!("metric {name} has an unknown Unit {unit}"));
            }
            if !root.get(name).is_some_and(Value::is_number) {
                return Err(format!("metric {name} has no numeric member of the root"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_passes_the_emf_structure_check() {
        let at = chrono::Utc::now();
        for &metric in Metric::ALL {
            let line = document("my-stack", at, &[(metric, 1.0)], &[]);
            assert_eq!(check_emf(&line), Ok(()), "{line}");
            assert_eq!(line[metric.name()], 1.0);
            assert_eq!(
                line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                "my-stack"
            );
        }
        let job = document(
            "my-stack",
            at,
            &[(Metric::JobRuns, 1.0), (Metric::JobDuration, 12.5)],
            &[(Dimension::Job, "sweep-outbox")],
        );
        assert_eq!(check_emf(&job), Ok(()), "{job}");
        assert_eq!(job["Job"], "sweep-outbox");
        assert_eq!(
            job["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Job"]])
        );
        assert_eq!(
            job["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "JobDuration", "Unit": "Milliseconds"})
        );
    }

    #[test]
    fn the_structure_check_refuses_what_cloudwatch_would_not_extract() {
        let good = document(
            "ns",
            chrono::Utc::now(),
            &[(Metric::EmailsSent, 1.0)],
            &[(Dimension::Kind, "verify_email")],
        );
        type Spoil = fn(&mut Value);
        let cases: &[(&str, Spoil)] = &[
            ("no _aws", |v| {
                v.as_object_mut().unwrap().remove("_aws");
            }),
            ("a timestamp as text", |v| {
                v["_aws"]["Timestamp"] = json!("2026-12-01T00:00:00Z");
            }),
            ("no namespace", |v| {
                v["_aws"]["CloudWatchMetrics"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("Namespace");
            }),
            ("an AWS/ namespace", |v| {
                v["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("AWS/Lambda");
            }),
            ("a dimension without its member", |v| {
                v.as_object_mut().unwrap().remove("Kind");
            }),
            ("a metric without its member", |v| {
                v.as_object_mut().unwrap().remove("EmailsSent");
            }),
            ("a metric value as text", |v| v["EmailsSent"] = json!("1")),
            ("an unknown unit", |v| {
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Emails");
            }),
            ("no metrics", |v| {
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!([]);
            }),
        ];
        assert_eq!(check_emf(&good), Ok(()));
        for (case, spoil) in cases {
            let mut line = good.clone();
            spoil(&mut line);
            assert!(check_emf(&line).is_err(), "{case}: accepted {line}");
        }
    }

    #[test]
    fn metric_names_are_unique() {
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }
}

/// Capturing the metric lines a piece of code emits (tests).
#[cfg(any(test, feature = "testing"))]
pub mod capture {
    use std::future::Future;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing::instrument::WithSubscriber as _;
    use tracing_subscriber::fmt::MakeWriter;

    use crate::config::{LogConfig, LogFormat};

    /// What a log subscriber writes, kept for the test to read.
    #[derive(Clone, Default)]
    pub struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// Everything written so far.
        pub fn text(&self) -> String {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
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

    /// Runs `future` under the JSON log subscriber Lambda gets, and returns its output with
    /// the metric lines written meanwhile. Each line is checked against EMF's structure
    /// ([`super::check_emf`]); a line that fails it panics with the reason.
    pub async fn metric_lines<F: Future>(future: F) -> (F::Output, Vec<Value>) {
        let (output, lines) = json_lines(future).await;
        let metrics = lines
            .into_iter()
            .filter(|v| v.get("_aws").is_some())
            .inspect(|v| {
                if let Err(e) = super::check_emf(v) {
                    panic!("not valid EMF ({e}): {v}");
                }
            })
            .collect();
        (output, metrics)
    }

    /// Runs `future` under the JSON log subscriber Lambda gets (at `info`), and returns its
    /// output with every line written meanwhile, log and metric lines alike.
    pub async fn json_lines<F: Future>(future: F) -> (F::Output, Vec<Value>) {
        // A global subscriber first, or a parallel test can hide lines from this capture
        // (`crate::testing::init_logs` says how).
        crate::testing::init_logs();
        let buffer = Buffer::default();
        let log = LogConfig {
            filter: "info".to_owned(),
            format: LogFormat::Json,
            access_log: false,
            xray_daemon: None,
        };
        let subscriber = crate::telemetry::subscriber(&log, buffer.clone(), false);
        let output = future.with_subscriber(subscriber).await;
        let lines = buffer
            .text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        (output, lines)
    }

    /// The lines that hold `metric`.
    pub fn with_metric(lines: &[Value], metric: super::Metric) -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l.get(metric.name()).is_some())
            .collect()
    }
}
