//! X-Ray subsegments for the SQL statements and AWS SDK calls of an invocation Lambda sampled.
//!
//! With active tracing (template.yaml's `Tracing=Active`) Lambda records the function's own
//! segment and hands each invocation a trace header (`Root=...;Parent=...;Sampled=1`), which
//! `lambda_runtime` puts on its `Lambda runtime invoke` span as `xrayTraceId`. For a sampled
//! invocation, [`Exporter`] sends one subsegment document under that segment for
//! - each AWS SDK operation: the SDK's own `debug` span (`SQS.SendMessage`, with `rpc.service`
//!   and `rpc.method`), timed from its opening to its closing, retries included;
//! - each SQL statement: sqlx's `sqlx::query` event, which carries the statement (with its
//!   placeholders, never the values bound to them) and how long it took.
//!
//! The documents go as UDP datagrams to the X-Ray daemon Lambda runs beside every traced
//! function (`AWS_XRAY_DAEMON_ADDRESS`), the protocol the X-Ray SDKs use: no API call, no
//! extension, no thread; the socket is opened at the first document, so init pays nothing.
//! An invocation that was not sampled costs a filter check per statement and per SDK call
//! (BENCHMARKS.md, "Metrics and tracing").
//!
//! [`Gate`], the subscriber's filter, lets the SDK's `debug` spans and sqlx's `debug` events
//! through in a sampled invocation only, and the log's formatter skips the events its own
//! filter would not have let through ([`crate::telemetry`]), so the log is unchanged. SQLite runs
//! each statement on a thread of its own, outside the invocation's spans, so only PostgreSQL's
//! statements (the database in AWS; the Lambda builds have no SQLite) are sent.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// The span `lambda_runtime` opens around each invocation.
pub const INVOKE_SPAN: &str = "Lambda runtime invoke";
/// The target of the event sqlx writes when a statement ends.
const SQL_TARGET: &str = "sqlx::query";
/// Each datagram starts with this line (the daemon's protocol).
const DATAGRAM_HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";
/// A statement longer than this is cut (a datagram, like a segment document, is at most 64 KB).
const MAX_STATEMENT_CHARS: usize = 4_000;

/// `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or `tcp:host:port udp:host:port` (the daemon's two
/// listeners; documents go to the UDP one). The host is an IP address, as Lambda sets it.
pub fn parse_daemon_address(value: &str) -> Result<SocketAddr, String> {
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value.trim());
    udp.parse().map_err(|_| {
        format!(
            "must be host:port or tcp:host:port udp:host:port with an IP address, got {value:?}"
        )
    })
}

/// The trace an invocation belongs to, from its `xrayTraceId`: `Some` only when sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// `1-5759e988-bd862e3fe1be46a994272793`
    pub root: String,
    /// The id of the function's segment, the parent of ours.
    pub parent: String,
}

impl TraceHeader {
    pub fn sampled(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) if !v.is_empty() => root = Some(v),
                Some(("Parent", v)) if !v.is_empty() => parent = Some(v),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        match (root, parent, sampled) {
            (Some(root), Some(parent), true) => Some(Self {
                root: root.to_owned(),
                parent: parent.to_owned(),
            }),
            _ => None,
        }
    }
}

/// The subscriber's one filter: the log's, and, when `xray` is on, what [`Exporter`] needs on top
/// of it: the invocation span (it carries the trace header), and the SDK's operation spans and
/// sqlx's statement events inside a sampled invocation.
///
/// One filter for the whole subscriber rather than a filter per layer: with two per-layer
/// filters, every call site one passes and the other does not is decided again at every call,
/// and every span entered is looked up once more per filter; that cost a warm page about
/// 15 µs (BENCHMARKS.md, "Metrics and tracing"). Here the log's call sites are decided once,
/// as before, and only the exporter's few are decided per call.
pub struct Gate {
    log: Targets,
    xray: bool,
}

impl Gate {
    pub fn new(log: Targets, xray: bool) -> Self {
        Self { log, xray }
    }

    /// Whether the exporter may want this call site (the log aside).
    fn exporters(&self, meta: &Metadata<'_>) -> bool {
        self.xray && (is_invoke_span(meta) || is_sdk_operation(meta) || meta.target() == SQL_TARGET)
    }
}

impl<S> Layer<S> for Gate
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.log.would_enable(meta.target(), meta.level()) {
            Interest::always()
        } else if self.exporters(meta) {
            // Decided per call: only a sampled invocation's.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if self.log.would_enable(meta.target(), meta.level()) {
            return true;
        }
        self.exporters(meta)
            && (is_invoke_span(meta) || ctx.lookup_current().is_some_and(in_sampled_invocation))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let log = Layer::<S>::max_level_hint(&self.log).unwrap_or(LevelFilter::TRACE);
        // sqlx writes its statements at debug, the SDK opens its spans at debug.
        Some(if self.xray {
            log.max(LevelFilter::DEBUG)
        } else {
            log
        })
    }
}

fn is_invoke_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == INVOKE_SPAN
}

/// The span each generated SDK operation opens (`aws_sdk_sqs::operation::send_message`,
/// `SQS.SendMessage`, with `rpc.system = "aws-api"`); the runtime's inner spans are left out.
fn is_sdk_operation(meta: &Metadata<'_>) -> bool {
    meta.is_span()
        && meta.target().starts_with("aws_sdk_")
        && meta.fields().field("rpc.system").is_some()
}

/// On the invocation span, when Lambda sampled it.
struct Sampled(TraceHeader);

/// Whether `span` is, or is inside, an invocation Lambda sampled.
fn in_sampled_invocation<S>(span: SpanRef<'_, S>) -> bool
where
    S: for<'a> LookupSpan<'a>,
{
    span.scope()
        .any(|span| span.extensions().get::<Sampled>().is_some())
}

/// On an SDK operation's span while it runs.
struct Open {
    id: String,
    start: f64,
    service: String,
    operation: String,
}

/// The trace and the parent segment for something happening in `span`: the innermost open SDK
/// call's subsegment, or the function's segment.
fn trace_of<S>(span: SpanRef<'_, S>) -> Option<(String, String)>
where
    S: for<'a> LookupSpan<'a>,
{
    let mut parent = None;
    for span in span.scope() {
        let extensions = span.extensions();
        if let Some(open) = extensions.get::<Open>() {
            parent.get_or_insert_with(|| open.id.clone());
        }
        if let Some(Sampled(trace)) = extensions.get::<Sampled>() {
            return Some((
                trace.root.clone(),
                parent.unwrap_or_else(|| trace.parent.clone()),
            ));
        }
    }
    None
}

/// Sends the subsegments; see the module's documentation. It sees what [`Gate`] lets through
/// and ignores all but its own.
pub struct Exporter {
    daemon: SocketAddr,
    socket: OnceLock<Option<UdpSocket>>,
}

impl Exporter {
    pub fn new(daemon: SocketAddr) -> Self {
        Self {
            daemon,
            socket: OnceLock::new(),
        }
    }

    fn send(&self, document: &Value) {
        let socket = self.socket.get_or_init(|| {
            let local: SocketAddr = if self.daemon.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).ok()?;
            socket.set_nonblocking(true).ok()?;
            Some(socket)
        });
        if let Some(socket) = socket {
            let datagram = format!("{DATAGRAM_HEADER}{document}");
            // Best effort, as in the X-Ray SDKs: a trace is never worth failing a request.
            let _ = socket.send_to(datagram.as_bytes(), self.daemon);
        }
    }
}

impl<S> Layer<S> for Exporter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let (invoke, sdk) = (
            is_invoke_span(attrs.metadata()),
            is_sdk_operation(attrs.metadata()),
        );
        if !invoke && !sdk {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if invoke {
            if let Some(trace) = fields
                .xray_trace_id
                .as_deref()
                .and_then(TraceHeader::sampled)
            {
                span.extensions_mut().insert(Sampled(trace));
            }
        } else if span.parent().is_some_and(in_sampled_invocation) {
            // (With the log at debug, the SDK's spans also open outside sampled invocations.)
            span.extensions_mut().insert(Open {
                id: new_id(),
                start: now(),
                service: fields.service.unwrap_or_default(),
                operation: fields.operation.unwrap_or_default(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx
            .span(&id)
            .filter(|span| is_sdk_operation(span.metadata()))
        else {
            return;
        };
        let Some(open) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        let Some(parent_span) = span.parent() else {
            return;
        };
        let Some((trace_id, parent_id)) = trace_of(parent_span) else {
            return;
        };
        self.send(&json!({
            "type": "subsegment",
            "id": open.id,
            "trace_id": trace_id,
            "parent_id": parent_id,
            "name": if open.service.is_empty() { "AWS" } else { &open.service },
            "start_time": open.start,
            "end_time": now(),
            "namespace": "aws",
            "aws": { "operation": open.operation },
        }));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != SQL_TARGET {
            return;
        }
        let Some((trace_id, parent_id)) = ctx.event_span(event).and_then(trace_of) else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let end = now();
        // sqlx writes the whole statement only when it is longer than its summary (the first
        // four words).
        let statement = match fields.statement.as_deref().map(str::trim) {
            Some(full) if !full.is_empty() => full.to_owned(),
            _ => fields.summary.unwrap_or_default(),
        };
        self.send(&json!({
            "type": "subsegment",
            "id": new_id(),
            "trace_id": trace_id,
            "parent_id": parent_id,
            // One name for every statement: X-Ray draws a node in its trace map for each name
            // under `remote`. Only PostgreSQL reaches here (see the module's documentation).
            "name": "PostgreSQL",
            "start_time": end - fields.elapsed_secs.unwrap_or(0.0),
            "end_time": end,
            "namespace": "remote",
            "sql": {
                "database_type": "PostgreSQL",
                "sanitized_query": cut(&statement, MAX_STATEMENT_CHARS),
            },
            "metadata": { "sqlx": {
                "rows_returned": fields.rows_returned,
                "rows_affected": fields.rows_affected,
            }},
        }));
    }
}

/// The fields the layer reads, from the spans and events it sees.
#[derive(Default)]
struct Fields {
    xray_trace_id: Option<String>,
    service: Option<String>,
    operation: Option<String>,
    summary: Option<String>,
    statement: Option<String>,
    elapsed_secs: Option<f64>,
    rows_returned: Option<u64>,
    rows_affected: Option<u64>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "xrayTraceId" => &mut self.xray_trace_id,
            "rpc.service" => &mut self.service,
            "rpc.method" => &mut self.operation,
            "summary" => &mut self.summary,
            "db.statement" => &mut self.statement,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_returned" => self.rows_returned = Some(value),
            "rows_affected" => self.rows_affected = Some(value),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // sqlx records its strings as `String` values (record_str); anything else is a
        // `Display`/`Debug` value, the SDK's `Cow<str>` among them.
        if matches!(field.name(), "xrayTraceId" | "rpc.service" | "rpc.method") {
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            self.record_str(field, text.trim_matches('"'));
        }
    }
}

fn cut(text: &str, max_chars: usize) -> &str {
    text.char_indices()
        .nth(max_chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// A subsegment id: 16 hex digits.
fn new_id() -> String {
    format!("{:016x}", getrandom::u64().unwrap_or_default())
}

/// Seconds since the epoch, to the microsecond, as X-Ray wants them.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sampled_header_with_root_and_parent_is_traced() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:0:0";
        assert_eq!(
            TraceHeader::sampled(header),
            Some(TraceHeader {
                root: "1-5759e988-bd862e3fe1be46a994272793".into(),
                parent: "53995c3f42cd8ad8".into(),
            })
        );
        for header in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            "Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "",
        ] {
            assert_eq!(TraceHeader::sampled(header), None, "{header}");
        }
    }

    #[test]
    fn the_daemon_address_is_either_form_lambda_may_set() {
        let udp: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(parse_daemon_address("169.254.79.129:2000"), Ok(udp));
        assert_eq!(
            parse_daemon_address("tcp:127.0.0.1:2000 udp:169.254.79.129:2000"),
            Ok(udp)
        );
        let error = parse_daemon_address("xray.local:2000").unwrap_err();
        assert!(error.contains("host:port"), "{error}");
    }

    #[test]
    fn statements_are_cut_on_a_character_boundary_and_ids_are_16_hex_digits() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("hé", 5), "hé");
        let id = new_id();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
}
