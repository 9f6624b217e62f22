//! The worked example that `docs/first-model.md` ("Your first model") quotes: notes a
//! signed-in user keeps. It lives here, compiled with the tests only, so that every sample of
//! the guide is code the compiler and the tests have seen.
//!
//! The modules mirror where a real model's files go (`guide::store::notes` is
//! `shared/src/store/notes.rs`), and the example refers to its own modules as
//! `crate::guide::...` where the real files say `crate::...`. [`check_quoted`] compares each
//! `rust` code block of the guide with these files after two rewrites, and only these: the
//! `guide::` segment is dropped from paths, and lines marked `// (worked example only)` (the
//! wiring a real model gets from `JOBS`, `migrations/` and the router instead) are left out.
//! The guide's SQL is applied by [`apply_migration`], so the example's tests run on the
//! guide's own schema, on SQLite and on PostgreSQL.

pub mod domain {
    pub mod notes;
}
pub mod store {
    pub mod notes;
}
pub mod services {
    pub mod notes;
}
pub mod jobs {
    pub mod purge_archived_notes;
}

use crate::db::Db;

/// The guide's text.
pub const GUIDE: &str = include_str!("../../../docs/first-model.md");

/// What marks a line of the example that the guide leaves out.
pub const EXAMPLE_ONLY: &str = "// (worked example only)";

/// The fenced blocks of the guide in language `lang` (`rust`, `sql`, `html`, ...), in order.
pub fn blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in GUIDE.lines() {
        match &mut current {
            None if line.trim_end() == fence => current = Some(Vec::new()),
            Some(lines) if line.trim_end() == "```" => {
                found.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    found
}

/// The guide's one SQL block (the migration).
pub fn migration() -> String {
    let sql = blocks("sql");
    assert_eq!(sql.len(), 1, "the guide shows one migration");
    sql.into_iter().next().unwrap_or_default()
}

/// Applies the guide's migration to `db` (one already migrated to the app's schema).
pub async fn apply_migration(db: &Db) -> anyhow::Result<()> {
    let sql = migration();
    let mut conn = db.acquire().await?;
    crate::on_conn!(&mut conn, |c| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The example's source as the guide shows it: without the `guide::` segment and without the
/// lines marked [`EXAMPLE_ONLY`].
pub fn as_quoted(source: &str) -> String {
    source
        .lines()
        .filter(|line| !line.trim_end().ends_with(EXAMPLE_ONLY))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("guide::", "")
}

/// Checks that every `rust` code block of the guide whose first line names a file under
/// `prefix` (`// shared/src/store/notes.rs`) appears, apart from that line, in one of
/// `sources` (as [`as_quoted`] gives them). Returns how many blocks it checked; panics naming
/// the first block it cannot find.
pub fn check_quoted(prefix: &str, sources: &[&str]) -> usize {
    let sources: Vec<String> = sources.iter().map(|s| as_quoted(s)).collect();
    let mut checked = 0;
    for block in blocks("rust") {
        let (first, body) = block.split_once('\n').unwrap_or((&block, ""));
        let Some(path) = first.strip_prefix("// ") else {
            panic!("a rust block of the guide does not start with `// <its file>`:\n{block}");
        };
        if !path.starts_with(prefix) {
            continue;
        }
        assert!(
            sources.iter().any(|s| s.contains(body)),
            "this block of the guide ({path}) is not in the worked example, as written:\n{body}"
        );
        checked += 1;
    }
    checked
}
