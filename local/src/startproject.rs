//! `startproject <dir>`: a copy of this repository as a team's own, named project.
//!
//! Why a command of the local runner and not a `cargo generate` template: a template needs
//! placeholders (`{{project-name}}`) in Cargo.toml and Rust files, so the starter itself would no
//! longer build, and its tests would run only on generated copies. Here the starter stays a plain
//! workspace, built and tested at every commit, and the generator is Rust with its own tests;
//! there is nothing to install (cargo-generate compiles libgit2 and OpenSSL first).
//!
//! What it does, on the files git tracks (committed or not, ignored ones left out):
//! 1. Drops the starter's own parts: [`STARTER_FILES`] and the lines between
//!    `starter-only:begin` and `starter-only:end` markers (comments in the file's own syntax:
//!    `//`, `#`, `--`, `<!-- -->`, `{# #}`; the marker lines never reach the copy).
//!    With `--without-example` it drops the example app as well (classes, bookings, occurrences,
//!    reminders): [`EXAMPLE_FILES`], the lines between `example-app:begin` and `example-app:end`
//!    markers, and the example's paths in `assets/openapi.json` ([`EXAMPLE_API_PATHS`]) with the
//!    components only they use (JSON has no comments: the members are cut from the text, so the
//!    rest keeps its order and layout). Without the flag only those marker lines go.
//! 2. Renames: packages `<name>-<role>` (`acme-web`; the code keeps `web::`, `shared::`: the
//!    dependency keys, library and binary names stay), the site name, the project's name where
//!    it names this one (`serverless-starter`), the stack, the region and the sender address in
//!    samconfig.toml.
//! 3. Writes the copy into a new folder beside `<dir>` and renames it into place when every file
//!    is written, so a failure leaves nothing half made; then brings the lock files in line with
//!    the new package names (`cargo update --workspace`, offline when it can: only our own
//!    entries change).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// What the copy is called and where it deploys.
#[derive(Debug, Clone, clap::Args)]
pub struct Project {
    /// The folder to create (it must not exist, or be empty).
    pub dir: PathBuf,
    /// The project's name: lower-case letters, digits and '-', starting with a letter (at most
    /// 30). Package names become `<name>-web`, `<name>-shared`, ...
    #[arg(long)]
    pub name: String,
    /// The name pages and emails show (default: the name, words capitalised).
    #[arg(long)]
    pub site_name: Option<String>,
    /// The CloudFormation stack (default: the name).
    #[arg(long)]
    pub stack_name: Option<String>,
    /// The AWS region `sam deploy` uses.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The address emails come from (a verified SES identity in AWS).
    #[arg(long)]
    pub from_email: Option<String>,
    /// Leave out the example app (classes, bookings, occurrences, reminders): accounts, the
    /// admin, the worker, the scheduler's other jobs and the deploy hook stay.
    #[arg(long)]
    pub without_example: bool,
}

/// The starter's name for itself, as pages and emails show it and as identifiers spell it.
const SITE_NAME: &str = "Serverless Starter";
const PROJECT_NAME: &str = "serverless-starter";
const STACK_NAME: &str = "rust-starter";

/// Files and folders (ending in `/`) that belong to the starter, not to a project made from it.
pub const STARTER_FILES: &[&str] = &[
    "local/src/startproject.rs",
    "local/tests/it/startproject.rs",
];

/// Files and folders (ending in `/`) of the example app, left out by `--without-example`.
pub const EXAMPLE_FILES: &[&str] = &[
    "BENCHMARKS.md",
    "assets/emails/reminder/",
    "assets/templates/admin/class.html",
    "assets/templates/admin/classes.html",
    "assets/templates/admin/occurrence.html",
    "assets/templates/bookings.html",
    "assets/templates/class.html",
    "assets/templates/class_form.html",
    "assets/templates/classes.html",
    "events/apigw-rest-get-classes.json",
    "events/function-url-get-classes.json",
    "functions/scheduler/benches/process_occurrences.rs",
    "functions/web/src/api/classes.rs",
    "functions/web/src/pages/admin/classes.rs",
    "functions/web/src/pages/classes.rs",
    "functions/web/tests/it/class_pages.rs",
    "functions/web/tests/it/classes_api.rs",
    // Its journeys book classes (scripts/browser-test.sh runs them).
    "local/tests/it/browser.rs",
    "scripts/admin-screenshots.py",
    "scripts/bench.sh",
    "scripts/browser-test.sh",
    "scripts/connection-storm.sh",
    "shared/src/domain/classes.rs",
    "shared/src/jobs/process_occurrences.rs",
    "shared/src/services/classes.rs",
    "shared/src/store/classes.rs",
    "shared/tests/it/classes.rs",
    "shared/tests/statements_per_batch.rs",
    // The benchmark suite measures the example's pages (and seeds classes for them).
    "tools/bench/",
];

/// Applied migrations keep their bytes in the starter (sqlx refuses a changed checksum), so
/// they hold no markers: with `--without-example` the copy, whose history starts afresh, drops
/// the statements on these tables from these files and renames the file whose name says so.
const EXAMPLE_MIGRATIONS: &[(&str, &[&str])] = &[(
    "migrations/20261128000003_classes_and_jobs.sql",
    &["classes", "occurrences", "bookings"],
)];
const EXAMPLE_RENAMES: &[(&str, &str)] = &[(
    "migrations/20261128000003_classes_and_jobs.sql",
    "migrations/20261128000003_jobs.sql",
)];

/// The example's words where a marker cannot stand: comments of applied migrations (as above)
/// and the dashboard's JSON in template.yaml (a YAML block scalar, where a `#` line would be
/// text): (file, text, replacement).
const EXAMPLE_WORDING: &[(&str, &str, &str)] = &[
    (
        "template.yaml",
        "                [\"${AWS::StackName}\", \"Bookings\", {\"label\": \"bookings\"}],\n",
        "",
    ),
    (
        "template.yaml",
        "\"title\": \"Accounts and bookings\"",
        "\"title\": \"Accounts\"",
    ),
    (
        "migrations/20261128000001_accounts_and_outbox.sql",
        "(verify_email, password_reset, reminder, ...)",
        "(verify_email, password_reset, ...)",
    ),
    (
        "migrations/20261128000003_classes_and_jobs.sql",
        "-- Classes, their occurrences, bookings, and the record of scheduled job runs.",
        "-- The record of scheduled job runs.",
    ),
    (
        "migrations/20261128000003_classes_and_jobs.sql",
        "(\"12 occurrences, 3 reminders\")",
        "(\"2 emails queued again\")",
    ),
];

/// Tests of the example app inside files that stay (in `example-app` regions).
const EXAMPLE_TESTS: &[&str] = &[
    "admin.rs::classes_and_occurrences_are_edited_and_deleted",
    "admin.rs::the_bookings_of_an_occurrence_are_listed_and_one_is_cancelled_freeing_its_place",
];

/// The workspace's packages, by folder: each becomes `<name>-<package>`.
const PACKAGES: &[&str] = &[
    "shared",
    "web",
    "worker",
    "scheduler",
    "migrate",
    "lambda-init",
    "local",
    "runtime-api-emulator",
    "bench",
    "fuzz-checks",
];

/// The markers of the starter's own lines. Built with `concat!` so that this file, which is
/// dropped whole, does not hold them itself.
const STARTER_ONLY: (&str, &str) = (
    concat!("starter-only", ":begin"),
    concat!("starter-only", ":end"),
);

/// The markers of the example app's lines, built like [`STARTER_ONLY`].
const EXAMPLE_APP: (&str, &str) = (
    concat!("example-app", ":begin"),
    concat!("example-app", ":end"),
);

/// The OpenAPI paths of the example app: these and every one under them.
const EXAMPLE_API_PATHS: &[&str] = &["/api/classes", "/api/occurrences", "/api/bookings"];

/// Checks the options, writes the copy and prints what to do next.
pub fn startproject(source: &Path, project: &Project) -> anyhow::Result<()> {
    let plan = Plan::new(project)?;
    let target = &project.dir;
    if target.exists()
        && std::fs::read_dir(target)
            .with_context(|| format!("cannot read {}", target.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty: name a new folder",
            target.display()
        );
    }
    let files = tracked_files(source)?;
    let plan = Plan {
        files: files.clone(),
        ..plan
    };
    let staging = staging_dir(target)?;
    let written = (|| -> anyhow::Result<usize> {
        let mut written = 0;
        for file in &files {
            let bytes =
                std::fs::read(source.join(file)).with_context(|| format!("cannot read {file}"))?;
            let Some(out) = plan.file(file, bytes)? else {
                continue;
            };
            let path = staging.join(plan.target_path(file));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, out)
                .with_context(|| format!("cannot write {}", path.display()))?;
            copy_permissions(&source.join(file), &path)?;
            written += 1;
        }
        Ok(written)
    })();
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if target.exists() {
        std::fs::remove_dir(target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(&staging, target)
        .with_context(|| format!("cannot move the copy to {}", target.display()))?;
    println!("Wrote {written} files to {}", target.display());
    for manifest in ["Cargo.toml", "fuzz/Cargo.toml"] {
        if target.join(manifest).is_file() {
            update_lock_file(&target.join(manifest))?;
            format(&target.join(manifest));
        }
    }
    println!(
        "Next:\n  cd {}\n  git init && git add -A && git commit -m \"{}\"",
        target.display(),
        plan.site_name
    );
    println!("  cargo run                 # the app on http://127.0.0.1:3000");
    println!("  cargo test --workspace    # its tests");
    Ok(())
}

/// The checked options and what they change.
#[derive(Debug)]
struct Plan {
    name: String,
    site_name: String,
    stack_name: String,
    region: String,
    from_email: Option<String>,
    without_example: bool,
    /// Every file of the source, to see which packages have a library and a binary.
    files: Vec<String>,
}

impl Plan {
    fn new(project: &Project) -> anyhow::Result<Plan> {
        let name = project.name.trim().to_owned();
        check_name("--name", &name, 30)?;
        let stack_name = project.stack_name.clone().unwrap_or_else(|| name.clone());
        // The functions are named <stack>-scheduler: 64 characters at most in all.
        check_name("--stack-name", &stack_name, 50)?;
        let site_name = match &project.site_name {
            Some(s) => s.trim().to_owned(),
            None => title_case(&name),
        };
        // The same limit as SITE_NAME's, which the copy's default becomes.
        let max = shared::config::MAX_SITE_NAME_CHARS;
        if site_name.is_empty() || site_name.chars().count() > max {
            bail!("--site-name must be 1 to {max} characters");
        }
        // It lands in Rust, JSON and YAML strings and in HTML as it is.
        if let Some(c) = site_name
            .chars()
            .find(|c| c.is_control() || matches!(c, '"' | '\\' | '<' | '>' | '&' | '{' | '}' | '`'))
        {
            bail!("--site-name cannot contain {c:?}");
        }
        let region = project.region.trim().to_owned();
        let parts: Vec<&str> = region.split('-').collect();
        let region_ok = parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && parts
                .last()
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        if !region_ok {
            bail!("--region {region:?} is not an AWS region name such as eu-west-1");
        }
        let from_email = match &project.from_email {
            Some(raw) => Some(
                shared::domain::EmailAddress::parse(raw)
                    .map_err(|e| anyhow::anyhow!("--from-email: {e}"))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Plan {
            name,
            site_name,
            stack_name,
            region,
            from_email,
            without_example: project.without_example,
            files: Vec::new(),
        })
    }

    /// Where `path` goes in the copy.
    fn target_path<'a>(&self, path: &'a str) -> &'a str {
        match EXAMPLE_RENAMES.iter().find(|(from, _)| *from == path) {
            Some((_, to)) if self.without_example => to,
            _ => path,
        }
    }

    /// What becomes of one file: `None` when it is left out.
    fn file(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
        if listed(STARTER_FILES, path) || (self.without_example && listed(EXAMPLE_FILES, path)) {
            return Ok(None);
        }
        // Images and other binary files are copied as they are.
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(binary) => return Ok(Some(binary.into_bytes())),
        };
        let text = strip(&text, STARTER_ONLY).with_context(|| format!("in {path}"))?;
        let text = if self.without_example {
            let text = strip(&text, EXAMPLE_APP).with_context(|| format!("in {path}"))?;
            let mut text = if path == "assets/openapi.json" {
                drop_api_paths(&text, EXAMPLE_API_PATHS).context("in assets/openapi.json")?
            } else {
                text
            };
            if path.ends_with(".md") {
                text = drop_example_rows(&text);
            }
            if let Some((_, tables)) = EXAMPLE_MIGRATIONS.iter().find(|(p, _)| *p == path) {
                text = drop_sql_tables(&text, tables);
            }
            for (_, from, to) in EXAMPLE_WORDING.iter().filter(|(p, ..)| *p == path) {
                if !text.contains(from) {
                    bail!("{path} no longer says {from:?}: update EXAMPLE_WORDING");
                }
                text = text.replace(from, to);
            }
            text
        } else {
            unmark(&text, EXAMPLE_APP).with_context(|| format!("in {path}"))?
        };
        Ok(Some(self.rename(path, text).into_bytes()))
    }

    fn rename(&self, path: &str, text: String) -> String {
        let mut text = text
            .replace(SITE_NAME, &self.site_name)
            .replace(PROJECT_NAME, &self.name)
            .replace(STACK_NAME, &self.stack_name);
        let file = Path::new(path)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("");
        if file == "Cargo.toml" {
            let folder = path.strip_suffix("Cargo.toml").unwrap_or("");
            text = self.rename_packages(&text, folder);
        }
        if path == "samconfig.toml" {
            text = text.replace(
                "region = \"us-east-1\"",
                &format!("region = \"{}\"", self.region),
            );
            if let Some(from) = &self.from_email {
                text = text.replace(
                    "# parameter_overrides = \"FromEmail=noreply@example.com\"",
                    &format!("parameter_overrides = \"FromEmail={from}\""),
                );
            }
        }
        if path == "docs/deploy.md" {
            text = text.replace(
                "The region is `us-east-1` in samconfig.toml",
                &format!("The region is `{}` in samconfig.toml", self.region),
            );
        }
        if path.ends_with(".sh") || path == ".ci/run" || path.ends_with(".md") {
            text = self.rename_package_flags(&text);
        }
        text
    }

    /// `name = "web"` becomes `name = "acme-web"` with the library and binary names kept;
    /// `web = { path = ... }` gains `package = "acme-web"`.
    fn rename_packages(&self, text: &str, folder: &str) -> String {
        let mut out = String::with_capacity(text.len() + 256);
        let mut lib_name: Option<&str> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(package) = PACKAGES
                .iter()
                .find(|p| trimmed == format!("name = \"{p}\""))
            {
                out.push_str(&format!("name = \"{}-{package}\"\n", self.name));
                lib_name = Some(package);
                continue;
            }
            // `shared = { path = "shared" }` and `shared = { path = "../shared", features = [...] }`.
            if let Some(package) = PACKAGES.iter().find(|p| {
                trimmed.starts_with(&format!("{p} = {{ path = ")) && !trimmed.contains("package =")
            }) {
                let renamed = line.replacen(
                    " path = ",
                    &format!(" package = \"{}-{package}\", path = ", self.name),
                    1,
                );
                out.push_str(&renamed);
                out.push('\n');
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        if let Some(package) = lib_name {
            // A library's name is its package's with '-' as '_'; the binary keeps the role name
            // the template, the tests and the scripts use.
            let has = |file: &str| self.files.iter().any(|f| *f == format!("{folder}{file}"));
            out = insert_targets(&out, package, has("src/lib.rs"), has("src/main.rs"));
        }
        out
    }

    /// `-p web` in scripts and docs becomes `-p acme-web`.
    fn rename_package_flags(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for package in PACKAGES {
            for flag in ["-p ", "--package "] {
                for end in [" ", "\n", "`", ")"] {
                    text = text.replace(
                        &format!("{flag}{package}{end}"),
                        &format!("{flag}{}-{package}{end}", self.name),
                    );
                }
            }
        }
        text
    }
}

/// Adds `[lib] name` (when the package has a library) and `[[bin]] name` (when it has
/// `src/main.rs`) under the renamed `[package]`, so code and tools keep the role names.
fn insert_targets(manifest: &str, package: &str, lib: bool, bin: bool) -> String {
    let mut targets = String::new();
    if lib {
        targets.push_str(&format!(
            "\n[lib]\nname = \"{}\"\n",
            package.replace('-', "_")
        ));
    }
    if bin {
        targets.push_str(&format!(
            "\n[[bin]]\nname = \"{package}\"\npath = \"src/main.rs\"\n"
        ));
    }
    if targets.is_empty() {
        return manifest.to_owned();
    }
    // Before the first table after [package] (or its metadata).
    let mut out = String::new();
    let mut in_package = false;
    let mut inserted = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') && !inserted {
            if in_package && !t.starts_with("[package") {
                out.push_str(targets.trim_start());
                out.push('\n');
                inserted = true;
            }
            in_package = t.starts_with("[package");
        }
        out.push_str(line);
        out.push('\n');
    }
    if !inserted {
        out.push_str(&targets);
    }
    out
}

/// Removes the regions between `markers`, the marker lines included; refuses unbalanced ones.
fn strip(text: &str, markers: (&str, &str)) -> anyhow::Result<String> {
    let (begin, end) = markers;
    let mut out = String::with_capacity(text.len());
    let mut inside: Option<usize> = None;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.contains(begin) {
            if let Some(open) = inside {
                bail!(
                    "line {}: {begin} inside the region opened on line {}",
                    n + 1,
                    open + 1
                );
            }
            inside = Some(n);
            continue;
        }
        if line.contains(end) {
            if inside.is_none() {
                bail!("line {}: {end} without {begin}", n + 1);
            }
            inside = None;
            continue;
        }
        if inside.is_none() {
            out.push_str(line);
        }
    }
    if let Some(open) = inside {
        bail!("line {}: {begin} is never closed", open + 1);
    }
    Ok(out)
}

/// `openapi` without the paths at or under `prefixes` and without the components (schemas,
/// responses) that only those paths reached; the shared parameters stay. The members are cut out of the text,
/// so what stays keeps its order, layout and comments-free formatting exactly.
fn drop_api_paths(openapi: &str, prefixes: &[&str]) -> anyhow::Result<String> {
    use std::collections::BTreeSet;
    let doc: serde_json::Value = serde_json::from_str(openapi).context("not valid JSON")?;
    let paths = doc
        .get("paths")
        .and_then(|p| p.as_object())
        .context("no \"paths\" object")?;
    let dropped_path = |path: &str| {
        prefixes.iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    // The components `doc` reaches through `$ref`, transitively; `keep` filters the paths.
    let reached = |keep: &dyn Fn(&str) -> bool| -> BTreeSet<(String, String)> {
        let mut roots = doc.clone();
        if let Some(map) = roots.as_object_mut() {
            map.remove("components");
            if let Some(paths) = map.get_mut("paths").and_then(|p| p.as_object_mut()) {
                paths.retain(|path, _| keep(path));
            }
        }
        let mut seen = BTreeSet::new();
        let mut todo = Vec::new();
        refs(&roots, &mut todo);
        while let Some(reference) = todo.pop() {
            let Some(rest) = reference.strip_prefix("#/components/") else {
                continue;
            };
            let Some((section, name)) = rest.split_once('/') else {
                continue;
            };
            if seen.insert((section.to_owned(), name.to_owned())) {
                refs(&doc["components"][section][name], &mut todo);
            }
        }
        seen
    };
    let before = reached(&|_| true);
    let after = reached(&|path| !dropped_path(path));
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let top = json_members(openapi, json_skip_ws(openapi, 0))?;
    let value_of = |members: &[JsonMember], key: &str| {
        members
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value_start)
            .with_context(|| format!("no \"{key}\""))
    };
    let path_members = json_members(openapi, value_of(&top, "paths")?)?;
    cuts.extend(member_cuts(openapi, &path_members, |key| dropped_path(key)));
    let components = json_members(openapi, value_of(&top, "components")?)?;
    // A section left with no member goes whole (no `"responses": {}`).
    let mut emptied = BTreeSet::new();
    for section in &components {
        // Kept whole: the security schemes, and the shared query and path parameters (page,
        // page size, id), which a team's own lists use (the first-model guide's notes do).
        if section.key == "securitySchemes" || section.key == "parameters" {
            continue;
        }
        let unused = |name: &str| {
            let id = (section.key.clone(), name.to_owned());
            before.contains(&id) && !after.contains(&id)
        };
        let members = json_members(openapi, section.value_start)?;
        if !members.is_empty() && members.iter().all(|m| unused(&m.key)) {
            emptied.insert(section.key.clone());
        } else {
            cuts.extend(member_cuts(openapi, &members, unused));
        }
    }
    cuts.extend(member_cuts(openapi, &components, |key| {
        emptied.contains(key)
    }));
    cuts.sort_unstable();
    let mut out = String::with_capacity(openapi.len());
    let mut at = 0;
    for (start, end) in cuts {
        // Cuts of neighbours overlap (one takes the comma before, the next the one after).
        let start = start.max(at);
        out.push_str(&openapi[at..start]);
        at = at.max(end);
    }
    out.push_str(&openapi[at..]);
    // What is left must still be a document with the paths kept.
    let left: serde_json::Value =
        serde_json::from_str(&out).context("cutting the example's paths broke the JSON")?;
    let kept = left["paths"].as_object().map_or(0, |p| p.len());
    let expected = paths.keys().filter(|p| !dropped_path(p)).count();
    if kept != expected {
        bail!("{kept} paths left where {expected} were expected");
    }
    Ok(out)
}

/// A Markdown table row cannot hold a comment (it would end the table), so rows that name an
/// example file or test (RELIABILITY.md's) go by rule instead of by marker.
fn drop_example_rows(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| {
            !(line.starts_with('|')
                && EXAMPLE_FILES
                    .iter()
                    .chain(EXAMPLE_TESTS)
                    .any(|name| line.contains(name)))
        })
        .collect()
}

/// `sql` without the statements that create `tables` or their indexes, each with the comment
/// lines right above it; runs of blank lines left behind become one.
fn drop_sql_tables(sql: &str, tables: &[&str]) -> String {
    let drops = |statement: &str| {
        let words: Vec<&str> = statement.split_whitespace().collect();
        match words.as_slice() {
            ["create", "table", table, ..] => tables.contains(table),
            ["create", "index" | "unique", ..] => words
                .windows(2)
                .any(|w| w[0] == "on" && tables.contains(&w[1])),
            _ => false,
        }
    };
    let mut out: Vec<&str> = Vec::new();
    // The comment lines since the last blank line, and the statement being read.
    let mut pending: Vec<&str> = Vec::new();
    for line in sql.split_inclusive('\n') {
        let t = line.trim();
        if t.is_empty() && !pending.iter().any(|l| !l.trim().starts_with("--")) {
            out.append(&mut pending);
            out.push(line);
            continue;
        }
        pending.push(line);
        if t.ends_with(';') {
            let statement: String = pending
                .iter()
                .filter(|l| !l.trim().starts_with("--"))
                .copied()
                .collect();
            if !drops(&statement) {
                out.append(&mut pending);
            }
            pending.clear();
        }
    }
    out.append(&mut pending);
    let mut text = String::with_capacity(sql.len());
    for line in out {
        if line.trim().is_empty() && (text.is_empty() || text.ends_with("\n\n")) {
            continue;
        }
        text.push_str(line);
    }
    text
}

/// Every `$ref` string under `value`.
fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(s) if key == "$ref" => out.push(s.clone()),
                    _ => refs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// One `"key": value` of a JSON object, by byte offsets into the text.
#[derive(Debug)]
struct JsonMember {
    key: String,
    key_start: usize,
    value_start: usize,
    value_end: usize,
}

/// The byte ranges that remove the members `drop` picks, with the comma that separates each
/// from its neighbour (the one before it, or after it for the first member).
fn member_cuts(
    text: &str,
    members: &[JsonMember],
    drop: impl Fn(&str) -> bool,
) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    for (i, member) in members.iter().enumerate() {
        if !drop(&member.key) {
            continue;
        }
        let cut = match (i.checked_sub(1), members.get(i + 1)) {
            (Some(previous), _) => (members[previous].value_end, member.value_end),
            (None, Some(next)) => (member.key_start, next.key_start),
            // The only member: the object becomes `{}` with its white space.
            (None, None) => (member.key_start, json_skip_ws(text, member.value_end)),
        };
        cuts.push(cut);
    }
    cuts
}

/// The members of the object whose `{` is at `start`.
fn json_members(text: &str, start: usize) -> anyhow::Result<Vec<JsonMember>> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'{') {
        bail!("byte {start}: an object was expected");
    }
    let mut members = Vec::new();
    let mut at = json_skip_ws(text, start + 1);
    if bytes.get(at) == Some(&b'}') {
        return Ok(members);
    }
    loop {
        let key_start = at;
        let key_end = json_value_end(text, key_start)?;
        let key: String = serde_json::from_str(&text[key_start..key_end])
            .with_context(|| format!("byte {key_start}: a key was expected"))?;
        at = json_skip_ws(text, key_end);
        if bytes.get(at) != Some(&b':') {
            bail!("byte {at}: ':' was expected");
        }
        let value_start = json_skip_ws(text, at + 1);
        let value_end = json_value_end(text, value_start)?;
        members.push(JsonMember {
            key,
            key_start,
            value_start,
            value_end,
        });
        at = json_skip_ws(text, value_end);
        match bytes.get(at) {
            Some(b',') => at = json_skip_ws(text, at + 1),
            Some(b'}') => return Ok(members),
            _ => bail!("byte {at}: ',' or '}}' was expected"),
        }
    }
}

fn json_skip_ws(text: &str, mut at: usize) -> usize {
    let bytes = text.as_bytes();
    while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// Where the JSON value that starts at `start` ends (exclusive). The text was parsed whole
/// before, so this only has to find the end, not to check the value.
fn json_value_end(text: &str, start: usize) -> anyhow::Result<usize> {
    let bytes = text.as_bytes();
    // After the string whose opening quote is at `at`.
    let string_end = |mut at: usize| {
        at += 1;
        while let Some(&c) = bytes.get(at) {
            match c {
                b'\\' => at += 2,
                b'"' => return Ok(at + 1),
                _ => at += 1,
            }
        }
        bail!("byte {start}: the string never ends")
    };
    match bytes.get(start) {
        Some(b'"') => string_end(start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut at = start;
            while let Some(&b) = bytes.get(at) {
                match b {
                    b'"' => {
                        at = string_end(at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            bail!("byte {start}: the value never ends")
        }
        // A number, true, false or null.
        Some(_) => Ok(bytes[start..]
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
            .map_or(bytes.len(), |n| start + n)),
        None => bail!("byte {start}: a value was expected"),
    }
}

/// Removes the marker lines alone and keeps what they enclose (checked like [`strip`]).
fn unmark(text: &str, markers: (&str, &str)) -> anyhow::Result<String> {
    // Balanced markers first, with strip's messages.
    strip(text, markers)?;
    let (begin, end) = markers;
    Ok(text
        .split_inclusive('\n')
        .filter(|line| !line.contains(begin) && !line.contains(end))
        .collect())
}

fn listed(list: &[&str], path: &str) -> bool {
    list.iter()
        .any(|entry| path == *entry || (entry.ends_with('/') && path.starts_with(entry)))
}

fn check_name(flag: &str, name: &str, max: usize) -> anyhow::Result<()> {
    let ok = name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        bail!(
            "{flag} {name:?}: lower-case letters, digits and single '-', starting with a letter, at most {max} characters"
        );
    }
    Ok(())
}

fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|first| first.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The files git knows in `source`: committed, and new ones not ignored.
fn tracked_files(source: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(source)
        .output()
        .context("cannot run git (startproject copies the files git tracks)")?;
    if !out.status.success() {
        bail!(
            "git ls-files failed in {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut files: Vec<String> = String::from_utf8(out.stdout)
        .context("git listed a file name that is not UTF-8")?
        .split('\0')
        .filter(|f| !f.is_empty())
        // Deleted but not yet committed.
        .filter(|f| source.join(f).is_file())
        .map(str::to_owned)
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

fn staging_dir(target: &Path) -> anyhow::Result<PathBuf> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("{} does not exist: create it first", parent.display());
    }
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .context("the target folder needs a name")?;
    let staging = parent.join(format!(".{name}.startproject-{}", std::process::id()));
    std::fs::create_dir(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    Ok(staging)
}

fn copy_permissions(from: &Path, to: &Path) -> anyhow::Result<()> {
    let permissions = std::fs::metadata(from)?.permissions();
    std::fs::set_permissions(to, permissions)
        .with_context(|| format!("cannot set the mode of {}", to.display()))
}

/// Lays the copy out as rustfmt would: shorter names and dropped list items let lines join.
/// Only a warning when it cannot (rustfmt missing): the code is right, only its layout is off.
fn format(manifest: &Path) {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["fmt", "--all", "--manifest-path"])
        .arg(manifest)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!(
            "warning: cargo fmt failed for {}: run `cargo fmt --all` there",
            manifest.display()
        );
    }
}

/// Renames our packages in the lock file with cargo's own writer; nothing else moves. Offline
/// first (every dependency is in cargo's cache after a build); a machine that never built one
/// of the manifests (`fuzz/` is built by `scripts/fuzz.sh` alone) has cargo read the registry's
/// index for it, and still only our own entries change.
fn update_lock_file(manifest: &Path) -> anyhow::Result<()> {
    let update = |offline: bool| {
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.args(["update", "--workspace", "--quiet"]);
        if offline {
            command.arg("--offline");
        }
        command
            .arg("--manifest-path")
            .arg(manifest)
            .output()
            .context("cannot run cargo to update the lock file")
    };
    if update(true)?.status.success() {
        return Ok(());
    }
    let output = update(false)?;
    if !output.status.success() {
        bail!(
            "cargo update --workspace failed for {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> Plan {
        let project = Project {
            dir: PathBuf::from("/tmp/x"),
            name: name.to_owned(),
            site_name: None,
            stack_name: None,
            region: "eu-west-1".to_owned(),
            from_email: Some("Noreply@Acme.example".to_owned()),
            without_example: false,
        };
        Plan::new(&project).unwrap()
    }

    #[test]
    fn starter_only_regions_are_dropped_with_their_markers_and_unbalanced_ones_refused() {
        let (begin, end) = STARTER_ONLY;
        let text = format!("a\n// {begin}\nb\n// {end}\nc\n# {begin}\nd\n# {end}\n");
        assert_eq!(strip(&text, STARTER_ONLY).unwrap(), "a\nc\n");
        for (bad, says) in [
            (format!("a\n// {begin}\nb\n"), "is never closed"),
            (format!("a\n// {end}\n"), "without"),
            (
                format!("// {begin}\n// {begin}\n// {end}\n"),
                "inside the region",
            ),
        ] {
            let err = strip(&bad, STARTER_ONLY).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn example_regions_are_dropped_or_only_unmarked() {
        let (begin, end) = EXAMPLE_APP;
        let text = format!("a\n    // {begin}\n    b\n    // {end}\nc\n");
        assert_eq!(strip(&text, EXAMPLE_APP).unwrap(), "a\nc\n");
        assert_eq!(unmark(&text, EXAMPLE_APP).unwrap(), "a\n    b\nc\n");
        let err = unmark(&format!("a\n// {begin}\n"), EXAMPLE_APP)
            .unwrap_err()
            .to_string();
        assert!(err.contains("never closed"), "{err}");
    }

    #[test]
    fn the_example_api_paths_go_with_the_components_only_they_use_and_the_rest_keeps_its_text() {
        let doc = r##"{
  "paths": {
    "/api/me": { "get": { "responses": { "200": { "$ref": "#/components/responses/Me" } } } },
    "/api/classes": { "get": { "parameters": [{ "$ref": "#/components/parameters/Page" }], "x": [1, true, null] } },
    "/api/classes/{id}": { "get": { "responses": { "200": { "$ref": "#/components/schemas/Class" } } } },
    "/api/classesque": {}
  },
  "components": {
    "parameters": { "Page": { "in": "query" } },
    "responses": { "Me": { "$ref": "#/components/schemas/Me" } },
    "schemas": {
      "Class": { "properties": { "next": { "$ref": "#/components/schemas/Slot" } } },
      "Me": { "type": "object", "note": "a \"quoted\" {brace}" },
      "Slot": { "type": "string" },
      "Unused": { "type": "string" }
    }
  }
}
"##;
        let out = drop_api_paths(doc, &["/api/classes"]).unwrap();
        assert_eq!(
            out,
            r##"{
  "paths": {
    "/api/me": { "get": { "responses": { "200": { "$ref": "#/components/responses/Me" } } } },
    "/api/classesque": {}
  },
  "components": {
    "parameters": { "Page": { "in": "query" } },
    "responses": { "Me": { "$ref": "#/components/schemas/Me" } },
    "schemas": {
      "Me": { "type": "object", "note": "a \"quoted\" {brace}" },
      "Unused": { "type": "string" }
    }
  }
}
"##
        );
    }

    #[test]
    fn the_example_tables_leave_a_migration_with_the_rest_and_one_blank_line_between() {
        let sql = "-- Header.\n\ncreate table classes (\n    id uuid\n);\ncreate index c_idx on classes (id);\n\n-- Runs.\ncreate table job_runs (\n    -- why\n    job text\n);\n\n-- Bookings.\ncreate table bookings (id uuid);\n";
        assert_eq!(
            drop_sql_tables(sql, &["classes", "bookings"]),
            "-- Header.\n\n-- Runs.\ncreate table job_runs (\n    -- why\n    job text\n);\n\n"
        );
    }

    #[test]
    fn bad_names_regions_and_site_names_are_refused_with_the_option_named() {
        let base = Project {
            dir: PathBuf::from("/tmp/x"),
            name: "acme".to_owned(),
            site_name: None,
            stack_name: None,
            region: "eu-west-1".to_owned(),
            from_email: None,
            without_example: false,
        };
        let cases: Vec<(Project, &str)> = vec![
            (
                Project {
                    name: "Acme".into(),
                    ..base.clone()
                },
                "--name",
            ),
            (
                Project {
                    name: "1acme".into(),
                    ..base.clone()
                },
                "--name",
            ),
            (
                Project {
                    name: "ac--me".into(),
                    ..base.clone()
                },
                "--name",
            ),
            (
                Project {
                    name: "acme-".into(),
                    ..base.clone()
                },
                "--name",
            ),
            (
                Project {
                    name: "a".repeat(31),
                    ..base.clone()
                },
                "--name",
            ),
            (
                Project {
                    stack_name: Some("my_stack".into()),
                    ..base.clone()
                },
                "--stack-name",
            ),
            (
                Project {
                    region: "europe".into(),
                    ..base.clone()
                },
                "--region",
            ),
            (
                Project {
                    region: "eu-west-x".into(),
                    ..base.clone()
                },
                "--region",
            ),
            (
                Project {
                    site_name: Some("A \"quoted\" name".into()),
                    ..base.clone()
                },
                "--site-name",
            ),
            (
                Project {
                    site_name: Some("  ".into()),
                    ..base.clone()
                },
                "--site-name",
            ),
            (
                Project {
                    site_name: Some("a".repeat(shared::config::MAX_SITE_NAME_CHARS + 1)),
                    ..base.clone()
                },
                "--site-name must be 1 to 100 characters",
            ),
            (
                Project {
                    from_email: Some("not an address".into()),
                    ..base.clone()
                },
                "--from-email",
            ),
        ];
        for (project, flag) in cases {
            let err = Plan::new(&project).unwrap_err().to_string();
            assert!(err.contains(flag), "{project:?}: {err}");
        }
        // As long as SITE_NAME may be.
        let longest = Project {
            site_name: Some("a".repeat(shared::config::MAX_SITE_NAME_CHARS)),
            ..base.clone()
        };
        assert!(Plan::new(&longest).is_ok());
    }

    #[test]
    fn the_defaults_follow_the_name() {
        let plan = plan("acme-classes");
        assert_eq!(plan.site_name, "Acme Classes");
        assert_eq!(plan.stack_name, "acme-classes");
        assert_eq!(plan.from_email.as_deref(), Some("noreply@acme.example"));
    }

    #[test]
    fn packages_get_the_prefix_and_keep_their_library_and_binary_names() {
        let mut plan = plan("acme");
        plan.files = vec![
            "functions/web/src/lib.rs".into(),
            "functions/web/src/main.rs".into(),
        ];
        let manifest = "[package]\nname = \"web\"\nversion = \"0.1.0\"\n\n[dependencies]\nshared = { path = \"../../shared\", features = [\"x\"] }\nserde.workspace = true\n";
        let renamed = plan.rename_packages(manifest, "functions/web/");
        assert_eq!(
            renamed,
            "[package]\nname = \"acme-web\"\nversion = \"0.1.0\"\n\n[lib]\nname = \"web\"\n\n[[bin]]\nname = \"web\"\npath = \"src/main.rs\"\n\n[dependencies]\nshared = { package = \"acme-shared\", path = \"../../shared\", features = [\"x\"] }\nserde.workspace = true\n"
        );
        assert_eq!(
            plan.rename_package_flags(
                "cargo test -p web --test it\n`cargo bench -p worker`\n-p webdriver\n"
            ),
            "cargo test -p acme-web --test it\n`cargo bench -p acme-worker`\n-p webdriver\n"
        );
    }
}
