//! Worker throughput: emails per second through `handle_batch` in batches of 10 with the
//! console mailer, and database round trips per batch.
//!
//!     cargo bench -p worker --bench throughput > /dev/null            # SQLite
//!     TEST_DATABASE_URL=postgres://... cargo bench -p worker --bench throughput > /dev/null
//!
//! The console mailer prints every message to stdout (part of what is measured); the figures
//! go to stderr. `EMAILS` sets the count (default 2000).

use std::time::Instant;

use shared::clock;
use shared::domain::{EmailAddress, EmailKind};
use shared::mail::{ConsoleMailer, Mailer, Rendered};
use shared::queue::Message;
use shared::services::outbox;
use shared::testing::{TestDb, backend};

const BATCH: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let emails: usize = std::env::var("EMAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let test = TestDb::new().await;
    let db = test.db.clone();
    let to = EmailAddress::parse("bench@example.com").map_err(|e| anyhow::anyhow!("{e}"))?;
    let rendered = Rendered {
        subject: "Benchmark".into(),
        text: "A short body.".into(),
        html: "<p>A short body.</p>".into(),
    };

    let mut ids = Vec::with_capacity(emails);
    for chunk in 0..emails.div_ceil(100) {
        let mut tx = db.begin().await?;
        for _ in 0..100.min(emails - chunk * 100) {
            ids.push(outbox::add(&mut tx, EmailKind::Test, &to, None, &rendered).await?);
        }
        tx.commit().await?;
    }

    let deps = worker::Deps {
        db: db.clone(),
        mailer: Mailer::Console(ConsoleMailer::new("bench@example.com")),
    };
    let statements_before = shared::db::statements_run();
    let started = Instant::now();
    let mut failures = 0;
    for (n, batch) in ids.chunks(BATCH).enumerate() {
        let event = worker::event_for(batch.iter().enumerate().map(|(i, id)| {
            (
                format!("{n}-{i}"),
                Message::SendEmail { email_id: *id }.encode(),
                1,
            )
        }));
        failures += worker::handle_batch(&deps, event)
            .await
            .batch_item_failures
            .len();
    }
    let elapsed = started.elapsed();
    let statements = shared::db::statements_run() - statements_before;
    let batches = ids.chunks(BATCH).len();

    let mut conn = db.acquire().await?;
    let sent = shared::on_conn!(&mut conn, |c| {
        sqlx::query_scalar::<_, i64>("select count(*) from emails where status = 'sent'")
            .fetch_one(&mut *c)
            .await
    })?;
    anyhow::ensure!(
        failures == 0 && sent as usize == emails,
        "{failures} failures, {sent} sent"
    );

    eprintln!(
        "worker throughput ({}, console mailer, batches of {BATCH}, {} records at once): \
         {emails} emails in {:.2} s = {:.0} emails/s; {:.1} database round trips per batch \
         ({:.1} per email); at {}",
        backend(),
        worker::CONCURRENCY,
        elapsed.as_secs_f64(),
        emails as f64 / elapsed.as_secs_f64(),
        statements as f64 / batches as f64,
        statements as f64 / emails as f64,
        clock::now().format("%Y-%m-%d %H:%M UTC"),
    );
    Ok(())
}
