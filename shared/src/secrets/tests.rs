use super::*;
use crate::config::{Config, DatabaseKind, Profile};

/// A case: what it is, the function's other variables, the secret, what to expect.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

const KEY: &str = "k8Jq2vX9mN4pL7rT1wY6zB3cF5hD0gS8aE2uI9oP4lK7jH1mN6bV3cQ";

fn config_with(extra: &[(&str, &str)], database_secret: &str) -> Result<Config, ConfigError> {
    let mut vars = crate::testing::vars_without_secrets(extra);
    apply(&mut vars, "DATABASE_SECRET_ARN", database_secret)?;
    apply(&mut vars, "SECRET_KEY_SECRET_ARN", KEY)?;
    Config::from_vars(&Profile::Lambda, &vars)
}

#[test]
fn every_shape_of_database_secret_gives_a_postgres_url() {
    let endpoint = [
        ("RDS_HOSTNAME", "db.abc.us-east-1.rds.amazonaws.com"),
        ("RDS_PORT", "5432"),
        ("RDS_DB_NAME", "app"),
    ];
    let cases: &[Case] = &[
        (
            "RDS-managed master secret, endpoint from the stack",
            &endpoint,
            r#"{"username": "app", "password": "p@ss:w/rd"}"#,
            "postgres://app:p%40ss%3Aw%2Frd@db.abc.us-east-1.rds.amazonaws.com:5432/app",
        ),
        (
            "rotation shape with host, port (a number) and dbname",
            &[],
            r#"{"engine": "postgres", "username": "u", "password": "p", "host": "h.example.com", "port": 6543, "dbname": "d"}"#,
            "postgres://u:p@h.example.com:6543/d",
        ),
        (
            "the stack's endpoint (RDS Proxy) wins over the secret's host",
            &[
                ("RDS_HOSTNAME", "proxy.example.com"),
                ("RDS_DB_NAME", "app"),
            ],
            r#"{"username": "u", "password": "p", "host": "db.example.com", "port": "5432", "dbname": "other"}"#,
            "postgres://u:p@proxy.example.com:5432/app",
        ),
        (
            "a URL as the whole secret",
            &[],
            "postgres://a:b@db.example.com:5432/app?sslmode=require\n",
            "postgres://a:b@db.example.com:5432/app?sslmode=require",
        ),
        (
            "a URL under \"url\"",
            &[],
            r#"{"url": "postgresql://a:b@db.example.com/app"}"#,
            "postgresql://a:b@db.example.com/app",
        ),
    ];
    for (case, extra, secret, want) in cases {
        let config = config_with(extra, secret).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(config.database.url.expose(), *want, "{case}");
        assert_eq!(config.database.kind, DatabaseKind::Postgres, "{case}");
        assert_eq!(config.secret_key.expose(), KEY, "{case}");
    }
}

#[test]
fn a_database_secret_that_cannot_be_used_names_the_variable_and_the_problem() {
    let cases: &[Case] = &[
        (
            "no host anywhere",
            &[],
            r#"{"username": "u", "password": "p"}"#,
            "RDS_HOSTNAME",
        ),
        (
            "no database name anywhere",
            &[("RDS_HOSTNAME", "h")],
            r#"{"username": "u", "password": "p"}"#,
            "RDS_DB_NAME",
        ),
        (
            "no password",
            &[("RDS_HOSTNAME", "h")],
            r#"{"username": "u"}"#,
            "\"password\"",
        ),
        (
            "not JSON, not a URL",
            &[],
            "hunter2",
            "neither a postgres:// URL nor JSON",
        ),
        (
            "also given as a plain variable",
            &[("DATABASE_URL", "postgres://x@y/z")],
            "postgres://a@b/c",
            "DATABASE_URL are both set",
        ),
    ];
    for (case, extra, secret, want) in cases {
        let mut vars = crate::testing::vars_without_secrets(extra);
        let err = apply(&mut vars, "DATABASE_SECRET_ARN", secret).unwrap_err();
        assert_eq!(err.var, "DATABASE_SECRET_ARN", "{case}");
        assert!(err.to_string().contains(want), "{case}: {err}");
    }
}

#[test]
fn single_value_secrets_fill_their_variable_as_a_string_or_json() {
    for (secret, want) in [
        ("s3cret-Value-123\n", "s3cret-Value-123"),
        (r#"{"password": "from-json-1"}"#, "from-json-1"),
        (r#"{"value": "from-json-2"}"#, "from-json-2"),
    ] {
        let mut vars = crate::testing::vars_without_secrets(&[]);
        apply(&mut vars, "SUPERUSER_PASSWORD_SECRET_ARN", secret).unwrap();
        assert_eq!(vars.get("SUPERUSER_PASSWORD"), Some(want));
    }
    let mut vars = crate::testing::vars_without_secrets(&[]);
    let err = apply(&mut vars, "SECRET_KEY_SECRET_ARN", r#"{"other": 1}"#).unwrap_err();
    assert_eq!(err.var, "SECRET_KEY_SECRET_ARN");
    let err = apply(&mut vars, "SECRET_KEY_SECRET_ARN", "  ").unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn credentials_come_back_decoded_from_a_url_secret() {
    let credentials = credentials_from_url("postgres://app%40x:p%40ss%2F1@h/d").unwrap();
    assert_eq!(credentials.username, "app@x");
    assert_eq!(credentials.password.expose(), "p@ss/1");
}

#[tokio::test]
async fn without_a_secret_arn_nothing_is_read_and_no_client_is_made() {
    let mut vars = crate::testing::vars_without_secrets(&[("DATABASE_URL", "postgres://a@b/c")]);
    let reader = resolve(&mut vars).await.unwrap();
    assert!(reader.is_none());
}
