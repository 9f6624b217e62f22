//! The `cargo run -- <command>` binary, run as a user would run it: a fresh process with a
//! controlled environment, no `.env`, and the database under test.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shared::testing::{TestDb, production_vars};

struct Cli {
    db: TestDb,
    dir: tempfile::TempDir,
}

impl Cli {
    async fn new() -> Self {
        Self {
            db: TestDb::empty().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The binary with only the variables a test gives it (plus PATH), in an empty directory
    /// so no `.env` is found, using this test's database.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_local"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", self.dir.path())
            .env("DATABASE_URL", self.db.config.url.expose())
            .env("LOG_LEVEL", "warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
        let mut child = self
            .command(args, env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// `cargo run` with no command, serving on a free port; its stdout goes to `log`.
struct Server {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Cli {
    fn serve(&self) -> Server {
        let port = free_port();
        let log = self.dir.path().join("stdout.log");
        let child = self
            .command(&[], &[("PORT", &port.to_string())])
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Server { child, port, log }
    }
}

impl Server {
    /// SIGTERM, as Lambda and process managers stop it; returns how it exited.
    fn stop(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        self.child.wait().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const PASSWORD: (&str, &str) = ("SUPERUSER_PASSWORD", "a long passphrase");

#[tokio::test]
async fn createsuperuser_creates_once_then_says_the_user_exists() {
    let cli = Cli::new().await;
    let first = cli.run(
        &["createsuperuser", "--email", "admin@example.com"],
        &[PASSWORD],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("Superuser admin@example.com created."));

    let second = cli.run(
        &["createsuperuser", "--email", "Admin@Example.com"],
        &[PASSWORD],
    );
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        stderr(&second).trim(),
        "error: a user with email admin@example.com already exists"
    );
}

#[tokio::test]
async fn createsuperuser_reads_the_password_from_stdin_when_not_on_a_terminal() {
    let cli = Cli::new().await;
    let out = cli.run_with_stdin(
        &["createsuperuser", "--email", "ops@example.com"],
        &[],
        "piped passphrase\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Superuser ops@example.com created."));
}

#[tokio::test]
async fn createsuperuser_gives_one_clear_line_for_bad_input() {
    let cli = Cli::new().await;
    // (args, environment, exit code, the line): 2 is an unusable setting, 1 a refused command.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: &[Case] = &[
        (
            &["createsuperuser", "--email", "not-an-email"],
            &[PASSWORD],
            1,
            "error: invalid email",
        ),
        (
            &["createsuperuser", "--email", "admin@example.com"],
            &[("SUPERUSER_PASSWORD", "short")],
            2,
            "error: SUPERUSER_PASSWORD is not acceptable: use at least 8 characters",
        ),
        (
            &["createsuperuser", "--email", "admin.user@example.com"],
            &[("SUPERUSER_PASSWORD", "admin.user")],
            1,
            "error: SUPERUSER_PASSWORD is not acceptable: the password must not be your email",
        ),
        (
            &["createsuperuser"],
            &[PASSWORD],
            1,
            "error: --email is required",
        ),
        (
            &["createsuperuser", "--email", "admin@example.com"],
            &[],
            1,
            "error: no password",
        ),
    ];
    for (args, env, code, expected) in cases {
        let out = cli.run(args, env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with(expected), "{args:?}: {err:?}");
    }
    let stdin_password = cli.run_with_stdin(
        &["createsuperuser", "--email", "admin@example.com"],
        &[],
        "abc\n",
    );
    assert_eq!(stdin_password.status.code(), Some(1));
    assert!(stderr(&stdin_password).starts_with("error: password rejected: use at least 8"));
}

#[tokio::test]
async fn an_invalid_setting_stops_every_command_with_one_line_naming_it() {
    let cli = Cli::new().await;
    for args in [&["migrate"][..], &["createsuperuser"], &["check"], &[]] {
        let out = cli.run(args, &[("PORT", "eighty")]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr(&out).trim(),
            "error: PORT must be a port number from 1 to 65535, got \"eighty\"",
            "{args:?}"
        );
    }
    // `.env` in the working directory is read, and the real environment wins over it.
    std::fs::write(cli.dir.path().join(".env"), "PORT=eighty\n").unwrap();
    let out = cli.run(&["migrate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("PORT must be a port number"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&["migrate"], &[("PORT", "3001")]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(cli.dir.path().join(".env")).unwrap();

    let out = cli.run(&["migrate"], &[("DEBUG", "false")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: SECRET_KEY must be set:"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_unreachable_database_or_a_missing_sqlite_folder_is_one_line_naming_it() {
    let cli = Cli::new().await;
    // A port nothing listens on (bound, then released).
    let port = free_port();
    let url = format!("postgres://app:secret@127.0.0.1:{port}/app");
    let out = cli.run(&["migrate"], &[("DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: applying database migrations: cannot connect to PostgreSQL at 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    assert!(err.contains("refused"), "the cause: {err}");
    assert!(!err.contains("pool timed out"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is never shown: {err}"
    );

    let missing = cli.dir.path().join("nonexistent/dir");
    let url = format!("sqlite://{}/x.db", missing.display());
    let out = cli.run(&["migrate"], &[("DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: DATABASE_URL names a SQLite database in"),
        "{err}"
    );
    assert!(!missing.exists(), "the folder was created");
}

#[tokio::test]
async fn migrate_applies_everything_once() {
    let cli = Cli::new().await;
    let first = cli.run(&["migrate"], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("applied 20261128000001 accounts and outbox"));
    let second = cli.run(&["migrate"], &[]);
    assert!(second.status.success());
    assert!(
        !stdout(&second).contains("applied 2026"),
        "{}",
        stdout(&second)
    );
    assert!(stdout(&second).contains("Database is up to date"));
}

#[tokio::test]
async fn check_passes_a_production_config_and_refuses_each_insecure_setting() {
    let cli = Cli::new().await;
    let ok = cli.run(&["check"], &production_vars());
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));

    let cases = [
        ("DEBUG", "true"),
        ("SECRET_KEY", "too-short"),
        (
            "SECRET_KEY",
            "aaaaabbbbbaaaaabbbbbaaaaabbbbbaaaaabbbbbaaaaabbbbbaaaa",
        ),
        ("ALLOWED_HOSTS", "localhost"),
        ("FORCE_HTTPS", "false"),
        ("SITE_URL", "http://app.example.com"),
    ];
    for (var, value) in cases {
        let mut env = production_vars();
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
        let out = cli.run(&["check"], &env);
        assert_eq!(out.status.code(), Some(1), "{var}={value}");
        assert!(
            stdout(&out).contains(&format!("  {var} ")),
            "{var}: {}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains("check found 1 problem"),
            "{var}: {}",
            stderr(&out)
        );
    }
}

/// Sends one HTTP/1.1 request and returns the status line and body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_output(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn the_default_command_migrates_serves_and_stops_cleanly_on_sigterm() {
    let cli = Cli::new().await;
    let server = cli.serve();
    let port = server.port;
    let url = format!("http://127.0.0.1:{port}/");
    let printed = wait_for_output(&server.log, &url);
    assert!(printed.contains("applied 20261128000001"), "{printed}");
    assert!(printed.contains(&format!("Serving on {url}")), "{printed}");

    let (status, body) = http_get(port, "/healthz");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains(r#""database":"ok""#), "{body}");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("/static/app."));

    let log = server.log.clone();
    let status = server.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("Stopped."));
}

#[tokio::test]
async fn sendtestemail_goes_through_the_whole_pipeline_and_prints_the_outcome() {
    let cli = Cli::new().await;
    let out = cli.run(&["sendtestemail", "Ada@Example.com"], &[]);
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}{}", stderr(&out));
    assert!(
        printed.contains("to ada@example.com written to the outbox"),
        "{printed}"
    );
    // The console mailer printed the message itself.
    assert!(printed.contains("To: ada@example.com"), "{printed}");
    assert!(
        printed.contains("Subject: Test email from Serverless Starter"),
        "{printed}"
    );
    assert!(printed.contains("the outbox, the queue, the worker and the console mailer"));
    assert!(
        printed
            .contains("Sent with the console mailer after 1 attempt: provider message id console-"),
        "{printed}"
    );

    let mut conn = cli.db.db.acquire().await.unwrap();
    let rows = shared::store::emails::list_recent_emails(&mut conn, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].kind.as_str()),
        ("sent", "test")
    );

    let bad = cli.run(&["sendtestemail", "nobody"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).starts_with("error: invalid address"),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test]
async fn a_restart_sends_what_the_outbox_still_holds() {
    let cli = Cli::new().await;
    cli.db.db.migrate().await.unwrap();
    // Written before a crash: committed to the outbox, never queued.
    let mut tx = cli.db.db.begin().await.unwrap();
    let rendered = shared::mail::Rendered {
        subject: "Left behind".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    };
    let to = shared::domain::EmailAddress::parse("ada@example.com").unwrap();
    let id = shared::services::outbox::add(
        &mut tx,
        shared::domain::EmailKind::Test,
        &to,
        None,
        &rendered,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let server = cli.serve();
    wait_for_output(&server.log, "Subject: Left behind");
    // The start-up sweep may send it before the banner is printed: wait for both.
    let printed = wait_for_output(&server.log, "Worker: in-process queue, console mailer");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let mut conn = cli.db.db.acquire().await.unwrap();
        let row = shared::store::emails::find_email(&mut conn, id)
            .await
            .unwrap()
            .unwrap();
        if (row.status != "pending" && row.status != "sending") || Instant::now() > deadline {
            break row.status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server.stop();
    assert!(
        printed.contains("Worker: in-process queue, console mailer"),
        "{printed}"
    );
    assert!(printed.contains("Subject: Left behind"), "{printed}");
    assert_eq!(status, "sent");
}

#[tokio::test]
async fn runjob_runs_a_job_now_and_an_unknown_name_lists_the_jobs() {
    let cli = Cli::new().await;
    let ran = cli.run(&["runjob", "purge-expired"], &[]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert!(
        stdout(&ran).contains("purge-expired: deleted 0 sessions"),
        "{}",
        stdout(&ran)
    );
    // example-app:begin
    let occurrences = cli.run(&["runjob", "process-occurrences"], &[]);
    assert!(occurrences.status.success(), "{}", stderr(&occurrences));
    assert!(stdout(&occurrences).contains("0 reminders queued"));
    // example-app:end

    let unknown = cli.run(&["runjob", "make-coffee"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    let jobs = shared::jobs::JOBS
        .iter()
        .map(|j| j.name)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        stderr(&unknown).trim(),
        format!("error: unknown job \"make-coffee\"; the jobs are {jobs}")
    );
}

fn event_path(name: &str) -> String {
    format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn json_stdout(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

#[tokio::test]
async fn invoke_runs_each_function_on_the_committed_events_and_prints_what_lambda_returns() {
    let cli = Cli::new().await;
    for (event, status) in [
        ("apigw-http-get-healthz.json", 200),
        ("alb-get-healthz.json", 200),
        // example-app:begin
        ("function-url-get-classes.json", 200),
        // Page 2 of an empty list.
        ("apigw-rest-get-classes.json", 404),
        // example-app:end
    ] {
        let out = cli.run(&["invoke", "web", &event_path(event)], &[]);
        assert!(out.status.success(), "{event}: {}", stderr(&out));
        let response = json_stdout(&out);
        assert_eq!(response["statusCode"], status, "{event}: {response}");
        assert!(
            stderr(&out).contains("accepting the event's host"),
            "{}",
            stderr(&out)
        );
    }
    // An explicit ALLOWED_HOSTS is kept, so the event's host is refused as in Lambda.
    let out = cli.run(
        &["invoke", "web", &event_path("apigw-http-get-healthz.json")],
        &[("ALLOWED_HOSTS", "app.example.com")],
    );
    assert_eq!(json_stdout(&out)["statusCode"], 400);

    let out = cli.run(
        &[
            "invoke",
            "worker",
            &event_path("sqs-batch-with-malformed-record.json"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let failures = &json_stdout(&out)["batchItemFailures"];
    assert_eq!(
        failures[0]["itemIdentifier"], "2e1424d4-f796-459a-8184-9c92662be6da",
        "{failures}"
    );

    let out = cli.run(
        &[
            "invoke",
            "scheduler",
            &event_path("eventbridge-scheduler-string-detail.json"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_stdout(&out)["job"], "purge-expired");
    assert_eq!(json_stdout(&out)["outcome"], "ran");

    let out = cli.run(
        &[
            "invoke",
            "migrate",
            &event_path("cloudformation-delete.json"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_stdout(&out)["Status"], "SUCCESS");
    assert!(stderr(&out).contains("not sent to the event's ResponseURL"));
}

#[tokio::test]
async fn invoke_gives_one_clear_line_for_a_bad_file_or_event_and_fails() {
    let cli = Cli::new().await;
    let out = cli.run(&["invoke", "web", "events/missing.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: cannot read the event file events/missing.json: No such file or directory (os error 2)"
    );

    let bad = cli.dir.path().join("bad.json");
    std::fs::write(&bad, "{\"Records\": [").unwrap();
    let out = cli.run(&["invoke", "worker", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: the event file"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("is not JSON"), "{}", stderr(&out));

    // The wrong event for the function: Lambda's error report, and a failure.
    let out = cli.run(
        &[
            "invoke",
            "scheduler",
            &event_path("sqs-batch-with-malformed-record.json"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json_stdout(&out);
    // The errorType Lambda shows for it (functions/scheduler/tests/it/runtime_api.rs).
    assert_eq!(report["errorType"], "InvalidEvent", "{report}");
    assert!(
        report["errorMessage"]
            .as_str()
            .unwrap()
            .contains("names no job")
    );

    let out = cli.run(&["invoke", "lambda", "x.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values: web, worker, scheduler, migrate"));
}

#[tokio::test]
async fn invoke_with_json_logs_prints_only_the_result_on_stdout() {
    let cli = Cli::new().await;
    // A sign-up: the handler logs, and the worker prints the verification email.
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(event_path("apigw-http-get-healthz.json")).unwrap(),
    )
    .unwrap();
    event["rawPath"] = "/api/auth/signup".into();
    event["requestContext"]["http"]["method"] = "POST".into();
    event["requestContext"]["http"]["path"] = "/api/auth/signup".into();
    event["headers"]["content-type"] = "application/json".into();
    let body = r#"{"email": "ada@example.com", "password": "correct horse battery"}"#;
    event["headers"]["content-length"] = body.len().to_string().into();
    event["body"] = body.into();
    let path = cli.dir.path().join("signup.json");
    std::fs::write(&path, serde_json::to_vec(&event).unwrap()).unwrap();

    let out = cli.run(
        &["invoke", "web", path.to_str().unwrap()],
        &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "info")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let documents: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(documents.len(), 1, "{}", stdout(&out));
    assert_eq!(documents[0]["statusCode"], 202, "{}", documents[0]);
    // The logs and the email went to stderr.
    let logs = stderr(&out);
    assert!(
        logs.lines()
            .any(|l| serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["level"] == "INFO")),
        "{logs}"
    );
    assert!(logs.contains("To: ada@example.com"), "{logs}");
}

/// Each function's resource name in template.yaml, with the variables its environment declares
/// (the Globals' and its own).
fn template_functions() -> Vec<(String, Vec<String>)> {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let template: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let names = |vars: &serde_norway::Value| -> Vec<String> {
        vars.as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let globals = names(&template["Globals"]["Function"]["Environment"]["Variables"]);
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| {
            let mut vars = globals.clone();
            vars.extend(names(&r["Properties"]["Environment"]["Variables"]));
            (name.as_str().unwrap().to_owned(), vars)
        })
        .collect()
}

#[test]
fn the_sam_local_env_file_configures_every_function_of_the_template() {
    let text = std::fs::read_to_string(event_path("sam-local-env.json")).unwrap();
    let file: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_str(&text).unwrap();
    let functions = template_functions();
    assert_eq!(
        file.keys().collect::<Vec<_>>(),
        {
            let mut names: Vec<_> = functions.iter().map(|(name, _)| name).collect();
            names.sort();
            names
        },
        "one entry per function of template.yaml"
    );
    for (name, declared) in &functions {
        let vars = &file[name];
        for var in vars.keys() {
            // `sam local invoke --env-vars` only overrides what the template declares.
            assert!(
                declared.contains(var),
                "{name}: {var} is not in the template's environment, so sam local would drop it"
            );
        }
        let mut vars = vars.clone();
        vars.insert(
            "AWS_LAMBDA_FUNCTION_NAME".into(),
            format!("rust-starter-{name}"),
        );
        let config = shared::config::Config::from_vars(
            &shared::config::Profile::Lambda,
            &shared::config::Vars::from_pairs(vars),
        )
        .unwrap_or_else(|e| panic!("{name} would not start under sam local: {e}"));
        assert!(!config.debug, "{name}");
        assert_eq!(
            config.email_backend,
            shared::config::EmailBackend::Console,
            "{name}"
        );
        assert!(
            config.database.url.expose().starts_with("postgres://"),
            "{name}"
        );
        // The committed HTTP events pass the allowed-hosts check as they are.
        for event in [
            "apigw-http-get-healthz.json",
            "alb-get-healthz.json",
            // example-app:begin
            "apigw-rest-get-classes.json",
            "function-url-get-classes.json",
            // example-app:end
        ] {
            let event: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(event_path(event)).unwrap()).unwrap();
            let host = event["headers"]["host"]
                .as_str()
                .or(event["headers"]["Host"].as_str())
                .or(event["multiValueHeaders"]["Host"][0].as_str())
                .unwrap_or_else(|| panic!("no host in {event}"));
            assert!(
                config.allowed_hosts.iter().any(|h| h == host),
                "{name}: {host} not in {:?}",
                config.allowed_hosts
            );
        }
    }
}

/// An API token for these credentials, or the refusal.
async fn token_for(cli: &Cli, email: &str, password: &str) -> Result<String, shared::error::Error> {
    let request = shared::services::accounts::NewApiToken {
        name: "cli test",
        expires_in_days: None,
    };
    shared::services::accounts::issue_api_token(&cli.db.db, email, password, &request, "test").await
}

#[tokio::test]
async fn changepassword_sets_the_password_and_signs_the_user_out_everywhere() {
    let cli = Cli::new().await;
    let created = cli.run(
        &["createsuperuser", "--email", "admin@example.com"],
        &[PASSWORD],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let old_token = token_for(&cli, "admin@example.com", PASSWORD.1)
        .await
        .unwrap();

    let out = cli.run_with_stdin(
        &["changepassword", "Admin@Example.com"],
        &[],
        "a new long passphrase\r\na new long passphrase\r\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("Password changed for admin@example.com; 1 session and API token ended."),
        "{}",
        stdout(&out)
    );
    assert!(
        shared::services::accounts::authenticate_api_token(&cli.db.db, &old_token)
            .await
            .is_err(),
        "the old token still works"
    );
    assert!(
        token_for(&cli, "admin@example.com", PASSWORD.1)
            .await
            .is_err()
    );
    token_for(&cli, "admin@example.com", "a new long passphrase")
        .await
        .unwrap();
}

#[tokio::test]
async fn changepassword_gives_one_clear_line_for_an_unknown_email_or_a_refused_password() {
    let cli = Cli::new().await;
    let created = cli.run(
        &["createsuperuser", "--email", "admin@example.com"],
        &[PASSWORD],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    // (email, standard input, the line)
    let cases = [
        (
            "nobody@example.com",
            "a new long passphrase\na new long passphrase\n",
            "error: no user with email nobody@example.com",
        ),
        (
            "not-an-email",
            "a new long passphrase\na new long passphrase\n",
            "error: invalid email",
        ),
        (
            "admin@example.com",
            "short\nshort\n",
            "error: password rejected: use at least 8 characters",
        ),
        (
            "admin@example.com",
            "a new long passphrase\na new long passphrasf\n",
            "error: the passwords do not match; nothing changed",
        ),
        (
            "admin@example.com",
            "a new long passphrase\n",
            "error: no password: give the new password twice",
        ),
        ("admin@example.com", "", "error: no password"),
    ];
    for (email, input, expected) in cases {
        let out = cli.run_with_stdin(&["changepassword", email], &[], input);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{email} {input:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{input:?}: one line, got {err:?}");
        assert!(err.starts_with(expected), "{input:?}: {err:?}");
    }
    // Nothing changed.
    token_for(&cli, "admin@example.com", PASSWORD.1)
        .await
        .unwrap();
}

/// A folder holding only a stand-in for `program` that prints its arguments and the `PG*`
/// variables it was given, then exits 7.
fn fake_client(dir: &Path, program: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join(program);
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"args: $*\"\nPATH=/usr/bin:/bin\nenv | grep '^PG' | sort\nexit 7\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test]
async fn dbshell_gives_psql_the_connection_in_its_environment_and_exits_with_its_code() {
    let cli = Cli::new().await;
    let bin = fake_client(cli.dir.path(), "psql");
    // Never connected to by dbshell itself: the stand-in only prints what it got.
    let url = "postgres://app:s%40cret@db.example.com:6432/my_app?sslmode=require";
    let out = cli.run(
        &["dbshell", "--", "-c", "select 1"],
        &[("DATABASE_URL", url), ("PATH", bin.to_str().unwrap())],
    );
    let printed = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{printed}{}", stderr(&out));
    assert!(printed.contains("args: -c select 1\n"), "{printed}");
    for line in [
        "PGDATABASE=my_app",
        "PGHOST=db.example.com",
        "PGPASSWORD=s@cret",
        "PGPORT=6432",
        "PGSSLMODE=require",
        "PGUSER=app",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line}: {printed}");
    }
    let args = printed.lines().next().unwrap();
    assert!(
        !args.contains("cret"),
        "the password is in the arguments: {args}"
    );

    let bin = fake_client(cli.dir.path(), "sqlite3");
    let file = cli.dir.path().join("app.db");
    let out = cli.run(
        &["dbshell", "--", "select 1;"],
        &[
            (
                "DATABASE_URL",
                &format!("sqlite://{}?mode=rwc", file.display()),
            ),
            ("PATH", bin.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("args: {} select 1;\n", file.display())),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn dbshell_without_the_client_on_the_path_says_what_to_install() {
    let cli = Cli::new().await;
    let empty = cli.dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let sqlite = format!("sqlite://{}/app.db", cli.dir.path().display());
    for (url, expected) in [
        (
            "postgres://app:secret@127.0.0.1/app",
            "error: dbshell needs psql (PostgreSQL's client) on the PATH: install it (Debian: apt-get install postgresql-client)",
        ),
        (
            sqlite.as_str(),
            "error: dbshell needs sqlite3 (SQLite's client) on the PATH: install it (Debian: apt-get install sqlite3)",
        ),
    ] {
        let out = cli.run(
            &["dbshell"],
            &[("DATABASE_URL", url), ("PATH", empty.to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(1), "{url}");
        assert_eq!(stderr(&out).trim_end(), expected);
    }
}

#[tokio::test]
async fn dbshell_runs_the_real_client_on_the_database_under_test() {
    let cli = Cli::new().await;
    let created = cli.run(
        &["createsuperuser", "--email", "admin@example.com"],
        &[PASSWORD],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let out = match cli.db.config.kind {
        shared::config::DatabaseKind::Postgres => cli.run(
            &["dbshell", "--", "-tA", "-c", "select count(*) from users"],
            &[],
        ),
        shared::config::DatabaseKind::Sqlite => {
            if Command::new("sqlite3").arg("-version").output().is_err() {
                // Covered by the test above: without it, the clear line.
                eprintln!("sqlite3 is not installed: skipped");
                return;
            }
            cli.run(&["dbshell", "--", "select count(*) from users;"], &[])
        }
    };
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "1", "{}", stderr(&out));
}

#[tokio::test]
async fn makemigration_writes_a_new_file_that_applies_on_the_database_under_test() {
    let cli = Cli::new().await;
    let folder = cli.dir.path().join("migrations");
    std::fs::create_dir(&folder).unwrap();
    let ours = format!("{}/../migrations", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(ours).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), folder.join(entry.file_name())).unwrap();
    }
    let before = std::fs::read_dir(&folder).unwrap().count();

    let out = cli.run(&["makemigration", "Add rooms-and Seats"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let written = printed
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Wrote "))
        .unwrap_or_else(|| panic!("{printed}"));
    let name = written.strip_prefix("migrations/").unwrap();
    let (version, rest) = name.split_at(14);
    assert!(version.bytes().all(|b| b.is_ascii_digit()), "{name}");
    assert_eq!(rest, "_add_rooms_and_seats.sql");
    assert!(printed.contains("`cargo run`"), "{printed}");
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), before + 1);
    let text = std::fs::read_to_string(cli.dir.path().join(written)).unwrap();
    assert!(
        text.contains("runs unchanged on SQLite and PostgreSQL"),
        "{text}"
    );
    assert!(text.contains("never by a database default"), "{text}");

    // As written (comments only), it is a valid migration on this backend, after the others.
    cli.db.db.migrate().await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(folder.as_path())
        .await
        .unwrap();
    assert_eq!(migrator.iter().count(), before + 1);
    let url = cli.db.config.url.expose();
    match cli.db.config.kind {
        shared::config::DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
        shared::config::DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let applied = cli.db.db.applied_migrations().await.unwrap();
    assert_eq!(applied.last().unwrap().to_string(), version);
}

#[tokio::test]
async fn makemigration_refuses_a_bad_name_or_a_folder_without_migrations() {
    let cli = Cli::new().await;
    std::fs::create_dir(cli.dir.path().join("migrations")).unwrap();
    for (name, expected) in [
        ("", "error: the migration needs a name"),
        ("  -_ ", "error: the migration needs a name"),
        (
            "rooms; drop",
            "error: a migration name has letters, digits, '-', '_' and spaces only, not ';'",
        ),
        ("../up", "error: a migration name has letters"),
    ] {
        let out = cli.run(&["makemigration", name], &[]);
        assert_eq!(out.status.code(), Some(1), "{name:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{name:?}: {err}");
        assert!(err.starts_with(expected), "{name:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(cli.dir.path().join("migrations"))
            .unwrap()
            .count(),
        0
    );

    std::fs::remove_dir(cli.dir.path().join("migrations")).unwrap();
    let out = cli.run(&["makemigration", "add rooms"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "error: no migrations/ folder in the current directory: run makemigration from the workspace root"
    );
}
