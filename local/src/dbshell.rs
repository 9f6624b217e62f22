//! `dbshell`: the database's own client on the configured database, like `manage.py dbshell`.
//! `psql` gets the connection in libpq's `PG*` variables, so the password is in no process
//! list (`ps` shows arguments, not the environment); `sqlite3` gets the file's path.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::{Context as _, anyhow, bail};
use shared::config::{CaBundle, Config, DatabaseKind};
use url::Url;

/// Runs the client in this terminal (stdin, stdout and stderr inherited) with `args` after the
/// connection, and exits with its exit code.
pub fn dbshell(config: &Config, args: &[OsString]) -> anyhow::Result<ExitCode> {
    let url = config.database.url.expose();
    let (program, package, mut command) = match config.database.kind {
        DatabaseKind::Postgres => {
            let mut command = Command::new("psql");
            command.envs(libpq_env(url, config.database.ca_bundle.as_ref())?);
            ("psql", "psql (PostgreSQL's client)", command)
        }
        DatabaseKind::Sqlite => {
            let mut command = Command::new("sqlite3");
            command.arg(sqlite_file(url)?);
            ("sqlite3", "sqlite3 (SQLite's client)", command)
        }
    };
    let debian = match config.database.kind {
        DatabaseKind::Postgres => "postgresql-client",
        DatabaseKind::Sqlite => "sqlite3",
    };
    command.args(args);
    match command.status() {
        Ok(status) => {
            // A client killed by a signal has no code: a failure all the same.
            let code = status.code().unwrap_or(1);
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "dbshell needs {package} on the PATH: install it (Debian: apt-get install {debian})"
        ),
        Err(e) => Err(e).with_context(|| format!("cannot run {program}")),
    }
}

/// libpq's variables for a `postgres://` URL: user, password and database name
/// percent-decoded, and the query's connection parameters (`sslmode=...`) under their
/// variable names. Parameters libpq has no variable for are left out.
fn libpq_env(url: &str, ca_bundle: Option<&CaBundle>) -> anyhow::Result<Vec<(String, String)>> {
    // The URL itself is never echoed: it holds the password.
    let url = Url::parse(url).map_err(|_| anyhow!("DATABASE_URL is not a valid URL"))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| {
                anyhow!("DATABASE_URL has a user, password or database name that is not UTF-8")
            })
    };
    let mut env = Vec::new();
    match url.host() {
        // Without brackets: libpq takes an IPv6 address as it is.
        Some(url::Host::Ipv6(ip)) => env.push(("PGHOST".to_owned(), ip.to_string())),
        Some(host) => env.push(("PGHOST".to_owned(), host.to_string())),
        None => {}
    }
    if let Some(port) = url.port() {
        env.push(("PGPORT".to_owned(), port.to_string()));
    }
    if !url.username().is_empty() {
        env.push(("PGUSER".to_owned(), decode(url.username())?));
    }
    if let Some(password) = url.password() {
        env.push(("PGPASSWORD".to_owned(), decode(password)?));
    }
    let database = url.path().trim_start_matches('/');
    if !database.is_empty() {
        env.push(("PGDATABASE".to_owned(), decode(database)?));
    }
    // The server's certificate is checked as the app checks it (DATABASE_CA_BUNDLE).
    match ca_bundle {
        Some(CaBundle::File(path)) => {
            env.push(("PGSSLMODE".to_owned(), "verify-full".to_owned()));
            env.push(("PGSSLROOTCERT".to_owned(), path.display().to_string()));
        }
        // The RDS bundle is built into the app, not a file psql can read: encrypted, at least.
        Some(CaBundle::Rds) => env.push(("PGSSLMODE".to_owned(), "require".to_owned())),
        None => {}
    }
    // Query parameters win over the above, as they do for the app's own connection.
    for (key, value) in url.query_pairs() {
        let var = match key.as_ref() {
            "host" => "PGHOST",
            "port" => "PGPORT",
            "user" => "PGUSER",
            "password" => "PGPASSWORD",
            "dbname" => "PGDATABASE",
            "sslmode" => "PGSSLMODE",
            "sslrootcert" => "PGSSLROOTCERT",
            "sslcert" => "PGSSLCERT",
            "sslkey" => "PGSSLKEY",
            "application_name" => "PGAPPNAME",
            "options" => "PGOPTIONS",
            "connect_timeout" => "PGCONNECT_TIMEOUT",
            _ => continue,
        };
        env.retain(|(k, _)| k != var);
        env.push((var.to_owned(), value.into_owned()));
    }
    Ok(env)
}

/// The file of a `sqlite:` URL (`sqlite://path` or `sqlite:path`, options after `?` dropped).
fn sqlite_file(url: &str) -> anyhow::Result<&str> {
    let rest = url.strip_prefix("sqlite:").unwrap_or(url);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        bail!("DATABASE_URL names an in-memory SQLite database: there is nothing to open");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(url: &str) -> Vec<(String, String)> {
        libpq_env(url, None).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_postgres_url_becomes_libpq_variables_decoded() {
        let cases = [
            (
                "postgres://app:s%40cret%2F1@db.example.com:6432/my%20app?sslmode=require",
                pairs(&[
                    ("PGHOST", "db.example.com"),
                    ("PGPORT", "6432"),
                    ("PGUSER", "app"),
                    ("PGPASSWORD", "s@cret/1"),
                    ("PGDATABASE", "my app"),
                    ("PGSSLMODE", "require"),
                ]),
            ),
            (
                "postgresql://[::1]/app",
                pairs(&[("PGHOST", "::1"), ("PGDATABASE", "app")]),
            ),
            (
                "postgres:///app?host=/var/run/postgresql&user=ops&statement_cache_capacity=0",
                pairs(&[
                    ("PGDATABASE", "app"),
                    ("PGHOST", "/var/run/postgresql"),
                    ("PGUSER", "ops"),
                ]),
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(env(url), expected, "{url}");
        }
    }

    #[test]
    fn a_ca_bundle_file_makes_psql_verify_the_server() {
        let bundle = CaBundle::File("/etc/ca.pem".into());
        let env = libpq_env("postgres://h/app", Some(&bundle)).unwrap();
        assert!(env.contains(&("PGSSLMODE".into(), "verify-full".into())));
        assert!(env.contains(&("PGSSLROOTCERT".into(), "/etc/ca.pem".into())));
    }

    #[test]
    fn a_sqlite_url_gives_its_file() {
        for (url, file) in [
            ("sqlite://data/app.db", "data/app.db"),
            ("sqlite:///tmp/x.db?mode=rwc", "/tmp/x.db"),
            ("sqlite:app.db", "app.db"),
        ] {
            assert_eq!(sqlite_file(url).unwrap(), file, "{url}");
        }
        assert!(sqlite_file("sqlite::memory:").is_err());
    }
}
