//! Cold starts and warm invocations of the release binaries under the Runtime API emulator.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use runtime_api_emulator::{Emulator, Function, Outcome};
use serde_json::Value;

/// Process start to the first `/next` (init), and to the first response.
#[derive(Debug, Clone, Copy)]
pub struct Cold {
    pub init: Duration,
    pub first_response: Duration,
}

/// The pause between two cold starts.
const SETTLE: Duration = Duration::from_millis(100);

/// Starts `program` `events.len()` times, each a new process answering one event.
pub async fn cold_starts(
    program: &Path,
    name: &str,
    env: &[(String, String)],
    events: Vec<Vec<u8>>,
) -> anyhow::Result<Vec<Cold>> {
    cold_starts_answering(program, name, env, events, None).await
}

/// [`cold_starts`] whose HTTP answers must have `status` (`None`: any 2xx).
pub async fn cold_starts_answering(
    program: &Path,
    name: &str,
    env: &[(String, String)],
    events: Vec<Vec<u8>>,
    status: Option<u64>,
) -> anyhow::Result<Vec<Cold>> {
    let mut samples = Vec::with_capacity(events.len());
    for event in events {
        let emulator = Emulator::start(name).await;
        let function = emulator.spawn(program, env.iter().cloned());
        let outcome = emulator.invoke(event).await;
        let answered = Instant::now();
        check_status(&outcome, &function, status)?;
        let init = emulator
            .timings()
            .first_next
            .context("the function never asked for an event")?;
        samples.push(Cold {
            init: init - function.started,
            first_response: answered - function.started,
        });
        // The next start should not share the 2 cores with this one's teardown (the process
        // exiting, and on PostgreSQL its server backend ending): Lambda starts an instance on
        // a machine of its own.
        drop(function);
        tokio::time::sleep(SETTLE).await;
    }
    Ok(samples)
}

/// A function process's cost over many invocations of one event.
#[derive(Debug, Clone, Copy)]
pub struct Warm {
    pub cpu_us_per_invocation: f64,
    pub invocations_per_second: f64,
    pub peak_rss_kib: u64,
}

/// Invokes one process `warmup` times, then `count` times while measuring, every invocation
/// sampled for X-Ray if `sampled` (see [`Emulator::sample`]); with `perf_out`,
/// the measured invocations are recorded there by `perf record` with call graphs (for
/// profiling, not for the report: perf's sampling adds its own cost).
pub async fn warm(
    program: &Path,
    name: &str,
    env: &[(String, String)],
    event: &[u8],
    (warmup, count): (usize, usize),
    sampled: bool,
    perf_out: Option<&Path>,
) -> anyhow::Result<Warm> {
    let emulator = Emulator::start(name).await;
    emulator.sample(sampled);
    let function = emulator.spawn(program, env.iter().cloned());
    let pid = function.pid().context("no pid")?;
    for _ in 0..warmup {
        check(&emulator.invoke(event.to_vec()).await, &function)?;
    }
    let perf = match perf_out {
        Some(out) => Some(PerfRecord::attach(pid, out).await?),
        None => None,
    };
    let cpu_before = cpu_ticks(pid)?;
    let started = Instant::now();
    for _ in 0..count {
        check(&emulator.invoke(event.to_vec()).await, &function)?;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_ticks(pid)? - cpu_before;
    if let Some(perf) = perf {
        perf.finish()?;
    }
    let tick_us = 1_000_000.0 / clock_ticks_per_second()? as f64;
    Ok(Warm {
        cpu_us_per_invocation: cpu as f64 * tick_us / count as f64,
        invocations_per_second: count as f64 / elapsed.as_secs_f64(),
        peak_rss_kib: peak_rss_kib(pid)?,
    })
}

/// `perf record` attached to a running process until [`PerfRecord::finish`].
struct PerfRecord(std::process::Child);

impl PerfRecord {
    async fn attach(pid: u32, out: &Path) -> anyhow::Result<Self> {
        let child = std::process::Command::new("perf")
            // DWARF call graphs: the release profile keeps no frame pointers.
            .args(["record", "--call-graph", "dwarf,16384", "-F", "4999", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("running perf (apt-get install linux-perf)")?;
        // perf needs a moment to attach to every thread.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Self(child))
    }

    /// Stops recording (SIGINT, so perf writes its file) and waits for perf to exit.
    fn finish(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status()?;
        self.0.wait()?;
        Ok(())
    }
}

/// A response, and for HTTP events a 2xx one; anything else stops the benchmark.
fn check(outcome: &Option<Outcome>, function: &Function) -> anyhow::Result<()> {
    check_status(outcome, function, None)
}

/// A response, and for HTTP events one with `expected` status (`None`: any 2xx).
fn check_status(
    outcome: &Option<Outcome>,
    function: &Function,
    expected: Option<u64>,
) -> anyhow::Result<()> {
    match outcome {
        Some(Outcome::Response(body)) => {
            let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            match value.get("statusCode").and_then(Value::as_u64) {
                Some(status) if expected.map_or(!(200..300).contains(&status), |e| e != status) => {
                    bail!("answered {status}: {value}\n{}", function.output())
                }
                _ => Ok(()),
            }
        }
        other => bail!("no response: {other:?}\n{}", function.output()),
    }
}

/// User plus system CPU time of the whole process (every thread, the exited ones included).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at field 3 (`state`).
    let after = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields[11].parse()?;
    let stime: u64 = fields[12].parse()?;
    Ok(utime + stime)
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
