//! The benchmark suite behind BENCHMARKS.md; run it with `scripts/bench.sh` (release builds,
//! a throwaway PostgreSQL, the package sizes and the worker and scheduler benchmarks).
//! `bench storm ...` is the connection-storm rehearsal instead (`scripts/connection-storm.sh`).

mod lambda;
mod load;
mod setup;
mod storm;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use setup::Database;

#[derive(Debug, Parser)]
struct Args {
    /// Where the release binaries are (web, worker, scheduler, local, hello).
    #[arg(long)]
    bin_dir: PathBuf,
    /// A PostgreSQL server URL; its measurements are skipped without one.
    #[arg(long)]
    postgres: Option<String>,
    /// Cold starts per function and database.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Warm invocations measured per event (after 50 unmeasured).
    #[arg(long, default_value_t = 2000)]
    warm: usize,
    /// Seconds of load per URL.
    #[arg(long, default_value_t = 10)]
    load_seconds: u64,
    /// Package sizes, `name=bytes`, as measured by the script.
    #[arg(long = "zip")]
    zips: Vec<String>,
    /// A file of lines from the worker and scheduler benchmarks, included as they are.
    #[arg(long)]
    include: Option<PathBuf>,
    /// Machine, date and commit, for the report's heading.
    #[arg(long, default_value = "")]
    context: String,
    /// Where to write the report (Markdown).
    #[arg(long)]
    out: PathBuf,
    /// Only these sections (`cold`, `warm`, `load`; comma-separated), for profiling one part.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only the cases whose event label contains this text (e.g. `healthz`).
    #[arg(long)]
    event: Option<String>,
    /// Measures PostgreSQL alone (a Lambda build of the functions, without SQLite).
    #[arg(long)]
    postgres_only: bool,
    /// Records the measured warm invocations with `perf record` (one file per case) here.
    #[arg(long)]
    perf_dir: Option<PathBuf>,
}

impl Args {
    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }

    fn wants(&self, event: &str) -> bool {
        self.event.as_deref().is_none_or(|e| event.contains(e))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A word rather than a clap subcommand: the suite's own arguments stay as they are.
    if std::env::args().nth(1).as_deref() == Some("storm") {
        return storm::run(storm::Args::parse_from(std::env::args().skip(1))).await;
    }
    let args = Args::parse();
    let mut databases = Vec::new();
    if !args.postgres_only {
        databases.push(Database::sqlite().await?);
    }
    if let Some(url) = &args.postgres {
        databases.push(Database::postgres(url).await?);
    }
    let bin = |name: &str| args.bin_dir.join(name);
    let mut report = String::new();
    writeln!(report, "# Benchmarks\n")?;
    writeln!(
        report,
        "Measured by `scripts/bench.sh` (release profile of Cargo.toml, x86_64 binaries on this \
         machine; the Lambda packages are the arm64 builds). {}\n",
        args.context
    )?;

    // 1. Cold starts.
    if args.runs("cold") {
        writeln!(
            report,
            "## Cold start\n\nA new process per run under the Runtime API emulator \
         (`tools/runtime-api-emulator`): from process start to its first `/next` (init) and to \
         its first response. {} runs each; median and 95th percentile. The web function opens \
         its first database connection during init (bounded by \
         `shared::db::FIRST_CONNECTION_WAIT`), so on PostgreSQL its init includes it. The functions get \
         `SSL_CERT_FILE={}`: the AWS SDK loads the system's root certificates at init, and \
         this machine's `/etc/ssl/certs` holds ~150 files where `provided.al2023` has the \
         bundle alone (scanning them all took the web function's init from 12 ms to 19 ms in an earlier run).\n",
            args.runs,
            setup::CA_BUNDLE
        )?;
        writeln!(
            report,
            "| Function | Event | Database | Init median | Init p95 | First response median | First response p95 | Target |\n|---|---|---|---|---|---|---|---|"
        )?;
        for database in &databases {
            let env = setup::lambda_env(database);
            let page = setup::http_event("/classes", "text/html");
            let runs = args.runs;
            let cases: Vec<(&str, &str, Vec<Vec<u8>>, &str)> = vec![
                (
                    "web",
                    "GET /classes (HTML page, 20 classes)",
                    vec![page; runs],
                    "first page <= 12 ms",
                ),
                (
                    "worker",
                    "SQS batch of 10 emails",
                    database.email_batches(10 * runs).await?,
                    "",
                ),
                (
                    "scheduler",
                    "purge-expired",
                    (0..runs)
                        .map(|i| setup::job_event("purge-expired", i))
                        .collect(),
                    "",
                ),
                (
                    "floor",
                    HELLO_EVENT,
                    vec![setup::http_event("/hello", "text/plain"); runs],
                    "",
                ),
                (
                    "floor",
                    FLOOR_EVENT,
                    vec![setup::http_event("/classes", "application/json"); runs],
                    "",
                ),
            ];
            for (function, event, events, target) in cases {
                if !args.wants(event) {
                    continue;
                }
                let samples = lambda::cold_starts(&bin(function), function, &env, events).await?;
                let verdict = if function == "web" {
                    met(stats(samples.iter().map(|s| s.first_response)).0 <= ms(12.0))
                } else {
                    String::new()
                };
                writeln!(
                    report,
                    "| {function} | {event} | {} | {} | {target} {verdict} |",
                    database.label,
                    cold_cells(&samples)
                )?;
            }
            // A database that is down at init (nothing listens on its port): init waits at
            // most `shared::db::FIRST_CONNECTION_WAIT` for it, and the first request answers 503.
            let event = "GET /healthz, database down at init (connection refused)";
            if database.label == "PostgreSQL" && args.wants(event) {
                let mut env = env.clone();
                for (name, value) in &mut env {
                    if name == "DATABASE_URL" {
                        *value = "postgres://starter@127.0.0.1:1/starter".to_owned();
                    }
                }
                let runs = args.runs.min(5);
                let health = setup::http_event("/healthz", "application/json");
                let samples = lambda::cold_starts_answering(
                    &bin("web"),
                    "web",
                    &env,
                    vec![health; runs],
                    Some(503),
                )
                .await?;
                writeln!(
                    report,
                    "| web | {event}, {runs} runs | {} | {} | 503 |",
                    database.label,
                    cold_cells(&samples)
                )?;
            }
            // As deployed: the database URL and SECRET_KEY read from Secrets Manager at init
            // (moto on loopback stands in for it; see BENCHMARKS.md's findings for what a real
            // endpoint adds).
            let event = "GET /classes, secrets read from Secrets Manager (moto)";
            if let Ok(emulator) = std::env::var("AWS_EMULATOR_URL")
                && args.wants(event)
            {
                let env = setup::secrets_env(database, &emulator).await?;
                let page = setup::http_event("/classes", "text/html");
                let samples =
                    lambda::cold_starts(&bin("web"), "web", &env, vec![page; args.runs]).await?;
                writeln!(
                    report,
                    "| web | {event} | {} | {} | init <= 5 ms {} |",
                    database.label,
                    cold_cells(&samples),
                    met(stats(samples.iter().map(|s| s.init)).0 <= ms(5.0))
                )?;
            }
        }
    }

    // 2. Warm cost.
    if args.runs("warm") {
        writeln!(
            report,
            "\n## Warm cost\n\nOne process, 50 invocations to warm up, then {} measured one after \
         another: CPU (user + system, from `/proc/<pid>/stat`) per invocation, invocations per \
         second through the emulator, and the process's peak RSS (`VmHWM`). Logs at `info`, as \
         deployed. The rows of each database climb a ladder: the runtime alone \
         (`tools/bench/src/bin/floor.rs` answering `/hello`: lambda_http and axum, no query), \
         the floor (the same binary running the page's one list query on the same pool, as a \
         bare JSON route: no session, templates, security layers or logs), then the app. The \
         last two PostgreSQL rows are the page in a traced function (`AWS_XRAY_DAEMON_ADDRESS` \
         set, as `Tracing=Active` does; the emulator's trace header unsampled, then sampled, \
         with the X-Ray daemon's stand-in receiving the subsegments: `shared::xray`).\n",
            args.warm
        )?;
        writeln!(
            report,
            "| Event | Database | CPU per invocation | Ratio to floor | Invocations/s | Peak RSS | Target |\n|---|---|---|---|---|---|---|"
        )?;
        // The X-Ray daemon's stand-in for the traced rows (it counts what it receives).
        let daemon = runtime_api_emulator::XrayDaemon::start();
        for database in &databases {
            let env = setup::lambda_env(database);
            let html = || setup::http_event("/classes", "text/html");
            let mut floor_cpu = None;
            // (label, binary, event, the CPU target as a multiple of the floor's, X-Ray:
            // None for no daemon, else whether the invocations are sampled)
            let mut cases = vec![
                (
                    HELLO_EVENT,
                    "floor",
                    setup::http_event("/hello", "text/plain"),
                    None,
                    None,
                ),
                (
                    FLOOR_EVENT,
                    "floor",
                    setup::http_event("/classes", "application/json"),
                    None,
                    None,
                ),
                ("GET /classes (HTML page)", "web", html(), Some(1.3), None),
                (
                    "GET /api/classes (JSON list)",
                    "web",
                    setup::http_event("/api/classes", "application/json"),
                    Some(1.2),
                    None,
                ),
                (
                    "GET /healthz",
                    "web",
                    setup::http_event("/healthz", "application/json"),
                    None,
                    None,
                ),
            ];
            // X-Ray (PostgreSQL alone: the Lambda builds have no SQLite, and SQLite's
            // statements are not sent): a traced function's invocation Lambda did not sample
            // (most of them), and one it sampled.
            if database.label == "PostgreSQL" {
                cases.extend([
                    (TRACED_EVENT, "web", html(), None, Some(false)),
                    (SAMPLED_EVENT, "web", html(), None, Some(true)),
                ]);
            }
            for (label, function, event, goal, xray) in cases {
                if !args.wants(label) {
                    continue;
                }
                let perf = args.perf_dir.as_ref().map(|dir| {
                    let name: String = format!("{}-{label}", database.label)
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    dir.join(format!("{name}.data"))
                });
                let mut env = env.clone();
                if xray.is_some() {
                    env.push(("AWS_XRAY_DAEMON_ADDRESS".into(), daemon.address()));
                }
                let documents_before = daemon.documents(Duration::ZERO).len();
                let w = lambda::warm(
                    &bin(function),
                    function,
                    &env,
                    &event,
                    (50, args.warm),
                    xray == Some(true),
                    perf.as_deref(),
                )
                .await?;
                let cpu = w.cpu_us_per_invocation;
                if label == FLOOR_EVENT {
                    floor_cpu = Some(cpu);
                }
                let ratio = floor_cpu.map(|f| cpu / f);
                let rss_mib = w.peak_rss_kib as f64 / 1024.0;
                let mut target = format!("<= 16 MB RSS {}", met(rss_mib <= 16.0));
                if let (Some(goal), Some(ratio)) = (goal, ratio) {
                    target = format!("<= {goal}x the floor {}, {target}", met(ratio <= goal));
                }
                if xray.is_some() {
                    let sent =
                        daemon.documents(Duration::from_millis(200)).len() - documents_before;
                    let per_invocation = sent as f64 / (50 + args.warm) as f64;
                    target =
                        format!("{per_invocation:.1} subsegments sent per invocation; {target}");
                }
                writeln!(
                    report,
                    "| {label} | {} | {cpu:.0} µs | {} | {:.0} | {rss_mib:.1} MiB | {target} |",
                    database.label,
                    ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
                    w.invocations_per_second
                )?;
            }
        }
    }

    // 3. The local server under load.
    if args.runs("load") {
        writeln!(
            report,
            "\n## Local server under load\n\n`wrk -t2 -c16 -d{}s` on loopback against the release \
         `local` binary (DEBUG off, logs at warn), on each database; in the same run a \
         hello-world axum server (`tools/bench/src/bin/hello.rs`) as the reference, and the \
         floor server (`tools/bench/src/bin/floor.rs`: the page's one list query on a pool of \
         the local runner's size, bare axum, JSON). wrk shares the 2 cores with the server.\n",
            args.load_seconds
        )?;
        let hello_rps = {
            let _server = load::start(&bin("hello"), &[], &[], 3999, "/")?;
            load::wrk("http://127.0.0.1:3999/", args.load_seconds, 16)?
        };
        writeln!(
            report,
            "| URL | Database | Requests/s | Ratio to hello world | Ratio to floor | Target |\n|---|---|---|---|---|---|"
        )?;
        writeln!(
            report,
            "| hello world (axum) | | {hello_rps:.0} | 1.00 | | |"
        )?;
        for database in &databases {
            let floor_rps = {
                let floor_env = [("DATABASE_URL".to_owned(), database.url.clone())];
                let _server = load::start(&bin("floor"), &[], &floor_env, 3997, "/classes")?;
                load::wrk("http://127.0.0.1:3997/classes", args.load_seconds, 16)?
            };
            writeln!(
                report,
                "| {FLOOR_EVENT} | {} | {floor_rps:.0} | {:.2} | 1.00 | |",
                database.label,
                floor_rps / hello_rps
            )?;
            let data_dir = tempfile::tempdir()?;
            let local_env: Vec<(String, String)> = [
                ("DEBUG", "false"),
                (
                    "SECRET_KEY",
                    "k8Jq2vX9mN4pL7rT1wY6zB3cF5hD0gS8aE2uI9oP4lK7jH1mN6bV3c",
                ),
                ("DATABASE_URL", database.url.as_str()),
                ("ALLOWED_HOSTS", "127.0.0.1"),
                ("SITE_URL", "http://127.0.0.1:3998"),
                ("EMAIL_BACKEND", "console"),
                ("DEFAULT_FROM_EMAIL", "noreply@example.com"),
                ("LOG_LEVEL", "warn"),
                ("DATA_DIR", data_dir.path().to_str().unwrap_or("/tmp")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            let _server = load::start(&bin("local"), &["runserver"], &local_env, 3998, "/healthz")?;
            for path in ["/classes", "/api/classes"] {
                let rps = load::wrk(
                    &format!("http://127.0.0.1:3998{path}"),
                    args.load_seconds,
                    16,
                )?;
                let ratio = rps / floor_rps;
                writeln!(
                    report,
                    "| {path} | {} | {rps:.0} | {:.2} | {ratio:.2} | >= 0.8x the floor {} |",
                    database.label,
                    rps / hello_rps,
                    met(ratio >= 0.8)
                )?;
            }
        }
    }

    // 4. Package sizes.
    if !args.zips.is_empty() {
        writeln!(
            report,
            "\n## Package size\n\nThe zip of each function's `bootstrap` as `sam build` \
             (cargo-lambda, arm64) builds it.\n\n| Function | Zip | Target |\n|---|---|---|"
        )?;
        for zip in &args.zips {
            let (name, bytes) = zip.split_once('=').unwrap_or((zip, "0"));
            let mb = bytes.parse::<f64>()? / 1_000_000.0;
            writeln!(
                report,
                "| {name} | {mb:.2} MB | <= 5 MB {} |",
                met(mb <= 5.0)
            )?;
        }
    }

    // 5. The worker and scheduler benchmarks.
    if let Some(path) = &args.include {
        writeln!(
            report,
            "\n## Worker and scheduler\n\nFrom `cargo bench -p worker` and `cargo bench -p scheduler` (release, in-process).\n"
        )?;
        for line in std::fs::read_to_string(path)?
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            writeln!(report, "- {line}")?;
        }
    }

    std::fs::write(&args.out, &report)?;
    print!("{report}");
    Ok(())
}

/// The floor (`tools/bench/src/bin/floor.rs`): the page's one list query, nothing else.
const FLOOR_EVENT: &str = "GET /classes, floor: the same list query, bare axum, JSON";
/// The rung below the floor: the same binary answering without a query.
const HELLO_EVENT: &str = "GET /hello, runtime: lambda_http + axum, no query";
/// The page with `AWS_XRAY_DAEMON_ADDRESS` set, as with `Tracing=Active`, not sampled.
const TRACED_EVENT: &str = "GET /classes (HTML page), traced function, invocation not sampled";
/// The same, every invocation sampled: its statements sent to the daemon's stand-in.
const SAMPLED_EVENT: &str = "GET /classes (HTML page), traced, sampled: subsegments sent";

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1000.0)
}

/// Median and 95th percentile (nearest rank).
fn stats(samples: impl Iterator<Item = Duration>) -> (Duration, Duration) {
    let mut v: Vec<Duration> = samples.collect();
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.5), rank(0.95))
}

/// A cold-start row's four figures: init median and p95, first response median and p95.
fn cold_cells(samples: &[lambda::Cold]) -> String {
    let init = stats(samples.iter().map(|s| s.init));
    let first = stats(samples.iter().map(|s| s.first_response));
    format!(
        "{} | {} | {} | {}",
        show(init.0),
        show(init.1),
        show(first.0),
        show(first.1)
    )
}

fn show(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn met(ok: bool) -> String {
    if ok {
        "(met)".into()
    } else {
        "(**missed**)".into()
    }
}
