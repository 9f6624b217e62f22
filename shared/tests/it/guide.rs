//! The worked example of docs/first-model.md (`shared::guide`): the guide's samples are its
//! code, its migration builds the schema these tests run on, and what it tells a developer to
//! add to template.yaml has the shape of the schedules there.

use chrono::TimeDelta;
use shared::domain::User;
use shared::error::Error;
use shared::guide;
use shared::guide::domain::notes::NoteBody;
use shared::guide::jobs::purge_archived_notes;
use shared::guide::services::notes;
use shared::jobs::Deps;
use shared::pagination::PageRequest;
use shared::queue::Queue;
use shared::testing::{self, TestDb};

/// The example's files, as the guide quotes them.
const EXAMPLE: &[&str] = &[
    include_str!("../../src/guide/domain/notes.rs"),
    include_str!("../../src/guide/store/notes.rs"),
    include_str!("../../src/guide/services/notes.rs"),
    include_str!("../../src/guide/jobs/purge_archived_notes.rs"),
    include_str!("guide.rs"),
];

#[test]
fn every_shared_sample_of_the_guide_is_in_the_worked_example() {
    let checked = guide::check_quoted("shared/", EXAMPLE);
    assert_eq!(checked, 5, "the guide shows five files of shared");
    for block in guide::blocks("rust") {
        let first = block.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("// shared/") || first.starts_with("// functions/web/"),
            "a rust block names a file no test checks: {first}"
        );
    }
}

#[test]
fn the_guides_schedule_is_the_shape_of_the_schedules_in_template_yaml() {
    let yaml = guide::blocks("yaml");
    assert_eq!(yaml.len(), 1, "the guide shows one schedule");
    let template = include_str!("../../../template.yaml");
    let purge_expired = yaml[0]
        .replace("PurgeArchivedNotes", "PurgeExpired")
        .replace("purge-archived-notes every day", "purge-expired every hour")
        .replace("rate(1 day)", "rate(1 hour)")
        .replace("purge-archived-notes", "purge-expired");
    assert!(
        template.contains(&purge_expired),
        "template.yaml has no schedule shaped like the guide's:\n{}",
        yaml[0]
    );
    assert_eq!(
        purge_archived_notes::JOB.schedule_expression(),
        "rate(1 day)"
    );
}

#[test]
fn a_note_body_is_trimmed_and_refused_when_empty_too_long_or_holding_a_nul() {
    let cases = [
        ("  buy milk \n", Ok("buy milk"), "trimmed"),
        ("two\nlines", Ok("two\nlines"), "line breaks are fine"),
        ("   ", Err(()), "only spaces"),
        ("a\0b", Err(()), "a NUL"),
        (&"x".repeat(NoteBody::MAX_CHARS + 1), Err(()), "too long"),
    ];
    for (raw, expected, why) in cases {
        let parsed = NoteBody::parse(raw);
        let parsed = parsed.as_ref().map(NoteBody::as_str).map_err(|_| ());
        assert_eq!(parsed, expected, "{why}");
    }
}

/// A fresh database with the app's migrations and the guide's.
async fn notes_db() -> TestDb {
    let test_db = TestDb::new().await;
    guide::apply_migration(&test_db.db).await.unwrap();
    test_db
}

async fn ada_and_bob(test_db: &TestDb) -> (User, User) {
    let ada = testing::user(&test_db.db, "ada@example.com", true, false).await;
    let bob = testing::user(&test_db.db, "bob@example.com", true, false).await;
    (ada, bob)
}

#[tokio::test]
async fn the_guides_migration_applies_to_a_freshly_migrated_database() {
    let test_db = TestDb::new().await;
    guide::apply_migration(&test_db.db).await.unwrap();
}

#[tokio::test]
async fn a_user_sees_their_own_notes_newest_first_and_never_anyone_elses() {
    let test_db = TestDb::new().await;
    guide::apply_migration(&test_db.db).await.unwrap(); // (worked example only)
    let db = &test_db.db;
    let ada = testing::user(db, "ada@example.com", true, false).await;
    let bob = testing::user(db, "bob@example.com", true, false).await;
    notes::add_note(db, &ada, "buy milk").await.unwrap();
    notes::add_note(db, &ada, "call the plumber").await.unwrap();

    let adas = notes::list_notes(db, &ada, PageRequest::default())
        .await
        .unwrap();
    let bodies: Vec<_> = adas.results.iter().map(|n| n.body.as_str()).collect();
    assert_eq!(bodies, ["call the plumber", "buy milk"]);

    let bobs = notes::list_notes(db, &bob, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(bobs.count, 0);
    let archived = notes::archive_note(db, &bob, adas.results[0].id).await;
    assert!(matches!(archived, Err(Error::NotFound(_))), "{archived:?}");
}

#[tokio::test]
async fn an_empty_note_is_refused_naming_its_field() {
    let test_db = notes_db().await;
    let (ada, _) = ada_and_bob(&test_db).await;
    match notes::add_note(&test_db.db, &ada, "  ").await {
        Err(Error::Invalid(fields)) => assert!(fields.contains_key("body"), "{fields:?}"),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_purge_job_deletes_notes_archived_over_30_days_ago_and_keeps_the_rest() {
    let test_db = notes_db().await;
    let db = &test_db.db;
    let (ada, _) = ada_and_bob(&test_db).await;
    let old = notes::add_note(db, &ada, "old").await.unwrap();
    let recent = notes::add_note(db, &ada, "recent").await.unwrap();
    notes::add_note(db, &ada, "kept").await.unwrap();
    notes::archive_note(db, &ada, old.id).await.unwrap();
    notes::archive_note(db, &ada, recent.id).await.unwrap();
    let long_ago = shared::clock::now() - purge_archived_notes::KEEP_ARCHIVED - TimeDelta::days(1);
    let mut conn = db.acquire().await.unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query("update notes set archived_at = $1 where id = $2")
            .bind(long_ago)
            .bind(old.id)
    )
    .unwrap();
    drop(conn);

    let dir = tempfile::tempdir().unwrap();
    let config = testing::local_config(dir.path(), &[]);
    let (queue, _) = Queue::local();
    let deps = Deps {
        db,
        config: &config,
        queue: &queue,
    };
    let report = (purge_archived_notes::JOB.run)(&deps).await.unwrap();
    assert_eq!(report, "deleted 1 archived notes");
    // Idempotent: a second run finds nothing more to do.
    let report = (purge_archived_notes::JOB.run)(&deps).await.unwrap();
    assert_eq!(report, "deleted 0 archived notes");

    let mut conn = db.acquire().await.unwrap();
    let left: Vec<String> = shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar("select body from notes order by body")
            .fetch_all(&mut *c)
            .await
    })
    .unwrap();
    assert_eq!(left, ["kept", "recent"]);
}
