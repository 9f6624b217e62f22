//! Materializing is a fixed number of statements per batch, whatever the number of classes.
//! Alone in its binary: the statement counter is process-wide, so no other test may run
//! queries at the same time.

use chrono::{TimeDelta, Utc};
use shared::domain::classes::ClassDraft;
use shared::services::classes;
use shared::testing::{TestDb, local_config, user};

#[tokio::test]
async fn materializing_thirty_classes_is_one_batch_of_three_statements() {
    let dir = tempfile::tempdir().unwrap();
    let tz = local_config(dir.path(), &[]).time_zone;
    let test = TestDb::new().await;
    let staff = user(&test.db, "staff@example.com", true, true).await;
    for i in 0..30 {
        let draft = ClassDraft {
            title: Some(format!("Class {i}")),
            starts_at: Some((Utc::now() + TimeDelta::hours(2)).to_rfc3339()),
            duration_minutes: Some(45),
            capacity: Some(5),
            recurrence: Some("daily".into()),
            ..Default::default()
        };
        classes::create_class(&test.db, tz, &staff, &draft)
            .await
            .unwrap();
    }
    let mut conn = test.db.acquire().await.unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query("update classes set materialized_until = null")
    )
    .unwrap();
    shared::execute!(&mut conn, sqlx::query("delete from occurrences")).unwrap();
    drop(conn);

    let before = shared::db::statements_run();
    let done = classes::materialize_all(&test.db, tz, shared::clock::now())
        .await
        .unwrap();
    let statements = shared::db::statements_run() - before;
    assert_eq!(done.classes, 30);
    assert!(done.occurrences >= 30 * 15, "{done:?}");
    // Select the classes, insert every occurrence, record the horizon.
    assert_eq!((done.batches, statements), (1, 3));
}
