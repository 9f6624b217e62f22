//! Classes, bookings, reminders and scheduled job runs, on the database under test.

use chrono::{DateTime, TimeDelta, Utc};
use shared::config::Config;
use shared::domain::User;
use shared::domain::classes::{Class, ClassDraft};
use shared::error::Error;
use shared::jobs::{self, Outcome};
use shared::mail::{FakeMailer, Mailer};
use shared::pagination::PageRequest;
use shared::queue::{LocalMessage, Message, Queue};
use shared::services::{classes, outbox};
use shared::testing::faults::Fault;
use shared::testing::{TestDb, local_config, user};

struct World {
    test: TestDb,
    config: Config,
    queue: Queue,
    staff: User,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(dir.path(), &[("TIME_ZONE", "Europe/London")]);
        let test = TestDb::new().await;
        let staff = user(&test.db, "staff@example.com", true, true).await;
        let (queue, _) = Queue::local();
        Self {
            test,
            config,
            queue,
            staff,
            _dir: dir,
        }
    }

    fn deps(&self) -> jobs::Deps<'_> {
        jobs::Deps {
            db: &self.test.db,
            config: &self.config,
            queue: &self.queue,
        }
    }

    async fn class(&self, starts_in: TimeDelta, recurrence: &str, capacity: i64) -> Class {
        let draft = ClassDraft {
            title: Some("Yoga".into()),
            location: Some("Studio 1".into()),
            starts_at: Some((Utc::now() + starts_in).to_rfc3339()),
            duration_minutes: Some(60),
            capacity: Some(capacity),
            recurrence: Some(recurrence.into()),
            ..Default::default()
        };
        classes::create_class(&self.test.db, self.config.time_zone, &self.staff, &draft)
            .await
            .unwrap()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let mut conn = self.test.db.acquire().await.unwrap();
        shared::on_conn!(&mut conn, |c| sqlx::query_scalar(sql)
            .fetch_one(&mut *c)
            .await)
        .unwrap()
    }

    async fn first_occurrence(&self, class: &Class) -> uuid::Uuid {
        classes::list_occurrences(&self.test.db, class.id, PageRequest::default())
            .await
            .unwrap()
            .results[0]
            .id
    }
}

#[tokio::test]
async fn creating_a_class_materializes_its_next_two_weeks_and_materializing_again_adds_nothing() {
    let w = World::new().await;
    let daily = w.class(TimeDelta::hours(2), "daily", 10).await;
    let weekly = w.class(TimeDelta::hours(3), "weekly", 10).await;
    let once = w.class(TimeDelta::days(3), "none", 10).await;
    let count = |class: &Class| {
        let (db, id) = (&w.test.db, class.id);
        async move {
            classes::list_occurrences(db, id, PageRequest::default())
                .await
                .unwrap()
                .count
        }
    };
    // 14 days ahead (plus the day of slack): 15 or 16 daily starts, 3 weekly, 1 one-off.
    let daily_count = count(&daily).await;
    assert!((15..=16).contains(&daily_count), "{daily_count}");
    assert_eq!(count(&weekly).await, 3);
    assert_eq!(count(&once).await, 1);
    let before = w.count("select count(*) from occurrences").await;

    let outcome = jobs::run(&w.deps(), "process-occurrences", Utc::now())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Ran(_)), "{outcome:?}");
    assert_eq!(w.count("select count(*) from occurrences").await, before);
    // The next pass reads no class: each is materialized far enough (the one-off for good).
    let again = classes::materialize_all(&w.test.db, w.config.time_zone, shared::clock::now())
        .await
        .unwrap();
    assert_eq!((again.classes, again.batches), (0, 0));
    // Forcing every class to be materialized again changes nothing either.
    let mut conn = w.test.db.acquire().await.unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query("update classes set materialized_until = null")
    )
    .unwrap();
    drop(conn);
    let done = classes::materialize_all(&w.test.db, w.config.time_zone, shared::clock::now())
        .await
        .unwrap();
    assert_eq!((done.classes, done.occurrences), (3, 0));
    assert_eq!(w.count("select count(*) from occurrences").await, before);
}

#[tokio::test]
async fn twenty_concurrent_bookings_for_five_places_give_five_bookings_and_fifteen_refusals() {
    let w = World::new().await;
    let class = w.class(TimeDelta::days(2), "none", 5).await;
    let occurrence = w.first_occurrence(&class).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(user(&w.test.db, &format!("u{i}@example.com"), true, false).await);
    }
    let attempts = users
        .iter()
        .map(|u| classes::book(&w.test.db, u, occurrence));
    let results = futures_util::future::join_all(attempts).await;
    let booked = results.iter().filter(|r| r.is_ok()).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict(m)) if m.contains("full")))
        .count();
    assert_eq!((booked, full), (5, 15), "{results:?}");
    assert_eq!(w.count("select count(*) from bookings").await, 5);
    assert_eq!(
        w.count("select cast(booked as bigint) from occurrences")
            .await,
        5
    );
}

#[tokio::test]
async fn booking_needs_a_verified_account_and_twice_is_a_conflict_and_cancel_frees_the_place() {
    let w = World::new().await;
    let class = w.class(TimeDelta::days(2), "none", 1).await;
    let occurrence = w.first_occurrence(&class).await;
    let unverified = user(&w.test.db, "new@example.com", false, false).await;
    assert!(matches!(
        classes::book(&w.test.db, &unverified, occurrence).await,
        Err(Error::Forbidden(m)) if m.contains("verify")
    ));
    let ada = user(&w.test.db, "ada@example.com", true, false).await;
    let bob = user(&w.test.db, "bob@example.com", true, false).await;
    let booking = classes::book(&w.test.db, &ada, occurrence).await.unwrap();
    assert_eq!(
        (booking.class_id, booking.class_title.as_str()),
        (class.id, "Yoga")
    );
    assert!(matches!(
        classes::book(&w.test.db, &ada, occurrence).await,
        Err(Error::Conflict(m)) if m.contains("already booked")
    ));
    assert!(matches!(
        classes::book(&w.test.db, &bob, occurrence).await,
        Err(Error::Conflict(m)) if m.contains("full")
    ));
    classes::cancel_booking(&w.test.db, &ada, occurrence)
        .await
        .unwrap();
    assert!(matches!(
        classes::cancel_booking(&w.test.db, &ada, occurrence).await,
        Err(Error::NotFound(_))
    ));
    classes::book(&w.test.db, &bob, occurrence).await.unwrap();
    let page = classes::list_bookings(&w.test.db, &bob, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.count, 1);
    assert!(matches!(
        classes::book(&w.test.db, &ada, uuid::Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn only_staff_change_classes_and_bad_fields_are_422s() {
    let w = World::new().await;
    let ada = user(&w.test.db, "ada@example.com", true, false).await;
    let draft = ClassDraft {
        title: Some("Yoga".into()),
        ..Default::default()
    };
    assert!(matches!(
        classes::create_class(&w.test.db, w.config.time_zone, &ada, &draft).await,
        Err(Error::Forbidden(_))
    ));
    match classes::create_class(&w.test.db, w.config.time_zone, &w.staff, &draft).await {
        Err(Error::Invalid(fields)) => assert!(fields.contains_key("starts_at"), "{fields:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_schedule_change_moves_unbooked_occurrences_and_keeps_booked_ones() {
    let w = World::new().await;
    let class = w.class(TimeDelta::hours(30), "daily", 3).await;
    let first = w.first_occurrence(&class).await;
    let ada = user(&w.test.db, "ada@example.com", true, false).await;
    classes::book(&w.test.db, &ada, first).await.unwrap();
    let moved = ClassDraft {
        starts_at: Some((class.schedule.starts_at + TimeDelta::hours(2)).to_rfc3339()),
        recurrence: Some("weekly".into()),
        capacity: Some(2),
        ..Default::default()
    };
    classes::update_class(&w.test.db, w.config.time_zone, &w.staff, class.id, &moved)
        .await
        .unwrap();
    let page = classes::list_occurrences(&w.test.db, class.id, PageRequest::default())
        .await
        .unwrap();
    let starts: Vec<DateTime<Utc>> = page.results.iter().map(|o| o.starts_at).collect();
    assert!(
        page.results.iter().any(|o| o.id == first && o.booked == 1),
        "the booked one stays"
    );
    // The booked one, then weekly at the new time within the 15 days materialized.
    assert_eq!(page.count, 3, "{starts:?}");
    assert_eq!(starts[2] - starts[1], TimeDelta::days(7));
    assert_eq!(starts[1], class.schedule.starts_at + TimeDelta::hours(2));
    assert!(page.results.iter().all(|o| o.capacity == 2));
}

/// Books Ada into a class starting in `starts_in`.
async fn booked(w: &World, starts_in: TimeDelta, email: &str) {
    let class = w.class(starts_in, "none", 10).await;
    let occurrence = w.first_occurrence(&class).await;
    let u = user(&w.test.db, email, true, false).await;
    classes::book(&w.test.db, &u, occurrence).await.unwrap();
}

#[tokio::test]
async fn each_reminder_is_queued_once_even_when_two_runs_race() {
    let w = World::new().await;
    booked(&w, TimeDelta::minutes(30), "soon1@example.com").await;
    booked(&w, TimeDelta::minutes(50), "soon2@example.com").await;
    booked(&w, TimeDelta::hours(3), "later@example.com").await;

    // Two different ticks at once (so the job-run key does not serialize them): the claim does.
    let deps = w.deps();
    let now = Utc::now();
    let (a, b) = tokio::join!(
        jobs::run(&deps, "process-occurrences", now),
        jobs::run(&deps, "process-occurrences", now - TimeDelta::minutes(15)),
    );
    a.unwrap();
    b.unwrap();
    jobs::run(&deps, "process-occurrences", now + TimeDelta::minutes(15))
        .await
        .unwrap();
    let mut conn = w.test.db.acquire().await.unwrap();
    let to: Vec<String> = shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar(
            "select to_address from emails where kind = 'reminder' order by to_address",
        )
        .fetch_all(&mut *c)
        .await
    })
    .unwrap();
    assert_eq!(to, vec!["soon1@example.com", "soon2@example.com"]);
    let body: String = shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar("select body_text from emails where kind = 'reminder' limit 1")
            .fetch_one(&mut *c)
            .await
    })
    .unwrap();
    assert!(
        body.contains("Yoga") && body.contains("Studio 1") && body.contains("/bookings"),
        "{body}"
    );
}

#[tokio::test]
async fn one_tick_runs_once_however_often_or_concurrently_it_is_delivered() {
    let w = World::new().await;
    let deps = w.deps();
    let tick: DateTime<Utc> = "2026-11-28T09:30:00Z".parse().unwrap();
    let runs = (0..5).map(|_| jobs::run(&deps, "sweep-outbox", tick));
    let outcomes = futures_util::future::join_all(runs).await;
    let ran = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Outcome::Ran(_))))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Outcome::AlreadyDone)))
        .count();
    assert_eq!((ran, skipped), (1, 4), "{outcomes:?}");
    assert_eq!(
        jobs::run(&deps, "sweep-outbox", tick).await.unwrap(),
        Outcome::AlreadyDone
    );
    assert_eq!(w.count("select count(*) from job_runs").await, 1);
    assert_eq!(
        w.count("select count(*) from job_runs where status = 'succeeded'")
            .await,
        1
    );
}

#[tokio::test]
async fn an_abandoned_run_is_taken_over_by_the_next_delivery_of_its_tick() {
    let w = World::new().await;
    let deps = w.deps();
    let tick: DateTime<Utc> = "2026-11-28T09:30:00Z".parse().unwrap();
    // A run that claimed the tick and died (its Lambda timed out) long ago.
    let mut conn = w.test.db.acquire().await.unwrap();
    let long_ago = Utc::now() - TimeDelta::hours(1);
    shared::store::jobs::begin_run(
        &mut conn,
        "purge-expired",
        tick,
        long_ago,
        long_ago - TimeDelta::hours(1),
    )
    .await
    .unwrap();
    drop(conn);
    let outcome = jobs::run(&deps, "purge-expired", tick).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Ran(ref d) if d.starts_with("deleted")),
        "{outcome:?}"
    );
    assert_eq!(
        w.count("select cast(attempts as bigint) from job_runs")
            .await,
        2
    );
}

#[tokio::test]
async fn an_unknown_job_is_an_error_not_a_silent_success() {
    let w = World::new().await;
    match jobs::run(&w.deps(), "process-occurences", Utc::now()).await {
        Err(Error::BadRequest(m)) => assert!(
            m.contains("unknown job") && m.contains("process-occurrences"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.count("select count(*) from job_runs").await, 0);
}

#[tokio::test]
async fn purge_expired_deletes_what_expired_and_keeps_the_rest() {
    let w = World::new().await;
    let ada = user(&w.test.db, "ada@example.com", true, false).await;
    let now = shared::clock::now();
    let mut conn = w.test.db.acquire().await.unwrap();
    for (hash, expires) in [
        ("a", now - TimeDelta::days(1)),
        ("b", now + TimeDelta::days(1)),
    ] {
        shared::store::sessions::insert_session(
            &mut conn,
            hash,
            ada.id,
            now - TimeDelta::days(20),
            expires,
        )
        .await
        .unwrap();
    }
    shared::store::throttle::record_failure(
        &mut conn,
        "ip:1",
        now - TimeDelta::hours(2),
        now - TimeDelta::hours(3),
    )
    .await
    .unwrap();
    shared::store::throttle::record_failure(&mut conn, "ip:2", now, now - TimeDelta::minutes(15))
        .await
        .unwrap();
    drop(conn);
    let outcome = jobs::run(&w.deps(), "purge-expired", Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Ran(ref d) if d.contains("1 sessions") && d.contains("1 login windows")),
        "{outcome:?}"
    );
    assert_eq!(w.count("select count(*) from sessions").await, 1);
    assert_eq!(w.count("select count(*) from auth_throttle").await, 1);
}

#[tokio::test]
async fn an_update_that_keeps_the_schedule_keeps_the_occurrence_ids() {
    let w = World::new().await;
    let class = w.class(TimeDelta::hours(30), "daily", 3).await;
    let ids = |db: &shared::db::Db, id| {
        let db = db.clone();
        async move {
            let page = classes::list_occurrences(&db, id, PageRequest::default())
                .await
                .unwrap();
            page.results
                .iter()
                .map(|o| (o.id, o.capacity))
                .collect::<Vec<_>>()
        }
    };
    let before = ids(&w.test.db, class.id).await;
    let retitled = ClassDraft {
        title: Some("Hot yoga".into()),
        capacity: Some(5),
        ..Default::default()
    };
    classes::update_class(
        &w.test.db,
        w.config.time_zone,
        &w.staff,
        class.id,
        &retitled,
    )
    .await
    .unwrap();
    let after = ids(&w.test.db, class.id).await;
    assert_eq!(
        after,
        before.iter().map(|(id, _)| (*id, 5)).collect::<Vec<_>>(),
        "same occurrences, new capacity"
    );
}

/// Runs `process-occurrences` for `tick` until it reaches the fault point `point`, and drops it
/// there: the run's Lambda crashed (or timed out) at that point.
async fn crash_at(deps: &jobs::Deps<'_>, tick: DateTime<Utc>, point: &'static str) {
    let fault = Fault::new(point);
    let run = fault.run(jobs::run(deps, "process-occurrences", tick));
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::select! {
            outcome = run => panic!("the run ended instead of reaching {point:?}: {outcome:?}"),
            () = fault.reached() => {}
        }
    })
    .await
    .expect("the fault point is reached");
}

/// Moves the start of every unfinished run back past [`jobs::ABANDONED_AFTER`], as time does.
async fn abandon_running_runs(w: &World) {
    let long_ago = Utc::now() - jobs::ABANDONED_AFTER - TimeDelta::minutes(1);
    let mut conn = w.test.db.acquire().await.unwrap();
    let moved = shared::execute!(
        &mut conn,
        sqlx::query("update job_runs set started_at = $1 where status = 'running'").bind(long_ago)
    )
    .unwrap();
    assert_eq!(moved, 1, "one run was left running");
}

#[tokio::test]
async fn a_run_interrupted_after_its_first_materialize_batch_is_completed_once_by_the_next() {
    let w = World::new().await;
    // One class more than a batch holds, one occurrence each, none materialized yet.
    let classes_count = classes::MATERIALIZE_BATCH + 1;
    for _ in 0..classes_count {
        w.class(TimeDelta::days(2), "none", 10).await;
    }
    let mut conn = w.test.db.acquire().await.unwrap();
    shared::execute!(&mut conn, sqlx::query("delete from occurrences")).unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query("update classes set materialized_until = null")
    )
    .unwrap();
    drop(conn);
    let deps = w.deps();
    let tick: DateTime<Utc> = jobs::find("process-occurrences")
        .unwrap()
        .tick_of(Utc::now());

    crash_at(&deps, tick, "materialize: batch committed").await;
    assert_eq!(
        w.count("select count(*) from occurrences").await,
        classes::MATERIALIZE_BATCH,
        "the first batch is committed, the rest not"
    );
    assert_eq!(
        w.count("select count(*) from job_runs where status = 'running'")
            .await,
        1
    );
    // Until the run is deemed abandoned, a redelivery of its tick leaves it alone.
    assert_eq!(
        jobs::run(&deps, "process-occurrences", tick).await.unwrap(),
        Outcome::AlreadyDone
    );

    abandon_running_runs(&w).await;
    let outcome = jobs::run(&deps, "process-occurrences", tick).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Ran(ref d) if d.starts_with("1 occurrences created for 1 classes")),
        "{outcome:?} ({})",
        shared::testing::backend()
    );
    let next = jobs::run(&deps, "process-occurrences", tick + TimeDelta::minutes(15))
        .await
        .unwrap();
    assert!(
        matches!(next, Outcome::Ran(ref d) if d.starts_with("0 occurrences created for 0 classes")),
        "{next:?}"
    );
    assert_eq!(
        w.count("select count(*) from occurrences").await,
        classes_count
    );
    assert_eq!(
        w.count(
            "select count(*) from (select class_id from occurrences group by class_id \
             having count(*) = 1) one_each"
        )
        .await,
        classes_count,
        "one occurrence for each class"
    );
    assert_eq!(
        w.count(
            "select count(*) from job_runs where status = 'succeeded' \
             and cast(attempts as bigint) = 2"
        )
        .await,
        1,
        "the interrupted tick succeeded once, on its second attempt"
    );
    assert_eq!(
        w.count("select count(*) from job_runs where status = 'succeeded'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_run_interrupted_around_the_reminder_commit_queues_one_reminder_per_booking() {
    let w = World::new().await;
    booked(&w, TimeDelta::minutes(30), "soon1@example.com").await;
    booked(&w, TimeDelta::minutes(50), "soon2@example.com").await;
    booked(&w, TimeDelta::hours(3), "later@example.com").await;
    // A queue the test reads (the world's own is closed).
    let (queue, mut queued) = Queue::local();
    let deps = jobs::Deps {
        db: &w.test.db,
        config: &w.config,
        queue: &queue,
    };
    let tick: DateTime<Utc> = jobs::find("process-occurrences")
        .unwrap()
        .tick_of(Utc::now());
    let reminders = "select count(*) from emails where kind = 'reminder'";

    // Crash before the commit: nothing of it remains, the bookings are not marked reminded.
    crash_at(&deps, tick, "reminders: written, not committed").await;
    assert_eq!(
        w.count(reminders).await,
        0,
        "{}",
        shared::testing::backend()
    );
    assert_eq!(
        w.count("select count(*) from bookings where reminded_at is not null")
            .await,
        0
    );

    // Crash after the commit, before the worker is told: the emails wait in the outbox.
    abandon_running_runs(&w).await;
    crash_at(&deps, tick, "reminders: committed, not notified").await;
    assert_eq!(w.count(reminders).await, 2);
    assert!(queued.try_recv().is_err(), "nothing was queued");

    // The takeover and the next tick find nothing left to claim.
    abandon_running_runs(&w).await;
    let outcome = jobs::run(&deps, "process-occurrences", tick).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Ran(ref d) if d.ends_with("; 0 reminders queued")),
        "{outcome:?}"
    );
    jobs::run(&deps, "process-occurrences", tick + TimeDelta::minutes(15))
        .await
        .unwrap();
    assert_eq!(w.count(reminders).await, 2);
    assert_eq!(
        w.count(
            "select count(*) from job_runs where job = 'process-occurrences' \
             and status = 'succeeded'"
        )
        .await,
        2
    );
    assert_eq!(
        w.count(
            "select count(*) from job_runs where scheduled_at = (select min(scheduled_at) \
             from job_runs) and cast(attempts as bigint) = 3"
        )
        .await,
        1,
        "the interrupted tick succeeded once, on its third attempt"
    );

    // Once stale, `sweep-outbox` queues the un-notified reminders, and they are sent once.
    let mut conn = w.test.db.acquire().await.unwrap();
    shared::execute!(
        &mut conn,
        sqlx::query("update emails set updated_at = $1")
            .bind(Utc::now() - shared::services::outbox::STALE_AFTER - TimeDelta::minutes(1))
    )
    .unwrap();
    drop(conn);
    let mailer = FakeMailer::new();
    let send_queued = |queued: &mut tokio::sync::mpsc::UnboundedReceiver<LocalMessage>| {
        let mut ids = Vec::new();
        while let Ok(LocalMessage { body, .. }) = queued.try_recv() {
            let Message::SendEmail { email_id } = Message::decode(&body).unwrap();
            ids.push(email_id);
        }
        ids
    };
    let sweep_tick = jobs::find("sweep-outbox").unwrap().tick_of(Utc::now());
    jobs::run(&deps, "sweep-outbox", sweep_tick).await.unwrap();
    let ids = send_queued(&mut queued);
    assert_eq!(ids.len(), 2);
    for id in ids {
        let delivery = outbox::deliver(&w.test.db, &Mailer::Fake(mailer.clone()), id)
            .await
            .unwrap();
        assert!(
            matches!(delivery, outbox::Delivery::Sent { .. }),
            "{delivery:?}"
        );
    }
    jobs::run(&deps, "sweep-outbox", sweep_tick + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert!(send_queued(&mut queued).is_empty(), "nothing left to queue");
    let mut to: Vec<String> = mailer.sent().into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, ["soon1@example.com", "soon2@example.com"]);
}
