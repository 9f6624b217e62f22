//! The connection-storm rehearsal (`bench storm`, run by `scripts/connection-storm.sh`; the
//! figures and the sizing rule it supports are in docs/scaling.md).
//!
//! 1. As a superuser of the given server: a login role for the app (not a superuser, so
//!    `superuser_reserved_connections` applies to it as to an RDS application user), with its
//!    `idle_session_timeout`, and a new database, migrated and seeded with classes.
//! 2. N `web` processes (the debug or release binary), each under its own Runtime API emulator
//!    with the environment a deployed function gets: N Lambda instances of one function.
//!    Nothing is warmed: each makes its first connection during the burst.
//! 3. The burst: every instance at once, each serving its share of the requests one after
//!    another, as a Lambda instance does (`/api/classes` and the `/classes` page, alternately).
//!    Every answer must be a 200, or a 503 with `Retry-After`, within the function timeout:
//!    never a 500, another status, a function error or no answer. A superuser connection
//!    (which the reserved slots let in) samples `pg_stat_activity` meanwhile.
//! 4. The recovery: every instance is asked again, honouring `Retry-After` on a 503, until it
//!    answers 200, within a deadline: no instance is left with a pool that cannot serve.
//!
//! Each violated rule prints one line, and the run fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use runtime_api_emulator::{Emulator, FUNCTION_TIMEOUT, Function, Outcome};
use serde_json::Value;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::task::JoinSet;

use crate::setup;

/// The app's role on the rehearsal's server.
const ROLE: &str = "storm_app";
/// How often the server's connections are counted during the burst.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The whole rehearsal, setup to recovery, is abandoned (and fails) after this.
const WHOLE_RUN: Duration = Duration::from_secs(240);

#[derive(Debug, clap::Parser)]
#[command(name = "bench storm")]
pub struct Args {
    /// Where the `web` binary is.
    #[arg(long)]
    bin_dir: PathBuf,
    /// A PostgreSQL server URL, as a superuser (it creates the app's role and database).
    #[arg(long)]
    postgres: String,
    /// Web processes (Lambda instances), each under its own emulator.
    #[arg(long, default_value_t = 60)]
    functions: usize,
    /// Requests in the burst, spread evenly over the instances.
    #[arg(long, default_value_t = 600)]
    requests: usize,
    /// The app role's `idle_session_timeout`, in seconds (0: none).
    #[arg(long, default_value_t = 10)]
    idle_session_timeout: u64,
    /// How long the recovery may take, in seconds.
    #[arg(long, default_value_t = 90)]
    recovery_seconds: u64,
}

/// What one invocation ended with.
#[derive(Debug, Clone)]
enum Answer {
    /// `retry_after`: the header's value in seconds, if there is one.
    Http {
        status: u16,
        retry_after: Option<u64>,
    },
    FunctionError(String),
    /// No answer within the function timeout.
    Hung,
}

#[derive(Debug, Clone)]
struct Sample {
    function: usize,
    latency: Duration,
    answer: Answer,
}

struct Instance {
    emulator: Emulator,
    function: Function,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match tokio::time::timeout(WHOLE_RUN, rehearse(&args)).await {
        Ok(result) => result,
        Err(_) => bail!("the rehearsal did not finish within {WHOLE_RUN:?}"),
    }
}

async fn rehearse(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let admin = PgConnectOptions::from_str(&args.postgres)?;
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .context("connecting to the PostgreSQL server as a superuser")?;
    let max_connections: String = sqlx::query_scalar("show max_connections")
        .fetch_one(&mut conn)
        .await?;
    let reserved: String = sqlx::query_scalar("show superuser_reserved_connections")
        .fetch_one(&mut conn)
        .await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
            .bind(ROLE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create role {ROLE} login createdb"
        )))
        .execute(&mut conn)
        .await?;
    }
    // A setting of the role, as an operator would set it (`alter role ... set`), so that only
    // the app's sessions end when idle, not the sampling connection's.
    let idle = if args.idle_session_timeout == 0 {
        "0".to_owned()
    } else {
        format!("{}s", args.idle_session_timeout)
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter role {ROLE} set idle_session_timeout = '{idle}'"
    )))
    .execute(&mut conn)
    .await?;
    let mut app_server = url::Url::parse(&args.postgres)?;
    app_server
        .set_username(ROLE)
        .map_err(|()| anyhow::anyhow!("the PostgreSQL URL cannot carry a user name"))?;
    let database = setup::Database::postgres(app_server.as_str()).await?;
    // The seeding pool's connections would count against the app's.
    database.db.close().await;
    println!(
        "server: max_connections {max_connections}, superuser_reserved_connections {reserved}, \
         role {ROLE} (idle_session_timeout {idle}); {} classes seeded",
        setup::CLASSES
    );

    let env = setup::lambda_env(&database);
    let web = args.bin_dir.join("web");
    let mut instances = Vec::with_capacity(args.functions);
    for i in 0..args.functions {
        let emulator = Emulator::start(&format!("web-{i}")).await;
        let function = emulator.spawn(&web, env.iter().cloned());
        instances.push(Arc::new(Instance { emulator, function }));
    }
    println!(
        "{} web processes started, each under its own emulator",
        instances.len()
    );

    // 2. The burst, with the server's connections sampled.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_connections(conn, sampling.clone()));
    let burst_started = Instant::now();
    let mut burst = JoinSet::new();
    for (i, instance) in instances.iter().enumerate() {
        let share =
            args.requests / args.functions + usize::from(i < args.requests % args.functions);
        let instance = instance.clone();
        burst.spawn(async move {
            let mut samples = Vec::with_capacity(share);
            for n in 0..share {
                let (path, accept) = if (i + n) % 2 == 0 {
                    ("/api/classes", "application/json")
                } else {
                    ("/classes", "text/html")
                };
                samples.push(invoke(&instance, i, path, accept).await);
            }
            samples
        });
    }
    let mut samples: Vec<Sample> = Vec::with_capacity(args.requests);
    while let Some(done) = burst.join_next().await {
        samples.extend(done.context("a burst task")?);
    }
    let burst_wall = burst_started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let peaks = sampler.await.context("the sampling task")??;

    // 3. The recovery: each instance until it answers 200, honouring Retry-After.
    let recovery_started = Instant::now();
    let deadline = recovery_started + Duration::from_secs(args.recovery_seconds);
    let mut recovery = JoinSet::new();
    for (i, instance) in instances.iter().enumerate() {
        let instance = instance.clone();
        recovery.spawn(async move { recover(&instance, i, deadline).await });
    }
    let mut recovered: Vec<Recovery> = Vec::with_capacity(instances.len());
    while let Some(done) = recovery.join_next().await {
        recovered.push(done.context("a recovery task")?);
    }
    let recovery_wall = recovery_started.elapsed();

    let exited: Vec<usize> = (0..instances.len())
        .filter(|&i| !instances[i].function.pid().is_some_and(is_running))
        .collect();

    // 4. Figures and verdict.
    report(&samples, burst_wall, &peaks, &recovered, recovery_wall);
    println!("causes of the 503s, as the functions logged them:");
    for (cause, n) in unavailable_causes(&instances) {
        println!("  {n} x {cause}");
    }
    println!("total wall time: {:.1} s", started.elapsed().as_secs_f64());
    let violations = violations(&samples, &recovered, &exited, args);
    if violations.is_empty() {
        println!("connection storm: ok");
        Ok(())
    } else {
        for v in &violations {
            println!("VIOLATION: {v}");
        }
        if let Some(i) = first_failing(&samples, &recovered) {
            println!(
                "--- output of web-{i} (last 40 lines) ---\n{}",
                tail(&instances[i].function.output(), 40)
            );
        }
        bail!(
            "connection storm: {} kind(s) of violation",
            violations.len()
        )
    }
}

async fn invoke(instance: &Instance, function: usize, path: &str, accept: &str) -> Sample {
    let started = Instant::now();
    let outcome = instance
        .emulator
        .invoke(setup::http_event(path, accept))
        .await;
    Sample {
        function,
        latency: started.elapsed(),
        answer: answer(outcome),
    }
}

fn answer(outcome: Option<Outcome>) -> Answer {
    match outcome {
        None => Answer::Hung,
        Some(Outcome::Error { error_type, body }) => {
            Answer::FunctionError(format!("{}: {body}", error_type.unwrap_or_default()))
        }
        Some(Outcome::Response(body)) => {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let Some(status) = value["statusCode"].as_u64() else {
                return Answer::FunctionError(format!(
                    "not an HTTP response: {}",
                    String::from_utf8_lossy(&body)
                ));
            };
            // HTTP API (payload 2.0) responses carry `headers`; the other sources may use
            // `multiValueHeaders`.
            let retry_after = ["headers", "multiValueHeaders"].iter().find_map(|field| {
                let (_, value) = value[*field]
                    .as_object()?
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))?;
                let text = value.as_str().or_else(|| value[0].as_str())?;
                // A Retry-After that is not a number of seconds counts as none.
                text.trim().parse().ok()
            });
            Answer::Http {
                status: u16::try_from(status).unwrap_or(0),
                retry_after,
            }
        }
    }
}

/// The most connections the server held at once while the burst ran.
#[derive(Debug, Default)]
struct Peaks {
    app: i64,
    all_clients: i64,
    samples: usize,
}

async fn sample_connections(
    mut conn: PgConnection,
    running: Arc<AtomicBool>,
) -> anyhow::Result<Peaks> {
    let mut peaks = Peaks::default();
    // Bounded by the whole run's deadline as well as by the flag.
    let until = Instant::now() + WHOLE_RUN;
    while running.load(Ordering::Relaxed) && Instant::now() < until {
        let (app, all): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where usename = $1), \
                    count(*) filter (where backend_type = 'client backend') \
             from pg_stat_activity",
        )
        .bind(ROLE)
        .fetch_one(&mut conn)
        .await
        .context("sampling pg_stat_activity")?;
        peaks.app = peaks.app.max(app);
        peaks.all_clients = peaks.all_clients.max(all);
        peaks.samples += 1;
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    conn.close().await.ok();
    Ok(peaks)
}

/// How an instance's recovery went.
#[derive(Debug)]
struct Recovery {
    function: usize,
    /// Attempts until the 200 (or until giving up).
    attempts: usize,
    /// From the start of the recovery to the 200; `None` if none came before the deadline.
    served_after: Option<Duration>,
    /// Answers other than a 200 or a 503 with Retry-After.
    bad: Vec<Answer>,
}

async fn recover(instance: &Instance, function: usize, deadline: Instant) -> Recovery {
    let started = Instant::now();
    let mut attempts = 0;
    let mut bad = Vec::new();
    // Bounded by the deadline; the count is a second bound (one attempt takes at least the
    // acquire timeout or a Retry-After pause unless it succeeds).
    while Instant::now() < deadline && attempts < 100 {
        attempts += 1;
        let sample = invoke(instance, function, "/api/classes", "application/json").await;
        match sample.answer {
            Answer::Http { status: 200, .. } => {
                return Recovery {
                    function,
                    attempts,
                    served_after: Some(started.elapsed()),
                    bad,
                };
            }
            Answer::Http {
                status: 503,
                retry_after: Some(secs),
            } => {
                let pause = Duration::from_secs(secs);
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(pause.min(left)).await;
            }
            other => {
                bad.push(other);
                break;
            }
        }
    }
    Recovery {
        function,
        attempts,
        served_after: None,
        bad,
    }
}

/// The `error` of each "dependency unavailable" line the functions logged (JSON lines, as in
/// Lambda), counted.
fn unavailable_causes(instances: &[Arc<Instance>]) -> BTreeMap<String, usize> {
    let mut causes = BTreeMap::new();
    for instance in instances {
        for line in instance.function.output().lines() {
            let Ok(log) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if log["message"] == "dependency unavailable" {
                let cause = log["error"]
                    .as_str()
                    .unwrap_or("(no error field)")
                    .to_owned();
                *causes.entry(cause).or_default() += 1;
            }
        }
    }
    causes
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s != "Z"))
        })
        .unwrap_or(false)
}

fn report(
    samples: &[Sample],
    burst_wall: Duration,
    peaks: &Peaks,
    recovered: &[Recovery],
    recovery_wall: Duration,
) {
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples {
        let key = match &s.answer {
            Answer::Http {
                status,
                retry_after: Some(secs),
            } => format!("{status} (Retry-After: {secs})"),
            Answer::Http { status, .. } => status.to_string(),
            Answer::FunctionError(_) => "function error".into(),
            Answer::Hung => "no answer".into(),
        };
        *by_status.entry(key).or_default() += 1;
    }
    let counts: Vec<String> = by_status.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!(
        "burst: {} requests over {} instances in {:.1} s; {}",
        samples.len(),
        samples
            .iter()
            .map(|s| s.function)
            .max()
            .map_or(0, |m| m + 1),
        burst_wall.as_secs_f64(),
        counts.join(", ")
    );
    let line = |label: &str, filter: &dyn Fn(&Sample) -> bool| {
        let latencies: Vec<Duration> = samples
            .iter()
            .filter(|s| filter(s))
            .map(|s| s.latency)
            .collect();
        if let Some((p50, p99, max)) = percentiles(latencies) {
            println!(
                "  latency {label}: p50 {} / p99 {} / max {}",
                ms(p50),
                ms(p99),
                ms(max)
            );
        }
    };
    line("all", &|_| true);
    line("200", &|s| {
        matches!(s.answer, Answer::Http { status: 200, .. })
    });
    line("503", &|s| {
        matches!(s.answer, Answer::Http { status: 503, .. })
    });
    let served: Vec<usize> = {
        let mut per: BTreeMap<usize, usize> = BTreeMap::new();
        for s in samples {
            if matches!(s.answer, Answer::Http { status: 200, .. }) {
                *per.entry(s.function).or_default() += 1;
            }
        }
        per.into_values().collect()
    };
    println!(
        "  instances that served at least one 200 during the burst: {}",
        served.len()
    );
    println!(
        "  server connections at peak ({} samples of pg_stat_activity): app role {}, all client \
         backends {} (the sampler's own included)",
        peaks.samples, peaks.app, peaks.all_clients
    );
    let first_try = recovered
        .iter()
        .filter(|r| r.served_after.is_some() && r.attempts == 1)
        .count();
    let served_after: Vec<Duration> = recovered.iter().filter_map(|r| r.served_after).collect();
    let attempts = recovered.iter().map(|r| r.attempts).max().unwrap_or(0);
    println!(
        "recovery: {}/{} instances answered 200 ({first_try} at the first attempt; at most {attempts} \
         attempts) in {:.1} s{}",
        served_after.len(),
        recovered.len(),
        recovery_wall.as_secs_f64(),
        percentiles(served_after).map_or(String::new(), |(p50, _, max)| format!(
            "; time to 200: p50 {} / max {}",
            ms(p50),
            ms(max)
        ))
    );
}

fn violations(
    samples: &[Sample],
    recovered: &[Recovery],
    exited: &[usize],
    args: &Args,
) -> Vec<String> {
    let mut v = Vec::new();
    let count = |f: &dyn Fn(&Answer) -> bool| samples.iter().filter(|s| f(&s.answer)).count();
    let server_errors =
        count(&|a| matches!(a, Answer::Http { status, .. } if *status >= 500 && *status != 503));
    if server_errors > 0 {
        v.push(format!(
            "{server_errors} burst requests answered a 5xx other than 503 (a 500 is never right)"
        ));
    }
    let other =
        count(&|a| matches!(a, Answer::Http { status, .. } if *status < 500 && *status != 200));
    if other > 0 {
        v.push(format!(
            "{other} burst requests answered a status other than 200 or 503"
        ));
    }
    let bare = count(&|a| {
        matches!(
            a,
            Answer::Http {
                status: 503,
                retry_after: None
            }
        )
    });
    if bare > 0 {
        v.push(format!("{bare} burst 503s without Retry-After"));
    }
    let errors = count(&|a| matches!(a, Answer::FunctionError(_)));
    if let Some(first) = samples.iter().find_map(|s| match &s.answer {
        Answer::FunctionError(e) => Some(e),
        _ => None,
    }) {
        v.push(format!(
            "{errors} burst invocations failed in the function instead of answering (first: {first})"
        ));
    }
    let hung = count(&|a| matches!(a, Answer::Hung));
    if hung > 0 {
        v.push(format!(
            "{hung} burst requests got no answer within the function timeout ({FUNCTION_TIMEOUT:?})"
        ));
    }
    let refused = count(&|a| matches!(a, Answer::Http { status: 503, .. }));
    if refused == 0 {
        v.push(format!(
            "no burst request got a 503: {} instances never ran out of connections, so nothing \
             was rehearsed (is the server's max_connections small enough?)",
            args.functions
        ));
    }
    let bad: usize = recovered.iter().map(|r| r.bad.len()).sum();
    if bad > 0 {
        v.push(format!(
            "{bad} recovery answers were neither a 200 nor a 503 with Retry-After"
        ));
    }
    let mut unserved: Vec<usize> = recovered
        .iter()
        .filter(|r| r.served_after.is_none())
        .map(|r| r.function)
        .collect();
    unserved.sort_unstable();
    if !unserved.is_empty() {
        v.push(format!(
            "{} instances did not answer 200 within {} s after the burst (web-{})",
            unserved.len(),
            args.recovery_seconds,
            unserved
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", web-")
        ));
    }
    if !exited.is_empty() {
        v.push(format!(
            "{} web processes exited during the rehearsal",
            exited.len()
        ));
    }
    v
}

/// An instance whose output explains a violation.
fn first_failing(samples: &[Sample], recovered: &[Recovery]) -> Option<usize> {
    samples
        .iter()
        .find(|s| {
            !matches!(
                s.answer,
                Answer::Http { status: 200, .. }
                    | Answer::Http {
                        status: 503,
                        retry_after: Some(_)
                    }
            )
        })
        .map(|s| s.function)
        .or_else(|| {
            recovered
                .iter()
                .find(|r| r.served_after.is_none())
                .map(|r| r.function)
        })
}

/// Median, 99th percentile (nearest rank) and maximum.
fn percentiles(mut v: Vec<Duration>) -> Option<(Duration, Duration, Duration)> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((rank(0.5), rank(0.99), v[v.len() - 1]))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
