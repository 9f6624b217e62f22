//! `makemigration <name>`: a new, empty migration file with the portability rules in its
//! header, like `manage.py makemigrations --empty`. The SQL is written by hand: there are no
//! models to diff.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};

/// Where the command looks, relative to the current directory (the workspace root, where
/// `cargo run` is run).
const FOLDER: &str = "migrations";

/// Writes `migrations/<UTC timestamp>_<name>.sql` and prints its path.
pub fn makemigration(name: &str) -> anyhow::Result<()> {
    let name = normalise(name)?;
    let folder = Path::new(FOLDER);
    if !folder.is_dir() {
        bail!(
            "no {FOLDER}/ folder in the current directory: run makemigration from the workspace root"
        );
    }
    let path = write(folder, &name, shared::clock::now())?;
    println!("Wrote {}", path.display());
    println!(
        "Write its SQL, then `cargo run` (or `cargo run -- migrate`): the build embeds {FOLDER}/ again and applies it."
    );
    Ok(())
}

/// Lower case, runs of spaces, `-` and `_` as one `_`; letters (ASCII) and digits only.
fn normalise(raw: &str) -> anyhow::Result<String> {
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ')))
    {
        bail!("a migration name has letters, digits, '-', '_' and spaces only, not {c:?}");
    }
    let words: Vec<String> = raw
        .split(['-', '_', ' '])
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        bail!("the migration needs a name, e.g. `cargo run -- makemigration add rooms`");
    }
    Ok(words.join("_"))
}

fn write(folder: &Path, name: &str, now: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    let version = now.format("%Y%m%d%H%M%S").to_string();
    // sqlx refuses two migrations with one version, whatever their names.
    let entries =
        std::fs::read_dir(folder).with_context(|| format!("cannot list {}", folder.display()))?;
    for entry in entries {
        let file = entry?.file_name();
        if file.to_string_lossy().starts_with(&format!("{version}_")) {
            bail!(
                "{} already has a migration numbered {version}: wait a second and run it again",
                folder.display()
            );
        }
    }
    let path = folder.join(format!("{version}_{name}.sql"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(header(name).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn header(name: &str) -> String {
    format!(
        "\
-- {words}: say what this migration changes, and why.
--
-- This file runs unchanged on SQLite and PostgreSQL (docs/database.md):
-- * types: uuid ids (v7, made in Rust), timestamptz, boolean, text, integer, bigint;
-- * times are written from Rust in UTC (shared::clock::now), never by a database default
--   such as now() or current_timestamp;
-- * status columns are text with a check constraint, not enum types;
-- * portable SQL only: no `for update skip locked`, ilike, `::` casts, enum types,
--   `generated ... as identity` or arrays;
-- * it runs in a transaction; once applied anywhere, never edit it: add another migration.
-- Lowercase SQL, with comments that explain each choice. `cargo test` applies every
-- migration from empty; run it on PostgreSQL too (scripts/throwaway-postgres.sh).

",
        words = name.replace('_', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_or_refused() {
        for (raw, expected) in [
            ("add rooms", Some("add_rooms")),
            ("Add-Rooms__2", Some("add_rooms_2")),
            ("  index on  users ", Some("index_on_users")),
            ("", None),
            (" - _ ", None),
            ("rooms;drop", None),
            ("../escape", None),
            ("salle_été", None),
        ] {
            assert_eq!(normalise(raw).ok().as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn a_file_is_never_overwritten_nor_a_version_reused() {
        let dir = tempfile::tempdir().unwrap();
        let now = "2026-12-02T03:04:05Z".parse().unwrap();
        let path = write(dir.path(), "add_rooms", now).unwrap();
        assert_eq!(path.file_name().unwrap(), "20261202030405_add_rooms.sql");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-- add rooms: "), "{text}");
        assert!(text.contains("SQLite and PostgreSQL"), "{text}");

        for name in ["add_rooms", "other"] {
            let err = write(dir.path(), name, now).unwrap_err().to_string();
            assert!(err.contains("already has a migration numbered"), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
