//! The local runner: `cargo run` serves the whole stack on 127.0.0.1:3000; the subcommands do
//! what Django's `manage.py` did. Each command is a thin shell over a `shared` use case.

/// `migrate`, `createsuperuser`, `check`, `sendtestemail`, `runjob`.
mod commands;
/// `invoke <function> <event.json>`: a Docker-free `sam local invoke`.
mod invoke;
/// The local web server, with the worker and the scheduled jobs beside it.
mod server;
/// The worker fed from the in-process queue or SQS, as Lambda's event source mapping would.
pub mod worker_loop;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::config::Profile;

#[derive(Debug, Parser)]
#[command(
    name = "cargo run --",
    about = "Run the app locally, or manage it.",
    version
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations, then serve the app on http://HOST:PORT (the default command).
    Runserver,
    /// Apply pending database migrations.
    Migrate,
    /// Create a superuser (staff, verified). Prompts on a terminal; otherwise reads the
    /// password from SUPERUSER_PASSWORD or the first line of standard input.
    Createsuperuser {
        /// The account's email (default: SUPERUSER_EMAIL, or a prompt on a terminal).
        #[arg(long)]
        email: Option<String>,
        /// Never prompt, even on a terminal.
        #[arg(long)]
        no_input: bool,
    },
    /// Check the configuration for production, like `manage.py check --deploy`.
    /// Exits non-zero when any setting is unsafe to deploy.
    Check,
    /// Send a test email through the whole pipeline (outbox, queue, worker, mailer) and print
    /// the outcome. Exits non-zero unless it was sent.
    Sendtestemail {
        /// Where to send it.
        address: String,
    },
    /// Run one scheduled job now (process-occurrences, sweep-outbox, purge-expired) and print
    /// what it did.
    Runjob {
        /// The job's name.
        name: String,
    },
    /// Run a function's Lambda handler on an event file (see events/) and print its result,
    /// like `sam local invoke -e`, without Docker.
    Invoke {
        /// The function, as named in template.yaml.
        #[arg(value_enum)]
        function: invoke::Function,
        /// The event's JSON file.
        event: PathBuf,
    },
}

/// The local profile: `.env` is read, and development defaults live in `<workspace>/data`.
fn profile() -> Profile {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    Profile::Local {
        data_dir: workspace.join("data"),
    }
}

/// Runs the command line; the exit code is 0 on success, 1 when the command failed, 2 when
/// the configuration is unusable.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Secrets Manager is read only when a `*_SECRET_ARN` variable is set (never by default).
    let config = match runtime.block_on(shared::secrets::load_config(profile())) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Logs on stderr: stdout is what a command prints (invoke's JSON result).
    shared::telemetry::init_stderr(&config.log);
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Runserver) {
            Command::Runserver => server::run(config).await,
            Command::Migrate => commands::migrate(&config).await,
            Command::Createsuperuser { email, no_input } => {
                commands::createsuperuser(&config, email, no_input).await
            }
            Command::Check => commands::check(&config),
            Command::Sendtestemail { address } => commands::sendtestemail(&config, &address).await,
            Command::Runjob { name } => commands::runjob(&config, &name).await,
            Command::Invoke { function, event } => invoke::invoke(config, function, &event).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
