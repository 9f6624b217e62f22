use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, anyhow, bail};
use shared::config::Config;
use shared::db::{Db, MIGRATOR};
use shared::domain::{EmailAddress, EmailStatus, Password};
use shared::error::Error;
use shared::services::{accounts, outbox};

use crate::functions::Functions;

/// Connects and applies pending migrations, reporting what it did.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect_lazy(&config.database)?;
    migrate_and_report(&db).await?;
    Ok(db)
}

/// Applies pending migrations, printing each one.
pub async fn migrate_and_report(db: &Db) -> anyhow::Result<()> {
    let applied = db.migrate().await?;
    for version in &applied {
        let description = MIGRATOR
            .iter()
            .find(|m| m.version == *version)
            .map(|m| m.description.to_string())
            .unwrap_or_default();
        println!("  applied {version} {description}");
    }
    Ok(())
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = connect_and_migrate(config).await?;
    let applied = db.applied_migrations().await?;
    println!(
        "Database is up to date ({} migration{} applied).",
        applied.len(),
        if applied.len() == 1 { "" } else { "s" }
    );
    db.close().await;
    Ok(())
}

pub async fn createsuperuser(
    config: &Config,
    email: Option<String>,
    no_input: bool,
) -> anyhow::Result<()> {
    let interactive = !no_input && std::io::stdin().is_terminal();

    let email = match (email, &config.superuser_email) {
        (Some(raw), _) => EmailAddress::parse(&raw).map_err(|e| anyhow!("invalid email: {e}"))?,
        (None, Some(email)) => email.clone(),
        (None, None) if interactive => prompt_email()?,
        (None, None) => {
            bail!("--email is required when not on a terminal (or set SUPERUSER_EMAIL)")
        }
    };

    let password = match &config.superuser_password {
        // Loaded before the email was known: check it against this account too.
        Some(password) => Password::parse(password.expose(), Some(&email))
            .map_err(|e| anyhow!("SUPERUSER_PASSWORD is not acceptable: {e}"))?,
        None if interactive => prompt_password(&email)?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                bail!("no password: set SUPERUSER_PASSWORD or pipe the password to standard input");
            }
            Password::parse(line, Some(&email)).map_err(|e| anyhow!("password rejected: {e}"))?
        }
    };

    let db = connect_and_migrate(config).await?;
    let result = accounts::create_superuser(&db, &email, &password).await;
    db.close().await;
    match result {
        Ok(user) => {
            println!("Superuser {} created.", user.email);
            Ok(())
        }
        Err(e) => Err(anyhow!("{e}")),
    }
}

fn prompt_email() -> anyhow::Result<EmailAddress> {
    loop {
        eprint!("Email: ");
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            bail!("no email given");
        }
        match EmailAddress::parse(&line) {
            Ok(email) => return Ok(email),
            Err(e) => eprintln!("{e}"),
        }
    }
}

fn prompt_password(email: &EmailAddress) -> anyhow::Result<Password> {
    loop {
        let first = rpassword::prompt_password("Password: ")?;
        let password = match Password::parse(&first, Some(email)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let second = rpassword::prompt_password("Password (again): ")?;
        if second == first {
            return Ok(password);
        }
        eprintln!("The passwords do not match.");
    }
}

/// Sets a user's password, like `manage.py changepassword`: the new password twice (prompted on
/// a terminal; otherwise the first two lines of standard input), then the use case the admin
/// calls too, which applies the password policy and signs the account out everywhere.
pub async fn changepassword(config: &Config, email: &str) -> anyhow::Result<()> {
    let email = EmailAddress::parse(email).map_err(|e| anyhow!("invalid email: {e}"))?;
    let db = connect_and_migrate(config).await?;
    let result = change_password_of(&db, &email).await;
    db.close().await;
    let revoked = result?;
    println!(
        "Password changed for {email}; {revoked} session{} and API token{} ended.",
        if revoked == 1 { "" } else { "s" },
        if revoked == 1 { "" } else { "s" },
    );
    Ok(())
}

async fn change_password_of(db: &Db, email: &EmailAddress) -> anyhow::Result<u64> {
    // Unknown before any prompt, as Django does: no typing a password for nothing.
    let user = accounts::find_user_by_email(db, email)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("no user with email {email}"))?;
    let (first, second) = if std::io::stdin().is_terminal() {
        eprintln!("Changing the password of {email}.");
        (
            rpassword::prompt_password("New password: ")?,
            rpassword::prompt_password("New password (again): ")?,
        )
    } else {
        let mut lines = std::io::stdin().lock().lines();
        let mut next = || -> anyhow::Result<Option<String>> {
            lines
                .next()
                .transpose()
                .context("reading the password from standard input")
        };
        match (next()?, next()?) {
            // A file written on Windows ends its lines with \r\n.
            (Some(first), Some(second)) => (
                first.trim_end_matches('\r').to_owned(),
                second.trim_end_matches('\r').to_owned(),
            ),
            _ => bail!("no password: give the new password twice, on two lines of standard input"),
        }
    };
    if first != second {
        bail!("the passwords do not match; nothing changed");
    }
    match accounts::set_password(db, user.id, &first).await {
        Ok(revoked) => Ok(revoked),
        Err(Error::Invalid(fields)) => {
            let reason = fields.into_values().next().unwrap_or_default();
            bail!("password rejected: {reason}; nothing changed")
        }
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// Prints every setting that is unsafe in production; fails when there is one.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let problems = config.deploy_problems();
    if problems.is_empty() {
        println!("check: no problems found; this configuration is fit for production.");
        return Ok(());
    }
    for problem in &problems {
        println!("  {problem}");
    }
    bail!(
        "check found {} problem{} for production",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
}

/// Writes the test email to the outbox and queues it; with the in-process queue, runs the
/// worker on it right here (the same handler as Lambda). With an SQS queue the deployed (or a
/// local `cargo run`) worker sends it; this waits for the row to say how it went.
pub async fn sendtestemail(config: &Config, address: &str) -> anyhow::Result<()> {
    let to = EmailAddress::parse(address).map_err(|e| anyhow!("invalid address: {e}"))?;
    let mut functions = Functions::from_config(config.clone()).await?;
    migrate_and_report(functions.db()).await?;
    let db = functions.db().clone();
    let email =
        outbox::send_test_email(&db, config, &functions.queue, &functions.worker.mailer, &to)
            .await
            .context("writing the email to the outbox")?;
    let id = email.id;
    println!("Email {id} to {to} written to the outbox.");
    if functions.uses_sqs() {
        if !email.queued {
            bail!("could not queue it (see the log above); the outbox sweep will retry");
        }
        println!("Queued on SQS; waiting up to 60 s for a worker to send it...");
    } else {
        println!("Queued in process; running the worker...");
        functions.run_worker_on_queued().await;
    }

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let row = loop {
        let row = outbox::find(&db, id)
            .await
            .context("reading the outbox row")?
            .context("the outbox row disappeared")?;
        let done = matches!(row.status, EmailStatus::Sent | EmailStatus::Failed);
        if done || std::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    db.close().await;
    match row.status {
        EmailStatus::Sent => {
            println!(
                "Sent with the {} mailer after {} attempt{}: provider message id {}",
                functions.worker.mailer.backend(),
                row.attempts,
                if row.attempts == 1 { "" } else { "s" },
                row.provider_message_id.unwrap_or_default()
            );
            Ok(())
        }
        status => bail!(
            "not sent: the email is {status} after {} attempt(s); last error: {}",
            row.attempts,
            row.last_error.as_deref().unwrap_or("none")
        ),
    }
}

/// Runs one job now, as its own tick (the current time, so it never collides with a scheduled
/// one), and prints what it did. Emails it queues are sent right here by the worker's handler
/// (or by the SQS worker when `WORKER_QUEUE_URL` is set).
pub async fn runjob(config: &Config, name: &str) -> anyhow::Result<()> {
    shared::jobs::named(name)?;
    let mut functions = Functions::from_config(config.clone()).await?;
    migrate_and_report(functions.db()).await?;
    let scheduler = functions.scheduler();
    let outcome = shared::jobs::run(&scheduler.jobs(), name, shared::clock::now()).await?;
    match outcome {
        shared::jobs::Outcome::Ran(detail) => println!("{name}: {detail}"),
        shared::jobs::Outcome::AlreadyDone => println!("{name}: already done for this tick"),
    }
    let sent = functions.run_worker_on_queued().await;
    if sent > 0 {
        println!("{sent} queued emails handed to the worker.");
    }
    functions.db().close().await;
    Ok(())
}
