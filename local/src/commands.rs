use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, anyhow, bail};
use shared::config::Config;
use shared::db::{Db, MIGRATOR};
use shared::domain::{EmailAddress, Password};
use shared::services::accounts;

/// Connects and applies pending migrations, reporting what it did.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect_lazy(&config.database)?;
    let applied = db.migrate().await?;
    for version in &applied {
        let description = MIGRATOR
            .iter()
            .find(|m| m.version == *version)
            .map(|m| m.description.to_string())
            .unwrap_or_default();
        println!("  applied {version} {description}");
    }
    Ok(db)
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
