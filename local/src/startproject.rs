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
//! 2. Renames: packages `<name>-<role>` (`acme-web`; the code keeps `web::`, `shared::`: the
//!    dependency keys, library and binary names stay), the site name, the project's name where
//!    it names this one (`serverless-starter`), the stack, the region and the sender address in
//!    samconfig.toml.
//! 3. Writes the copy into a new folder beside `<dir>` and renames it into place when every file
//!    is written, so a failure leaves nothing half made; then brings the lock files in line with
//!    the new package names (`cargo update --workspace --offline`: only our own entries change).

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
            let path = staging.join(file);
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
        if site_name.is_empty() || site_name.chars().count() > 60 {
            bail!("--site-name must be 1 to 60 characters");
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
            files: Vec::new(),
        })
    }

    /// What becomes of one file: `None` when it is left out.
    fn file(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
        if listed(STARTER_FILES, path) {
            return Ok(None);
        }
        // Images and other binary files are copied as they are.
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(binary) => return Ok(Some(binary.into_bytes())),
        };
        let text = strip(&text, STARTER_ONLY).with_context(|| format!("in {path}"))?;
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

/// Renames our packages in the lock file with cargo's own writer; nothing else moves.
fn update_lock_file(manifest: &Path) -> anyhow::Result<()> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "update",
            "--workspace",
            "--offline",
            "--quiet",
            "--manifest-path",
        ])
        .arg(manifest)
        .status()
        .context("cannot run cargo to update the lock file")?;
    if !status.success() {
        bail!(
            "cargo update --workspace --offline failed for {}: run `cargo update --workspace` there",
            manifest.display()
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
    fn bad_names_regions_and_site_names_are_refused_with_the_option_named() {
        let base = Project {
            dir: PathBuf::from("/tmp/x"),
            name: "acme".to_owned(),
            site_name: None,
            stack_name: None,
            region: "eu-west-1".to_owned(),
            from_email: None,
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
