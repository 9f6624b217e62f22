//! `process-occurrences` on many classes: time and database statements for the first run
//! (materializing two weeks of every class and queueing the reminders due) and for the next
//! tick (nothing new to do).
//!
//!     TEST_DATABASE_URL=postgres://... cargo bench -p scheduler --bench process_occurrences
//!
//! `CLASSES` sets the number of classes (default 10000): nine in ten repeat daily, one in ten
//! happens once within the hour with one booking (so as many reminders are due).

use std::time::Instant;

use chrono::{TimeDelta, Utc};
use shared::clock;
use shared::domain::EmailAddress;
use shared::domain::classes::{ClassInput, Recurrence, Schedule};
use shared::jobs::{self, Outcome};
use shared::queue::Queue;
use shared::store::{classes, users};
use shared::testing::{TestDb, backend, local_config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::var("CLASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let test = TestDb::new().await;
    let db = test.db.clone();
    let dir = tempfile::tempdir()?;
    let config = local_config(dir.path(), &[]);
    let (queue, _rx) = Queue::local();

    // Arrange: the classes (none materialized yet), and one booked one-off class in ten.
    let now = clock::now();
    let mut reminders_due = 0;
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut tx = db.begin().await?;
        for &i in chunk {
            let once = i % 10 == 0;
            let input = ClassInput {
                title: format!("Class {i}"),
                description: String::new(),
                location: "Studio".into(),
                schedule: Schedule {
                    starts_at: now + TimeDelta::minutes(if once { 30 } else { 60 * 24 }),
                    duration: TimeDelta::minutes(60),
                    recurrence: if once {
                        Recurrence::None
                    } else {
                        Recurrence::Daily
                    },
                    repeat_until: None,
                },
                capacity: 20,
            };
            let class = classes::insert_class(&mut tx, &input, now).await?;
            if once {
                let email = EmailAddress::parse(&format!("user{i}@example.com"))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let user = users::insert_user(
                    &mut tx,
                    &users::NewUser {
                        email,
                        password_hash: None,
                        is_verified: true,
                        is_staff: false,
                        is_superuser: false,
                    },
                    now,
                )
                .await?;
                let occurrence = classes::NewOccurrence {
                    class_id: class.id,
                    starts_at: input.schedule.starts_at,
                    ends_at: input.schedule.starts_at + input.schedule.duration,
                    capacity: 20,
                };
                classes::insert_occurrences(&mut tx, std::slice::from_ref(&occurrence)).await?;
                let page = classes::list_upcoming_occurrences(&mut tx, class.id, now, 1, 0)
                    .await?
                    .rows;
                classes::insert_booking(&mut tx, user.id, page[0].id, now).await?;
                classes::take_place(&mut tx, page[0].id, now).await?;
                reminders_due += 1;
            }
        }
        tx.commit().await?;
    }

    let deps = jobs::Deps {
        db: &db,
        config: &config,
        queue: &queue,
    };
    for (label, tick) in [
        ("first run", Utc::now()),
        ("next tick", Utc::now() + TimeDelta::minutes(15)),
    ] {
        let statements = shared::db::statements_run();
        let started = Instant::now();
        let outcome = jobs::run(&deps, "process-occurrences", tick).await?;
        let elapsed = started.elapsed();
        let statements = shared::db::statements_run() - statements;
        let Outcome::Ran(detail) = outcome else {
            anyhow::bail!("the tick was already done");
        };
        eprintln!(
            "process-occurrences, {count} classes on {}, {label}: {:.0} ms, {statements} statements ({detail})",
            backend(),
            elapsed.as_secs_f64() * 1000.0,
        );
    }
    eprintln!("reminders due: {reminders_due}");
    Ok(())
}
