//! One validated [`Config`], read from the environment (and `.env` when running locally).
//!
//! Every setting is parsed here, once, at start-up. A missing or invalid value stops start-up
//! with one line that names the variable and says what it needs ([`ConfigError`]).
//!
//! Two profiles decide the defaults:
//! - [`Profile::Local`] (`cargo run`): `.env` is read when present, `DEBUG` defaults to on, and
//!   with `DEBUG` on everything has a development default (a generated secret kept in the data
//!   directory, SQLite in the data directory), so a fresh clone runs with no `.env` at all.
//! - [`Profile::Lambda`]: `.env` is never read and there are no development defaults: the
//!   deployment must set what production needs.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::domain::{EmailAddress, Password};

/// Where the process runs; decides whether `.env` is read and which defaults apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// The local runner. `data_dir` is the default `DATA_DIR` (SQLite file, dev secret).
    Local { data_dir: PathBuf },
    /// A Lambda function: environment only, no development defaults.
    Lambda,
}

/// A setting that could not be used. Displays as one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// A value that must never reach logs (`Debug` prints `[redacted]`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailBackend {
    /// Print messages to the log (and the local development mailbox).
    Console,
    /// Amazon SES v2 `SendEmail`.
    Ses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines (the default outside Lambda).
    Text,
    /// One JSON object per line (the default in Lambda, where CloudWatch indexes the fields).
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A `tracing_subscriber::filter::Targets` directive string (`info`, `web=debug,sqlx=warn`).
    pub filter: String,
    pub format: LogFormat,
    /// One line per request at `info` (`ACCESS_LOG`; on locally, off in Lambda). Off, the line
    /// is written at `debug`, and a request that fails with a 5xx is logged as an error either way.
    pub access_log: bool,
    /// Where X-Ray subsegments go (`AWS_XRAY_DAEMON_ADDRESS`, which Lambda sets for a traced
    /// function): see [`crate::xray`]. `None` sends none.
    pub xray_daemon: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub kind: DatabaseKind,
    /// Pool size: 1 in Lambda (one request at a time per instance), more locally.
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered 503
    /// (`DATABASE_ACQUIRE_TIMEOUT`, seconds).
    pub acquire_timeout: Duration,
    /// Certificate authorities a PostgreSQL server must be signed by (`DATABASE_CA_BUNDLE`);
    /// with one, TLS is required and the host name verified.
    pub ca_bundle: Option<CaBundle>,
    /// Where fresh credentials come from when the server refuses the password (a Secrets
    /// Manager secret that RDS rotates); set by [`crate::secrets::load_config`].
    pub credentials: Option<Arc<dyn CredentialSource>>,
}

/// How long a request waits for a connection before answering 503 instead of hanging (the
/// default of `DATABASE_ACQUIRE_TIMEOUT`).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A user name and password for the database.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Where fresh credentials come from when the server refuses the password in use: in AWS, the
/// Secrets Manager secret RDS rotates ([`crate::secrets::DatabaseSecret`]).
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    fn credentials(&self) -> futures_util::future::BoxFuture<'_, anyhow::Result<Credentials>>;
}

impl DatabaseConfig {
    /// A pool's settings with the defaults for the rest (no TLS requirement, the standard
    /// acquire timeout, no credential refresh).
    pub fn new(url: Secret, kind: DatabaseKind, max_connections: u32) -> Self {
        Self {
            url,
            kind,
            max_connections,
            acquire_timeout: ACQUIRE_TIMEOUT,
            ca_bundle: None,
            credentials: None,
        }
    }
}

/// The roots a database server's certificate is verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaBundle {
    /// Amazon RDS's global bundle, built into the binaries (`shared/certs/`), plus the public
    /// roots (RDS Proxy presents an Amazon Trust Services certificate).
    Rds,
    /// A PEM file of one's own.
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub debug: bool,
    pub secret_key: Secret,
    /// True when `secret_key` was generated for development (never in production).
    pub secret_key_is_generated: bool,
    pub database: DatabaseConfig,
    /// Host names the web function answers to (Django's `ALLOWED_HOSTS`; `.example.com` matches
    /// the domain and its subdomains, `*` matches anything).
    pub allowed_hosts: Vec<String>,
    /// Exact origins (`https://app.example.com`) allowed to call the JSON API from a browser.
    pub cors_allowed_origins: Vec<String>,
    pub force_https: bool,
    /// Request bodies over this many bytes get 413.
    pub max_request_bytes: usize,
    /// Public base URL; links in emails are built from it, never from a request's Host header.
    pub site_url: Url,
    /// What pages and emails call the site (`SITE_NAME`).
    pub site_name: String,
    pub email_backend: EmailBackend,
    pub default_from_email: String,
    /// SQS queue for the worker; `None` means the in-process queue of the local runner.
    pub worker_queue_url: Option<Url>,
    pub log: LogConfig,
    /// The CloudWatch namespace of the app's metrics (`METRICS_NAMESPACE`; the stack's name).
    pub metrics_namespace: String,
    pub time_zone: chrono_tz::Tz,
    /// The account the deploy hook ensures exists (with `superuser_password`).
    pub superuser_email: Option<EmailAddress>,
    /// Also what `createsuperuser --email` uses when set.
    pub superuser_password: Option<Password>,
    /// Where the local server listens (`HOST`, `PORT`).
    pub host: IpAddr,
    pub port: u16,
    /// Local state: the SQLite file and the development secret live here.
    pub data_dir: PathBuf,
}

/// Every variable the configuration reads (debug builds check each read against it). The
/// template test holds template.yaml to it, so a misspelt variable there cannot go unnoticed.
pub const VARIABLES: &[&str] = &[
    "ACCESS_LOG",
    "ALLOWED_HOSTS",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_XRAY_DAEMON_ADDRESS",
    "CORS_ALLOWED_ORIGINS",
    "DATABASE_ACQUIRE_TIMEOUT",
    "DATABASE_CA_BUNDLE",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_SECRET_ARN",
    "DATABASE_URL",
    "DATA_DIR",
    "DEBUG",
    "DEFAULT_FROM_EMAIL",
    "EMAIL_BACKEND",
    "FORCE_HTTPS",
    "HOST",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "MAX_REQUEST_BYTES",
    "METRICS_NAMESPACE",
    "PORT",
    "RDS_DB_NAME",
    "RDS_HOSTNAME",
    "RDS_PASSWORD",
    "RDS_PORT",
    "RDS_USERNAME",
    "RUST_LOG",
    "SECRET_KEY",
    "SECRET_KEY_SECRET_ARN",
    "SITE_NAME",
    "SITE_URL",
    "SUPERUSER_EMAIL",
    "SUPERUSER_PASSWORD",
    "SUPERUSER_PASSWORD_SECRET_ARN",
    "TIME_ZONE",
    "WORKER_QUEUE_URL",
];

/// The variables a configuration is read from: the process environment, plus `.env` locally.
#[derive(Debug, Clone, Default)]
pub struct Vars(HashMap<String, String>);

impl Vars {
    /// The process environment; with the local profile, `.env` (searched from the current
    /// directory upwards) fills in what the environment does not set.
    pub fn from_process(profile: &Profile) -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        if matches!(profile, Profile::Local { .. }) {
            match dotenvy::dotenv_iter() {
                Ok(iter) => {
                    for item in iter {
                        let (key, value) = item.map_err(|e| {
                            ConfigError::new(".env", format!("could not be read: {e}"))
                        })?;
                        vars.entry(key).or_insert(value);
                    }
                }
                Err(e) if e.not_found() => {}
                Err(e) => return Err(ConfigError::new(".env", format!("could not be read: {e}"))),
            }
        }
        Ok(Self(vars))
    }

    /// Explicit variables (tests, tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Sets a variable (a secret's value, [`crate::secrets::apply`]).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        debug_assert!(
            VARIABLES.contains(&name),
            "{name} is set but missing from config::VARIABLES"
        );
        self.0.insert(name.to_owned(), value.into());
    }

    /// A set, non-blank value (a blank line in `.env` counts as unset).
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(
            VARIABLES.contains(&name),
            "{name} is read but missing from config::VARIABLES"
        );
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

/// True inside AWS Lambda (the runtime always sets this variable).
pub fn in_lambda(vars: &Vars) -> bool {
    vars.get("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

impl Config {
    /// Reads the process environment (and `.env` locally) for `profile`.
    pub fn load(profile: Profile) -> Result<Self, ConfigError> {
        let vars = Vars::from_process(&profile)?;
        Self::from_vars(&profile, &vars)
    }

    /// Builds the configuration from explicit variables.
    pub fn from_vars(profile: &Profile, vars: &Vars) -> Result<Self, ConfigError> {
        let local = matches!(profile, Profile::Local { .. });
        let debug = parse_bool(vars, "DEBUG")?.unwrap_or(local);
        // Development defaults exist only for the local runner with DEBUG on.
        let dev_defaults = local && debug;

        let data_dir = match (vars.get("DATA_DIR"), profile) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, Profile::Local { data_dir }) => data_dir.clone(),
            (None, Profile::Lambda) => PathBuf::from("/tmp"),
        };

        let host = match vars.get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v.parse().map_err(|_| {
                ConfigError::new(
                    "HOST",
                    format!("must be an IP address to listen on, such as 127.0.0.1 or 0.0.0.0, got {v:?}"),
                )
            })?,
        };
        let port = match vars.get("PORT") {
            None => 3000,
            Some(v) => parse_port("PORT", v)?,
        };

        let (secret_key, secret_key_is_generated) = match vars.get("SECRET_KEY") {
            Some(key) => (Secret::new(key), false),
            None if dev_defaults => (dev_secret_key(&data_dir)?, true),
            None => {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    "must be set: a random string of at least 50 characters, for example the output of `openssl rand -base64 48`",
                ));
            }
        };

        let database = database_config(vars, dev_defaults, &data_dir, local)?;

        let allowed_hosts = match vars.get("ALLOWED_HOSTS") {
            Some(v) => parse_allowed_hosts(v)?,
            None if debug => vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            None => {
                return Err(ConfigError::new(
                    "ALLOWED_HOSTS",
                    "must be set outside DEBUG: a comma-separated list of the host names this site answers to, e.g. app.example.com,.example.org",
                ));
            }
        };

        let cors_allowed_origins = match vars.get("CORS_ALLOWED_ORIGINS") {
            Some(v) => parse_origins(v)?,
            None => Vec::new(),
        };

        let force_https = parse_bool(vars, "FORCE_HTTPS")?.unwrap_or(false);

        let max_request_bytes = match vars.get("MAX_REQUEST_BYTES") {
            None => 1024 * 1024,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1024..=6 * 1024 * 1024).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(
                        "MAX_REQUEST_BYTES",
                        format!("must be a number of bytes from 1024 to 6291456 (Lambda's payload limit), got {v:?}"),
                    )
                })?,
        };

        let site_name = match vars.get("SITE_NAME") {
            None => DEFAULT_SITE_NAME.to_owned(),
            Some(v) => parse_site_name(v)?,
        };

        let site_url = match vars.get("SITE_URL") {
            Some(v) => parse_site_url(v)?,
            None if dev_defaults => parse_site_url(&format!("http://127.0.0.1:{port}"))?,
            None => {
                return Err(ConfigError::new(
                    "SITE_URL",
                    "must be set: the public base URL used in links and emails, e.g. https://app.example.com",
                ));
            }
        };

        let email_backend = match vars.get("EMAIL_BACKEND") {
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "console" => EmailBackend::Console,
                "ses" => EmailBackend::Ses,
                _ => {
                    return Err(ConfigError::new(
                        "EMAIL_BACKEND",
                        format!("must be console or ses, got {v:?}"),
                    ));
                }
            },
            None if debug => EmailBackend::Console,
            None => {
                return Err(ConfigError::new(
                    "EMAIL_BACKEND",
                    "must be set outside DEBUG: ses to send with Amazon SES, or console to only log messages",
                ));
            }
        };

        let default_from_email = match vars.get("DEFAULT_FROM_EMAIL") {
            Some(v) => parse_from_email(v)?,
            None if debug => "noreply@example.com".to_owned(),
            None => {
                return Err(ConfigError::new(
                    "DEFAULT_FROM_EMAIL",
                    "must be set outside DEBUG: the sender address, verified in SES, e.g. noreply@example.com or \"Example <noreply@example.com>\"",
                ));
            }
        };

        let worker_queue_url = match vars.get("WORKER_QUEUE_URL") {
            // In Lambda there is no in-process queue for a worker to drain.
            None if !local => {
                return Err(ConfigError::new(
                    "WORKER_QUEUE_URL",
                    "must be set in Lambda: the URL of the worker's SQS queue (template.yaml passes it)",
                ));
            }
            None => None,
            Some(v) => Some(
                Url::parse(v)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        ConfigError::new(
                            "WORKER_QUEUE_URL",
                            format!("must be the http(s) URL of an SQS queue, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/app-worker, got {v:?}"),
                        )
                    })?,
            ),
        };

        let log = log_config(vars)?;

        let time_zone = match vars.get("TIME_ZONE") {
            None => chrono_tz::UTC,
            Some(v) => v.parse().map_err(|_| {
                ConfigError::new(
                    "TIME_ZONE",
                    format!(
                        "must be an IANA time zone name such as UTC or Europe/London, got {v:?}"
                    ),
                )
            })?,
        };

        // SUPERUSER_PASSWORD alone is fine (`createsuperuser --email` reads it); an email
        // without a password is not, since nothing could create that account.
        let superuser_email = match vars.get("SUPERUSER_EMAIL") {
            None => None,
            Some(v) => Some(EmailAddress::parse(v).map_err(|e| {
                ConfigError::new("SUPERUSER_EMAIL", format!("must be an email address: {e}"))
            })?),
        };
        let superuser_password = match vars.get("SUPERUSER_PASSWORD") {
            None if superuser_email.is_some() => {
                return Err(ConfigError::new(
                    "SUPERUSER_PASSWORD",
                    "must be set when SUPERUSER_EMAIL is set",
                ));
            }
            None => None,
            Some(v) => Some(Password::parse(v, superuser_email.as_ref()).map_err(|e| {
                ConfigError::new("SUPERUSER_PASSWORD", format!("is not acceptable: {e}"))
            })?),
        };

        Ok(Self {
            debug,
            secret_key,
            secret_key_is_generated,
            database,
            allowed_hosts,
            cors_allowed_origins,
            force_https,
            max_request_bytes,
            site_url,
            site_name,
            email_backend,
            default_from_email,
            worker_queue_url,
            log,
            metrics_namespace: metrics_namespace(vars)?,
            time_zone,
            superuser_email,
            superuser_password,
            host,
            port,
            data_dir,
        })
    }

    /// What `manage.py check --deploy` would say: every setting that is unsafe in production.
    /// An empty list means the configuration is fit to deploy.
    pub fn deploy_problems(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        if self.debug {
            problems.push(ConfigError::new(
                "DEBUG",
                "must be off in production: it shows internal details and enables development defaults",
            ));
        }
        let key = self.secret_key.expose();
        let distinct = key.chars().collect::<std::collections::HashSet<_>>().len();
        if self.secret_key_is_generated {
            problems.push(ConfigError::new(
                "SECRET_KEY",
                "must be set explicitly in production (a development key was generated)",
            ));
        } else if key.chars().count() < 50 || distinct < 5 {
            problems.push(ConfigError::new(
                "SECRET_KEY",
                "is weak: use at least 50 characters with at least 5 different ones, e.g. the output of `openssl rand -base64 48`",
            ));
        }
        let real_hosts: Vec<&String> = self
            .allowed_hosts
            .iter()
            .filter(|h| !matches!(h.as_str(), "localhost" | "127.0.0.1" | "[::1]"))
            .collect();
        if real_hosts.is_empty() {
            problems.push(ConfigError::new(
                "ALLOWED_HOSTS",
                "must list the production host names (it is empty or only names this machine)",
            ));
        } else if self.allowed_hosts.iter().any(|h| h == "*") {
            problems.push(ConfigError::new(
                "ALLOWED_HOSTS",
                "must not contain *: name the hosts, so forged Host headers are refused",
            ));
        }
        if !self.force_https {
            problems.push(ConfigError::new(
                "FORCE_HTTPS",
                "should be true in production: redirect HTTP to HTTPS, send HSTS and mark cookies Secure",
            ));
        }
        if self.site_url.scheme() != "https" {
            problems.push(ConfigError::new(
                "SITE_URL",
                "must use https in production, so links in emails are not sent in clear",
            ));
        }
        if let Some(origin) = self
            .cors_allowed_origins
            .iter()
            .find(|o| o.starts_with("http://"))
        {
            problems.push(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                format!("must only list https origins in production, found {origin}"),
            ));
        }
        if self.database.kind == DatabaseKind::Sqlite {
            problems.push(ConfigError::new(
                "DATABASE_URL",
                "must point at PostgreSQL in production: a SQLite file does not survive a Lambda instance",
            ));
        }
        if self.worker_queue_url.is_none() {
            problems.push(ConfigError::new(
                "WORKER_QUEUE_URL",
                "must be set in production: the worker's SQS queue (the in-process queue is for cargo run)",
            ));
        }
        if self.email_backend == EmailBackend::Console {
            problems.push(ConfigError::new(
                "EMAIL_BACKEND",
                "should be ses in production: the console backend only logs messages",
            ));
        }
        problems
    }
}

fn parse_bool(vars: &Vars, var: &'static str) -> Result<Option<bool>, ConfigError> {
    let Some(v) = vars.get(var) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(ConfigError::new(
            var,
            format!("must be true or false, got {v:?}"),
        )),
    }
}

fn parse_port(var: &'static str, v: &str) -> Result<u16, ConfigError> {
    v.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        ConfigError::new(
            var,
            format!("must be a port number from 1 to 65535, got {v:?}"),
        )
    })
}

/// The development secret: generated once and kept in the data directory, so sessions and
/// CSRF tokens survive restarts of `cargo run`.
fn dev_secret_key(data_dir: &Path) -> Result<Secret, ConfigError> {
    let path = data_dir.join("dev-secret-key");
    let err = |e: std::io::Error| {
        ConfigError::new(
            "SECRET_KEY",
            format!(
                "is not set and the development key at {} could not be used: {e}",
                path.display()
            ),
        )
    };
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= 50 => return Ok(Secret::new(key.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let key = crate::crypto::random_token(48);
    std::fs::write(&path, &key).map_err(err)?;
    Ok(Secret::new(key))
}

/// The folder of a SQLite URL's file (`sqlite://path`, `sqlite:path`, with or without
/// `?options`); `None` for an in-memory database or a file in the current folder.
fn sqlite_folder(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

fn database_config(
    vars: &Vars,
    dev_defaults: bool,
    data_dir: &Path,
    local: bool,
) -> Result<DatabaseConfig, ConfigError> {
    let url = match (vars.get("DATABASE_URL"), vars.get("RDS_HOSTNAME")) {
        (Some(url), _) => url.to_owned(),
        (None, Some(host)) => rds_url(vars, host)?,
        (None, None) if dev_defaults => {
            format!("sqlite://{}", data_dir.join("app.db").display())
        }
        (None, None) => {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must be set (or RDS_HOSTNAME, RDS_DB_NAME, RDS_USERNAME and RDS_PASSWORD): e.g. postgres://user:password@host:5432/app",
            ));
        }
    };
    let kind = if url.starts_with("sqlite:") {
        DatabaseKind::Sqlite
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        DatabaseKind::Postgres
    } else {
        // Only the scheme is echoed: the rest may hold a password.
        let scheme = url.split(':').next().unwrap_or_default();
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!("must start with sqlite: or postgres://, got a {scheme:?} URL"),
        ));
    };
    // The default `data/` folder is created on first run; a folder named explicitly is not
    // (a typo would otherwise start a new, empty database somewhere unexpected).
    if kind == DatabaseKind::Sqlite
        && vars.get("DATABASE_URL").is_some()
        && let Some(dir) = sqlite_folder(&url)
        && !dir.is_dir()
    {
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!(
                "names a SQLite database in {}, a folder that does not exist: create it, or leave DATABASE_URL unset to use {}",
                dir.display(),
                data_dir.join("app.db").display()
            ),
        ));
    }
    if kind == DatabaseKind::Postgres && Url::parse(&url).is_err() {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "is not a valid URL (percent-encode special characters in the user name and password)",
        ));
    }
    let max_connections = match vars.get("DATABASE_MAX_CONNECTIONS") {
        None if local => 5,
        None => 1,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ConfigError::new(
                    "DATABASE_MAX_CONNECTIONS",
                    format!("must be a whole number from 1 to 100, got {v:?}"),
                )
            })?,
    };
    let acquire_timeout = match vars.get("DATABASE_ACQUIRE_TIMEOUT") {
        None => ACQUIRE_TIMEOUT,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=60).contains(n))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                ConfigError::new(
                    "DATABASE_ACQUIRE_TIMEOUT",
                    format!("must be a whole number of seconds from 1 to 60, got {v:?}"),
                )
            })?,
    };
    let ca_bundle = match vars.get("DATABASE_CA_BUNDLE") {
        None => None,
        Some(_) if kind == DatabaseKind::Sqlite => {
            return Err(ConfigError::new(
                "DATABASE_CA_BUNDLE",
                "applies to PostgreSQL only; unset it for a SQLite DATABASE_URL",
            ));
        }
        Some(v) if v.eq_ignore_ascii_case("rds") => Some(CaBundle::Rds),
        Some(v) => {
            let path = PathBuf::from(v);
            if !path.is_file() {
                return Err(ConfigError::new(
                    "DATABASE_CA_BUNDLE",
                    format!(
                        "must be rds (the Amazon RDS certificate authorities) or the path of a PEM file, got {v:?}, which is not a file"
                    ),
                ));
            }
            Some(CaBundle::File(path))
        }
    };
    Ok(DatabaseConfig {
        url: Secret::new(url),
        kind,
        max_connections,
        acquire_timeout,
        ca_bundle,
        credentials: None,
    })
}

/// The Elastic Beanstalk names for an RDS database, so existing settings carry over.
fn rds_url(vars: &Vars, host: &str) -> Result<String, ConfigError> {
    let need = |var: &'static str| {
        vars.get(var).ok_or_else(|| {
            ConfigError::new(
                var,
                "must be set when RDS_HOSTNAME is set (or set DATABASE_URL instead)",
            )
        })
    };
    let name = need("RDS_DB_NAME")?;
    let user = need("RDS_USERNAME")?;
    let password = need("RDS_PASSWORD")?;
    let port = match vars.get("RDS_PORT") {
        None => 5432,
        Some(v) => parse_port("RDS_PORT", v)?,
    };
    let mut url = Url::parse("postgres://localhost")
        .map_err(|e| ConfigError::new("RDS_HOSTNAME", e.to_string()))?;
    url.set_host(Some(host)).map_err(|_| {
        ConfigError::new("RDS_HOSTNAME", format!("must be a host name, got {host:?}"))
    })?;
    // Url percent-encodes the credentials and the database name.
    let ok = url.set_port(Some(port)).is_ok()
        && url.set_username(user).is_ok()
        && url.set_password(Some(password)).is_ok();
    if !ok {
        return Err(ConfigError::new(
            "RDS_HOSTNAME",
            format!("cannot carry credentials, got {host:?}"),
        ));
    }
    url.path_segments_mut()
        .map_err(|_| ConfigError::new("RDS_DB_NAME", "cannot be used as a path"))?
        .push(name);
    Ok(url.to_string())
}

fn parse_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_allowed_hosts(v: &str) -> Result<Vec<String>, ConfigError> {
    let hosts: Vec<String> = parse_list(v).map(str::to_ascii_lowercase).collect();
    for host in &hosts {
        let name = host.strip_prefix('.').unwrap_or(host);
        let valid = host == "*"
            || (!name.is_empty()
                && !name.contains("://")
                && name.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                }));
        if !valid {
            return Err(ConfigError::new(
                "ALLOWED_HOSTS",
                format!(
                    "entry {host:?} must be a host name without scheme or path, e.g. app.example.com or .example.com"
                ),
            ));
        }
    }
    if hosts.is_empty() {
        return Err(ConfigError::new(
            "ALLOWED_HOSTS",
            "must list at least one host name, e.g. app.example.com",
        ));
    }
    Ok(hosts)
}

fn parse_origins(v: &str) -> Result<Vec<String>, ConfigError> {
    parse_list(v)
        .map(|entry| {
            let url = Url::parse(entry).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && !entry.ends_with('/')
                    && u.query().is_none()
                    && u.username().is_empty()
            });
            match url {
                Some(u) => Ok(u.origin().ascii_serialization()),
                None => Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("entry {entry:?} must be an origin: scheme and host, no path, e.g. https://app.example.com"),
                )),
            }
        })
        .collect()
}

/// What the site is called when `SITE_NAME` is unset.
pub const DEFAULT_SITE_NAME: &str = "Serverless Starter";
/// The longest `SITE_NAME`, in characters.
pub const MAX_SITE_NAME_CHARS: usize = 100;

/// A title bar's worth of one line: it lands in every page's title and every email's
/// subject, where a line break would forge a header.
fn parse_site_name(v: &str) -> Result<String, ConfigError> {
    crate::domain::check_text(v, false)
        .map_err(|e| ConfigError::new("SITE_NAME", format!("must be one line of text: {e}")))?;
    if v.chars().count() > MAX_SITE_NAME_CHARS {
        return Err(ConfigError::new(
            "SITE_NAME",
            format!(
                "must be at most {MAX_SITE_NAME_CHARS} characters, got {}",
                v.chars().count()
            ),
        ));
    }
    Ok(v.to_owned())
}

fn parse_site_url(v: &str) -> Result<Url, ConfigError> {
    let err = || {
        ConfigError::new(
            "SITE_URL",
            format!(
                "must be an absolute http(s) URL without query or fragment, e.g. https://app.example.com, got {v:?}"
            ),
        )
    };
    let mut url = Url::parse(v).map_err(|_| err())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(err());
    }
    // Keep a trailing slash so `site_url.join("path")` stays under any path prefix.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn parse_from_email(v: &str) -> Result<String, ConfigError> {
    // Either `address` or `Display Name <address>`, as SES accepts.
    let address = match (v.rfind('<'), v.ends_with('>')) {
        (Some(start), true) => &v[start + 1..v.len() - 1],
        _ => v,
    };
    EmailAddress::parse(address).map_err(|e| {
        ConfigError::new(
            "DEFAULT_FROM_EMAIL",
            format!("must be an email address or \"Name <address>\": {e}"),
        )
    })?;
    Ok(v.to_owned())
}

/// The log settings alone (the deploy hook sets up logging before it reads the rest).
pub fn log_config(vars: &Vars) -> Result<LogConfig, ConfigError> {
    // RUST_LOG (per-target directives: `info,sqlx=warn,shared::jobs=debug`) wins; then
    // LOG_LEVEL; then Lambda's own log level setting (AWS_LAMBDA_LOG_LEVEL, from the
    // function's LoggingConfig).
    let filter = if let Some(v) = vars.get("RUST_LOG") {
        if let Err(e) = v.parse::<tracing_subscriber::filter::Targets>() {
            return Err(ConfigError::new(
                "RUST_LOG",
                format!("must be tracing directives like info,sqlx=warn, got {v:?}: {e}"),
            ));
        }
        v.to_owned()
    } else {
        let (var, level) = match (vars.get("LOG_LEVEL"), vars.get("AWS_LAMBDA_LOG_LEVEL")) {
            (Some(v), _) => ("LOG_LEVEL", v),
            (None, Some(v)) => ("AWS_LAMBDA_LOG_LEVEL", v),
            (None, None) => ("LOG_LEVEL", "info"),
        };
        match level.to_ascii_lowercase().as_str() {
            l @ ("off" | "error" | "warn" | "info" | "debug" | "trace") => l.to_owned(),
            // Lambda's levels include FATAL.
            "fatal" => "error".to_owned(),
            _ => {
                return Err(ConfigError::new(
                    var,
                    format!(
                        "must be one of error, warn, info, debug, trace or off (or use RUST_LOG for per-module levels), got {level:?}"
                    ),
                ));
            }
        }
    };
    let format = match vars
        .get("LOG_FORMAT")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("auto") => match vars.get("AWS_LAMBDA_LOG_FORMAT") {
            Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ if in_lambda(vars) => LogFormat::Json,
            _ => LogFormat::Text,
        },
        Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(_) => {
            return Err(ConfigError::new(
                "LOG_FORMAT",
                format!(
                    "must be auto, text or json, got {:?}",
                    vars.get("LOG_FORMAT").unwrap_or_default()
                ),
            ));
        }
    };
    // In Lambda, API Gateway's access log (template.yaml's ApiAccessLogGroup) has a line for
    // every request, with the id the function's own lines carry (`apigwRequestId`); a second
    // line from the function would cost CPU per request (about a tenth of a warm page's, most
    // of it the write to stdout: BENCHMARKS.md) and CloudWatch ingestion for nothing new.
    let access_log = parse_bool(vars, "ACCESS_LOG")?.unwrap_or(!in_lambda(vars));
    let xray_daemon = vars
        .get("AWS_XRAY_DAEMON_ADDRESS")
        .map(crate::xray::parse_daemon_address)
        .transpose()
        .map_err(|message| ConfigError::new("AWS_XRAY_DAEMON_ADDRESS", message))?;
    Ok(LogConfig {
        filter,
        format,
        access_log,
        xray_daemon,
    })
}

/// `METRICS_NAMESPACE`, as CloudWatch accepts one (ASCII letters, digits and `.-_/#:`, at
/// most 255, not `AWS/...`); [`crate::metrics::DEFAULT_NAMESPACE`] when unset.
fn metrics_namespace(vars: &Vars) -> Result<String, ConfigError> {
    let Some(v) = vars.get("METRICS_NAMESPACE") else {
        return Ok(crate::metrics::DEFAULT_NAMESPACE.to_owned());
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#:".contains(c);
    if v.len() > 255 || !v.chars().all(allowed) || v.starts_with("AWS/") {
        return Err(ConfigError::new(
            "METRICS_NAMESPACE",
            format!(
                "must be a CloudWatch namespace (at most 255 letters, digits and . - _ / # :, not starting with AWS/), e.g. the stack name, got {v:?}"
            ),
        ));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests;
