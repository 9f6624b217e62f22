//! The local runner: `cargo run` serves the whole stack on 127.0.0.1:3000; the subcommands do
//! what Django's `manage.py` did. Each command is a thin shell over a `shared` use case.

/// `migrate`, `createsuperuser`, `changepassword`, `check`, `sendtestemail`, `runjob`.
mod commands;
/// `dbshell`: psql or sqlite3 on the configured database.
mod dbshell;
/// The functions of template.yaml wired in one process: one pool, one queue.
mod functions;
/// `invoke <function> <event.json>`: a Docker-free `sam local invoke`.
mod invoke;
/// `makemigration <name>`: a new migration file, with the portability rules in its header.
mod makemigration;
/// The local web server, with the worker and the scheduled jobs beside it.
mod server;
// starter-only:begin
/// `startproject <dir>`: this repository as a team's own, named project.
mod startproject;
// starter-only:end
/// The worker fed from the in-process queue or SQS, as Lambda's event source mapping would.
pub mod worker_loop;

use std::ffi::OsString;
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
    /// Set a user's password and sign them out everywhere. Prompts twice on a terminal;
    /// otherwise reads the password and its confirmation from two lines of standard input.
    Changepassword {
        /// The account's email.
        email: String,
    },
    /// Open the database's client (psql or sqlite3) on the configured database; arguments
    /// after `--` go to the client (e.g. `dbshell -- -c 'select 1'`).
    Dbshell {
        /// Passed to psql or sqlite3.
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Write a new, empty migration `migrations/<UTC timestamp>_<name>.sql`, to be run from
    /// the workspace root; the next `cargo run` applies it.
    Makemigration {
        /// What it does, e.g. "add rooms" (letters, digits, '-', '_' and spaces).
        name: String,
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
    /// Run one scheduled job now (sweep-outbox, purge-expired, ...: an unknown name lists
    /// them) and print what it did.
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
    // starter-only:begin
    /// Copy this starter into a new folder as your own project: its name, site name, stack,
    /// region and sender address, with or without the example app (classes and bookings).
    Startproject(startproject::Project),
    // starter-only:end
}

/// The workspace this runner was built from.
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The local profile: `.env` is read, and development defaults live in `<workspace>/data`.
fn profile() -> Profile {
    Profile::Local {
        data_dir: workspace().join("data"),
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
    shared::metrics::init(&config.metrics_namespace);
    let result = runtime.block_on(async move {
        let done = match cli.command.unwrap_or(Command::Runserver) {
            Command::Runserver => server::run(config).await,
            Command::Migrate => commands::migrate(&config).await,
            Command::Createsuperuser { email, no_input } => {
                commands::createsuperuser(&config, email, no_input).await
            }
            Command::Changepassword { email } => commands::changepassword(&config, &email).await,
            // The client's own exit code, not just success or failure.
            Command::Dbshell { args } => return dbshell::dbshell(&config, &args),
            Command::Makemigration { name } => makemigration::makemigration(&name),
            Command::Check => commands::check(&config),
            Command::Sendtestemail { address } => commands::sendtestemail(&config, &address).await,
            Command::Runjob { name } => commands::runjob(&config, &name).await,
            Command::Invoke { function, event } => invoke::invoke(config, function, &event).await,
            // starter-only:begin
            Command::Startproject(project) => startproject::startproject(&workspace(), &project),
            // starter-only:end
        };
        done.map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
