// Case tables read best inline.
#![allow(clippy::type_complexity)]

use super::*;

/// A complete production (Lambda) environment; tests remove or break one variable at a time.
fn production() -> Vec<(&'static str, &'static str)> {
    crate::testing::production_vars()
}

fn load(profile: &Profile, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(profile, &Vars::from_pairs(pairs.iter().copied()))
}

fn without(var: &str) -> Vec<(&'static str, &'static str)> {
    production()
        .into_iter()
        .filter(|(k, _)| *k != var)
        .collect()
}

fn with(var: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut vars = without(var);
    vars.push((var, value));
    vars
}

fn local(dir: &Path) -> Profile {
    Profile::Local {
        data_dir: dir.to_path_buf(),
    }
}

#[test]
fn a_complete_production_environment_loads() {
    let config = load(&Profile::Lambda, &production()).unwrap();
    assert!(!config.debug);
    assert_eq!(config.database.kind, DatabaseKind::Postgres);
    assert_eq!(
        config.database.max_connections, 1,
        "one connection per Lambda instance"
    );
    assert_eq!(config.site_url.as_str(), "https://app.example.com/");
    assert_eq!(config.email_backend, EmailBackend::Ses);
    assert!(
        config.deploy_problems().is_empty(),
        "{:?}",
        config.deploy_problems()
    );
}

#[test]
fn each_required_variable_missing_in_production_is_named() {
    for var in [
        "SECRET_KEY",
        "DATABASE_URL",
        "ALLOWED_HOSTS",
        "SITE_URL",
        "EMAIL_BACKEND",
        "DEFAULT_FROM_EMAIL",
        "WORKER_QUEUE_URL",
    ] {
        let err = load(&Profile::Lambda, &without(var)).unwrap_err();
        assert_eq!(err.var, var, "missing {var} reported as {err}");
        assert!(
            err.to_string().starts_with(&format!("{var} must be set")),
            "{err}"
        );
    }
}

#[test]
fn each_malformed_variable_is_named_with_what_it_needs() {
    let cases: &[(&str, &str, &str)] = &[
        ("DEBUG", "maybe", "must be true or false"),
        ("FORCE_HTTPS", "sometimes", "must be true or false"),
        ("MAX_REQUEST_BYTES", "10", "from 1024 to 6291456"),
        ("MAX_REQUEST_BYTES", "1MB", "from 1024 to 6291456"),
        (
            "DATABASE_URL",
            "mysql://root:hunter2@db/app",
            "must start with sqlite: or postgres://",
        ),
        (
            "DATABASE_URL",
            "postgres://db.example.com:port/app",
            "not a valid URL",
        ),
        ("DATABASE_MAX_CONNECTIONS", "0", "from 1 to 100"),
        ("DATABASE_ACQUIRE_TIMEOUT", "0", "seconds from 1 to 60"),
        ("DATABASE_ACQUIRE_TIMEOUT", "5s", "seconds from 1 to 60"),
        (
            "DATABASE_CA_BUNDLE",
            "/no/such/bundle.pem",
            "must be rds (the Amazon RDS certificate authorities) or the path of a PEM file",
        ),
        (
            "ALLOWED_HOSTS",
            "https://app.example.com/",
            "without scheme or path",
        ),
        ("ALLOWED_HOSTS", " , ", "at least one host"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com/path",
            "must be an origin",
        ),
        (
            "CORS_ALLOWED_ORIGINS",
            "app.example.com",
            "must be an origin",
        ),
        ("SITE_URL", "app.example.com", "absolute http(s) URL"),
        ("SITE_URL", "ftp://app.example.com", "absolute http(s) URL"),
        ("SITE_URL", "https://app.example.com/?a=1", "without query"),
        ("SITE_NAME", "Yoga\nClub", "must be one line of text"),
        ("EMAIL_BACKEND", "smtp", "must be console or ses"),
        (
            "DEFAULT_FROM_EMAIL",
            "not-an-address",
            "must be an email address",
        ),
        (
            "WORKER_QUEUE_URL",
            "app-worker",
            "http(s) URL of an SQS queue",
        ),
        ("LOG_LEVEL", "loud", "must be one of error, warn"),
        ("RUST_LOG", "web=chatty", "must be tracing directives"),
        ("LOG_FORMAT", "xml", "must be auto, text or json"),
        ("ACCESS_LOG", "sometimes", "must be true or false"),
        ("AWS_XRAY_DAEMON_ADDRESS", "xray:2000", "must be host:port"),
        ("METRICS_NAMESPACE", "AWS/Lambda", "CloudWatch namespace"),
        ("METRICS_NAMESPACE", "my stack", "CloudWatch namespace"),
        ("TIME_ZONE", "Mars/Olympus_Mons", "IANA time zone"),
        ("PORT", "eighty", "port number"),
        ("PORT", "70000", "port number"),
        ("HOST", "my laptop", "IP address"),
    ];
    for (var, value, expected) in cases {
        let Err(err) = load(&Profile::Lambda, &with(var, value)) else {
            panic!("{var}={value:?} was accepted");
        };
        assert_eq!(&err.var, var, "{var}={value:?} reported as {err}");
        assert!(
            err.to_string().contains(expected),
            "{var}={value:?}: {err} should say {expected:?}"
        );
    }
}

#[test]
fn the_site_name_has_a_default_and_a_length_limit() {
    let config = load(&Profile::Lambda, &production()).unwrap();
    assert_eq!(config.site_name, "Serverless Starter");
    let config = load(&Profile::Lambda, &with("SITE_NAME", "  Lakeside Yoga ")).unwrap();
    assert_eq!(config.site_name, "Lakeside Yoga");
    let long = "y".repeat(101);
    let mut vars = production();
    vars.push(("SITE_NAME", &long));
    let err = load(&Profile::Lambda, &vars).unwrap_err();
    assert_eq!(err.var, "SITE_NAME");
    assert!(err.to_string().contains("at most 100 characters"), "{err}");
}

#[test]
fn a_bad_database_url_never_echoes_the_password() {
    let err = load(
        &Profile::Lambda,
        &with("DATABASE_URL", "mysql://root:hunter2@db/app"),
    )
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn superuser_settings_are_validated_and_an_email_needs_a_password() {
    let cases: &[(&[(&str, &str)], &str, &str)] = &[
        (
            &[("SUPERUSER_EMAIL", "admin@example.com")],
            "SUPERUSER_PASSWORD",
            "must be set when",
        ),
        (
            &[
                ("SUPERUSER_EMAIL", "admin"),
                ("SUPERUSER_PASSWORD", "a long passphrase"),
            ],
            "SUPERUSER_EMAIL",
            "must be an email address",
        ),
        (
            &[("SUPERUSER_PASSWORD", "short")],
            "SUPERUSER_PASSWORD",
            "at least 8",
        ),
        (
            &[
                ("SUPERUSER_EMAIL", "admin.user@example.com"),
                ("SUPERUSER_PASSWORD", "admin.user"),
            ],
            "SUPERUSER_PASSWORD",
            "email address",
        ),
    ];
    for (extra, var, expected) in cases {
        let mut vars = production();
        vars.extend_from_slice(extra);
        let Err(err) = load(&Profile::Lambda, &vars) else {
            panic!("{extra:?} was accepted");
        };
        assert_eq!(&err.var, var, "{extra:?}: {err}");
        assert!(err.to_string().contains(expected), "{extra:?}: {err}");
    }
    let mut vars = production();
    vars.push(("SUPERUSER_PASSWORD", "a long passphrase"));
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert!(config.superuser_email.is_none() && config.superuser_password.is_some());
    vars.push(("SUPERUSER_EMAIL", "Admin@Example.com"));
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert_eq!(
        config.superuser_email.unwrap().as_str(),
        "admin@example.com"
    );
}

#[test]
fn rds_variables_from_elastic_beanstalk_build_a_postgres_url() {
    let mut vars = without("DATABASE_URL");
    vars.extend([
        ("RDS_HOSTNAME", "abc.rds.amazonaws.com"),
        ("RDS_PORT", "5433"),
        ("RDS_DB_NAME", "ebdb"),
        ("RDS_USERNAME", "admin"),
        ("RDS_PASSWORD", "p@ss/word:#1"),
    ]);
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert_eq!(config.database.kind, DatabaseKind::Postgres);
    assert_eq!(
        config.database.url.expose(),
        "postgres://admin:p%40ss%2Fword%3A%231@abc.rds.amazonaws.com:5433/ebdb"
    );
    for var in ["RDS_DB_NAME", "RDS_USERNAME", "RDS_PASSWORD"] {
        let partial: Vec<_> = vars.iter().copied().filter(|(k, _)| *k != var).collect();
        let err = load(&Profile::Lambda, &partial).unwrap_err();
        assert_eq!(err.var, var, "{err}");
    }
    let bad_port: Vec<_> = vars
        .iter()
        .copied()
        .map(|(k, v)| if k == "RDS_PORT" { (k, "x") } else { (k, v) })
        .collect();
    assert_eq!(
        load(&Profile::Lambda, &bad_port).unwrap_err().var,
        "RDS_PORT"
    );
}

#[test]
fn database_tls_and_acquire_timeout_settings_are_parsed() {
    let config = load(
        &Profile::Lambda,
        &[
            with("DATABASE_CA_BUNDLE", "RDS"),
            vec![("DATABASE_ACQUIRE_TIMEOUT", "20")],
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(config.database.ca_bundle, Some(CaBundle::Rds));
    assert_eq!(config.database.acquire_timeout, Duration::from_secs(20));

    let defaults = load(&Profile::Lambda, &production()).unwrap();
    assert_eq!(defaults.database.ca_bundle, None);
    assert_eq!(defaults.database.acquire_timeout, super::ACQUIRE_TIMEOUT);

    let sqlite = load(
        &Profile::Lambda,
        &[
            with("DATABASE_URL", "sqlite:///tmp/app.db"),
            vec![("DATABASE_CA_BUNDLE", "rds")],
        ]
        .concat(),
    )
    .unwrap_err();
    assert_eq!(sqlite.var, "DATABASE_CA_BUNDLE");
}

#[test]
fn a_sqlite_database_in_a_missing_folder_is_refused_unless_it_is_the_default_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent/dir");
    let url = format!("sqlite://{}/x.db", missing.display());
    let err = load(&local(dir.path()), &[("DATABASE_URL", url.as_str())]).unwrap_err();
    assert_eq!(err.var, "DATABASE_URL");
    assert!(
        err.to_string().contains("a folder that does not exist"),
        "{err}"
    );
    assert!(!missing.exists(), "the folder was created");

    // The same URL shapes with a folder that exists, and the ones without a folder.
    let existing = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    for url in [existing.as_str(), "sqlite::memory:", "sqlite:x.db"] {
        let config = load(&local(dir.path()), &[("DATABASE_URL", url)]);
        assert!(config.is_ok(), "{url}: {:?}", config.err());
    }
    // The default data folder need not exist yet: it is created on first run.
    let fresh = dir.path().join("data");
    let key = "local-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz";
    let config = load(&local(&fresh), &[("SECRET_KEY", key)]).unwrap();
    assert!(config.database.url.expose().ends_with("app.db"));
}

#[test]
fn database_url_wins_over_rds_variables() {
    let mut vars = production();
    vars.push(("RDS_HOSTNAME", "ignored.example.com"));
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert!(config.database.url.expose().contains("db.example.com"));
}

#[test]
fn local_debug_runs_with_no_settings_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(&local(dir.path()), &[]).unwrap();
    assert!(config.debug);
    assert!(config.secret_key_is_generated);
    assert!(config.secret_key.expose().len() >= 50);
    assert_eq!(config.database.kind, DatabaseKind::Sqlite);
    assert!(config.database.url.expose().ends_with("app.db"));
    assert_eq!(config.site_url.as_str(), "http://127.0.0.1:3000/");
    assert_eq!(config.email_backend, EmailBackend::Console);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.port, 3000);
    // The generated key is kept, so sessions survive a restart.
    let again = load(&local(dir.path()), &[]).unwrap();
    assert_eq!(again.secret_key, config.secret_key);
}

#[test]
fn local_without_debug_has_no_development_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&local(dir.path()), &[("DEBUG", "false")]).unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
    let err = load(
        &local(dir.path()),
        &[("DEBUG", "false"), ("SECRET_KEY", "x".repeat(60).leak())],
    )
    .unwrap_err();
    assert_eq!(err.var, "DATABASE_URL");
}

#[test]
fn lambda_never_gets_development_defaults_even_with_debug() {
    let err = load(&Profile::Lambda, &[("DEBUG", "true")]).unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
}

#[test]
fn blank_values_count_as_unset() {
    let err = load(&Profile::Lambda, &with("SECRET_KEY", "   ")).unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
}

#[test]
fn lists_and_urls_are_normalised() {
    let mut vars = with("ALLOWED_HOSTS", " App.Example.com , .example.org ,");
    vars.push((
        "CORS_ALLOWED_ORIGINS",
        "https://App.Example.com, http://localhost:5173",
    ));
    // A later pair overrides an earlier one, as in the environment.
    vars.push(("SITE_URL", "https://example.com/app"));
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert_eq!(config.allowed_hosts, ["app.example.com", ".example.org"]);
    assert_eq!(
        config.cors_allowed_origins,
        ["https://app.example.com", "http://localhost:5173"]
    );
    assert_eq!(config.site_url.as_str(), "https://example.com/app/");
}

#[test]
fn log_settings_follow_rust_log_then_log_level_and_json_in_lambda() {
    let mut vars = with("LOG_LEVEL", "DEBUG");
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert_eq!(config.log.filter, "debug");
    vars.push(("RUST_LOG", "web=trace,info"));
    let config = load(&Profile::Lambda, &vars).unwrap();
    assert_eq!(config.log.filter, "web=trace,info");
    assert_eq!(config.log.format, LogFormat::Text, "not in Lambda");
    vars.push(("AWS_LAMBDA_FUNCTION_NAME", "web"));
    assert_eq!(
        load(&Profile::Lambda, &vars).unwrap().log.format,
        LogFormat::Json
    );
    vars.push(("LOG_FORMAT", "text"));
    assert_eq!(
        load(&Profile::Lambda, &vars).unwrap().log.format,
        LogFormat::Text
    );
}

#[test]
fn the_access_line_is_on_locally_and_off_in_lambda_unless_access_log_says() {
    let mut vars = with("LOG_LEVEL", "info");
    assert!(
        load(&Profile::Lambda, &vars).unwrap().log.access_log,
        "not in Lambda"
    );
    vars.push(("AWS_LAMBDA_FUNCTION_NAME", "web"));
    assert!(!load(&Profile::Lambda, &vars).unwrap().log.access_log);
    vars.push(("ACCESS_LOG", "true"));
    assert!(load(&Profile::Lambda, &vars).unwrap().log.access_log);
}

#[test]
fn the_x_ray_daemon_is_where_lambda_says() {
    assert_eq!(
        load(&Profile::Lambda, &production())
            .unwrap()
            .log
            .xray_daemon,
        None
    );
    let config = load(
        &Profile::Lambda,
        &with("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
    )
    .unwrap();
    assert_eq!(
        config.log.xray_daemon,
        Some("169.254.79.129:2000".parse().unwrap())
    );
}

#[test]
fn check_names_every_insecure_setting() {
    let cases: &[(&str, &str, &str)] = &[
        ("DEBUG", "true", "DEBUG"),
        ("SECRET_KEY", "short-secret", "SECRET_KEY"),
        (
            "SECRET_KEY",
            "abababababababababababababababababababababababababababab",
            "SECRET_KEY",
        ),
        ("ALLOWED_HOSTS", "localhost,127.0.0.1", "ALLOWED_HOSTS"),
        ("ALLOWED_HOSTS", "app.example.com,*", "ALLOWED_HOSTS"),
        ("FORCE_HTTPS", "false", "FORCE_HTTPS"),
        ("SITE_URL", "http://app.example.com", "SITE_URL"),
        (
            "CORS_ALLOWED_ORIGINS",
            "http://app.example.com",
            "CORS_ALLOWED_ORIGINS",
        ),
        ("DATABASE_URL", "sqlite:///tmp/app.db", "DATABASE_URL"),
        ("EMAIL_BACKEND", "console", "EMAIL_BACKEND"),
    ];
    for (var, value, flagged) in cases {
        let config = load(&Profile::Lambda, &with(var, value)).unwrap();
        let problems = config.deploy_problems();
        assert_eq!(problems.len(), 1, "{var}={value:?}: {problems:?}");
        assert_eq!(&problems[0].var, flagged, "{var}={value:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let dev = load(&local(dir.path()), &[]).unwrap();
    let flagged: Vec<_> = dev.deploy_problems().iter().map(|p| p.var).collect();
    assert!(
        flagged.contains(&"SECRET_KEY") && flagged.contains(&"DEBUG"),
        "{flagged:?}"
    );
}

#[test]
fn check_holds_the_secret_key_to_50_characters_and_5_distinct_at_the_boundaries() {
    let many = "k8Jq2vX9mN4pL7rT1wY6zB3cF5hD0gS8aE2uI9oP4lK7jH1mN6bV3c";
    let cases: [(String, bool); 5] = [
        (many[..49].to_owned(), true),
        (many[..50].to_owned(), false),
        ("abcde".repeat(10), false),
        ("abcd".repeat(15), true),
        ("abcd".repeat(12) + "ab", true),
    ];
    for (key, weak) in cases {
        let value: &'static str = Box::leak(key.clone().into_boxed_str());
        let config = load(&Profile::Lambda, &with("SECRET_KEY", value)).unwrap();
        let flagged = config
            .deploy_problems()
            .iter()
            .any(|p| p.var == "SECRET_KEY");
        assert_eq!(flagged, weak, "{} characters: {key}", key.len());
    }
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = load(&Profile::Lambda, &production()).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("k8Jq2vX9"), "secret key leaked");
    assert!(!shown.contains("app:secret@"), "database password leaked");
}

#[test]
fn env_example_lists_every_setting_config_reads() {
    let source = include_str!("../config.rs");
    let example = include_str!("../../../.env.example");
    let names: Vec<&str> = source
        .split("vars.get(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        // Set by the Lambda runtime, not by users.
        .filter(|name| !name.starts_with("AWS_"))
        .collect();
    assert!(names.len() > 15, "found {names:?}");
    for name in names {
        let listed = example.lines().any(|line| {
            line.trim_start_matches(['#', ' '])
                .starts_with(&format!("{name}="))
        });
        assert!(listed, ".env.example has no `{name}=` line");
    }
}
