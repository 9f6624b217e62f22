//! `cargo run -- startproject`: the starter copied as a named project, checked file by file
//! (CI builds and tests a copy too).

use std::path::Path;
use std::process::Command;

/// Every file under `dir`, relative, with its text (binary files skipped).
fn texts(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, text));
            }
        }
    }
    out
}

fn startproject(target: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_local"))
        .arg("startproject")
        .arg(target)
        .args(args)
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap()
}

#[test]
fn startproject_writes_a_named_copy_with_nothing_of_the_starter_left() {
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("acme");
    let out = startproject(
        &target,
        &[
            "--name",
            "acme",
            "--site-name",
            "Acme Bookings",
            "--stack-name",
            "acme-prod",
            "--region",
            "eu-west-1",
            "--from-email",
            "hello@acme.example",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "startproject failed: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cargo run"));

    let files = texts(&target);
    assert!(files.len() > 100, "only {} files copied", files.len());
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert!(!names.contains(&"local/src/startproject.rs"));
    assert!(!names.contains(&"local/tests/it/startproject.rs"));
    assert!(
        !names
            .iter()
            .any(|p| p.starts_with("target/") || p.starts_with(".git/"))
    );
    for (path, text) in &files {
        for ours in ["Serverless Starter", "serverless-starter", "rust-starter"] {
            assert!(!text.contains(ours), "{path} still says {ours:?}");
        }
        for marker in [
            concat!("starter-only", ":begin"),
            concat!("starter-only", ":end"),
            // Kept, the example app keeps its lines but not their markers.
            concat!("example-app", ":begin"),
            concat!("example-app", ":end"),
            "startproject",
        ] {
            assert!(!text.contains(marker), "{path} still has {marker:?}");
        }
    }
    let file = |p: &str| std::fs::read_to_string(target.join(p)).unwrap();
    let samconfig = file("samconfig.toml");
    assert!(
        samconfig.contains("stack_name = \"acme-prod\""),
        "{samconfig}"
    );
    assert!(samconfig.contains("region = \"eu-west-1\""), "{samconfig}");
    assert!(
        samconfig.contains("parameter_overrides = \"FromEmail=hello@acme.example\""),
        "{samconfig}"
    );
    assert!(file("functions/web/Cargo.toml").contains("name = \"acme-web\""));
    assert!(file("shared/src/jobs/mod.rs").contains("process_occurrences::JOB"));
    assert_eq!(
        file("migrations/20261128000003_classes_and_jobs.sql"),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../migrations/20261128000003_classes_and_jobs.sql")
        )
        .unwrap(),
        "an applied migration is copied byte for byte"
    );
    assert!(file("Cargo.lock").contains("name = \"acme-web\""));
    assert!(file(".ci/run").contains("-p acme-web"));
    // Executable scripts stay executable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(target.join("scripts/throwaway-postgres.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "scripts lost their mode: {mode:o}");
    }

    // The lock files agree with the renamed packages: cargo resolves both without the network.
    for dir in [target.clone(), target.join("fuzz")] {
        assert_resolves_locked(&dir);
    }
}

/// `cargo tree --locked` succeeds in `dir`: its lock file agrees with its packages. Not
/// `--offline`: on a machine that never built `fuzz/`, cargo fetches that workspace's crates.
fn assert_resolves_locked(dir: &Path) {
    // A clean environment: cargo test's own variables describe this crate, not the copy.
    let mut cargo = Command::new("cargo");
    cargo.env_clear();
    for var in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME"] {
        if let Some(value) = std::env::var_os(var) {
            cargo.env(var, value);
        }
    }
    let tree = cargo
        .args(["tree", "--locked", "--depth", "1"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        tree.status.success(),
        "cargo tree in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&tree.stderr)
    );
}

#[test]
fn startproject_refuses_a_folder_that_is_not_empty_and_bad_options_and_writes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let full = parent.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let out = startproject(&full, &["--name", "acme"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(full.join("keep.txt")).unwrap(),
        "mine"
    );

    let out = startproject(&parent.path().join("new"), &["--name", "Acme Inc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
    let left: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("full")],
        "nothing else written"
    );
}

/// The example app's words, as identifiers, paths and job names spell them.
const EXAMPLE_WORDS: &[&str] = &["class", "booking", "occurrence", "reminder"];

/// Where those words are fine in a copy without the example: CSS classes (attributes,
/// selectors and the helper that reads them), SES error classification, and the
/// account-exists email, which is "a reminder" in plain English.
const ALLOWED: &[&str] = &[
    "class=\"",
    "class=\\\"",
    "let class = class_around",
    "class_around",
    "class attribute",
    "every class the page uses",
    "(class {class:?})",
    "class.split_whitespace",
    "classif",
    "sent it a reminder instead",
];

#[test]
fn startproject_without_example_leaves_no_class_booking_occurrence_or_reminder_in_code() {
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("acme");
    let out = startproject(&target, &["--name", "acme", "--without-example"]);
    assert!(
        out.status.success(),
        "startproject failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let files = texts(&target);
    let mut left = Vec::new();
    for (path, text) in &files {
        for marker in [
            concat!("example-app", ":begin"),
            concat!("example-app", ":end"),
        ] {
            assert!(!text.contains(marker), "{path} still has {marker:?}");
        }
        if !(path.ends_with(".rs") || path.ends_with(".sql") || path.ends_with(".html")) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let mut line = line.to_lowercase();
            for allowed in ALLOWED {
                line = line.replace(allowed, "");
            }
            if EXAMPLE_WORDS.iter().any(|w| line.contains(w)) {
                left.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        left.is_empty(),
        "the example app is still named:\n{}",
        left.join("\n")
    );

    let exists = |p: &str| target.join(p).exists();
    assert!(!exists("shared/src/store/classes.rs"));
    assert!(!exists("assets/emails/reminder"));
    assert!(!exists("migrations/20261128000003_classes_and_jobs.sql"));
    assert!(exists("migrations/20261128000003_jobs.sql"));
    assert!(exists("shared/src/jobs/sweep_outbox.rs"));
    assert!(exists("functions/migrate/src/main.rs"));
    let file = |p: &str| std::fs::read_to_string(target.join(p)).unwrap();
    let migration = file("migrations/20261128000003_jobs.sql");
    assert!(migration.contains("create table job_runs"), "{migration}");
    let template = file("template.yaml");
    assert!(
        !template.contains("\"job\": \"process-occurrences\""),
        "the schedule goes"
    );
    assert!(
        template.contains("\"job\": \"sweep-outbox\""),
        "the others stay"
    );
    let openapi: serde_json::Value = serde_json::from_str(&file("assets/openapi.json")).unwrap();
    let paths: Vec<&String> = openapi["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().any(|p| *p == "/api/me"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("class") || p.contains("booking")),
        "{paths:?}"
    );
    assert!(openapi["components"]["schemas"].get("Class").is_none());
    assert!(openapi["components"]["schemas"].get("Me").is_some());

    // The lock file agrees with the packages left (the bench tool went).
    assert_resolves_locked(&target);
}
