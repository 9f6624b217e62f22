//! Secrets read at run time from AWS Secrets Manager, never from an environment variable.
//!
//! In AWS a function is given secret *ARNs* (`DATABASE_SECRET_ARN`, `SECRET_KEY_SECRET_ARN`,
//! `SUPERUSER_PASSWORD_SECRET_ARN`) and reads the values once at init: an environment variable
//! is readable by anyone allowed `lambda:GetFunctionConfiguration`, and a value resolved by
//! CloudFormation at deploy time never sees a rotated password. The values fill the plain
//! variables the configuration already reads ([`apply`]), so [`Config`] stays one synchronous
//! parser and local development (no ARN set) needs no AWS at all: [`load_config`] then makes no
//! call and builds no SDK client.
//!
//! The database secret may be:
//! - the secret RDS manages for a master user (`ManageMasterUserPassword`): `{"username",
//!   "password"}`, with the host, port and database name from `RDS_HOSTNAME`, `RDS_PORT` and
//!   `RDS_DB_NAME` (the stack sets them to the database or RDS Proxy endpoint);
//! - Secrets Manager's rotation shape, `{"username", "password", "host", "port", "dbname"}`
//!   (variables the function sets win over the secret's host, port and name);
//! - a URL, as the whole string or as `{"url": "postgres://..."}`.
//!
//! When the database later refuses the password (RDS rotated it), [`DatabaseSecret`] re-reads
//! the secret once and the pool reconnects with the new credentials ([`crate::db`]).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::config::{Config, ConfigError, Profile, Secret, Vars};
use crate::config::{CredentialSource, Credentials};

/// A variable holding a secret's ARN, and the plain variable its value stands for.
#[derive(Debug, Clone, Copy)]
pub struct SecretVariable {
    pub arn_variable: &'static str,
    pub fills: &'static str,
}

/// Every secret a function can be given. A function gets the ones it needs (the superuser's
/// password only reaches the deploy hook).
pub const SECRET_VARIABLES: &[SecretVariable] = &[
    SecretVariable {
        arn_variable: "DATABASE_SECRET_ARN",
        fills: "DATABASE_URL",
    },
    SecretVariable {
        arn_variable: "SECRET_KEY_SECRET_ARN",
        fills: "SECRET_KEY",
    },
    SecretVariable {
        arn_variable: "SUPERUSER_PASSWORD_SECRET_ARN",
        fills: "SUPERUSER_PASSWORD",
    },
];

fn secret_variable(arn_variable: &str) -> Result<&'static SecretVariable, ConfigError> {
    SECRET_VARIABLES
        .iter()
        .find(|s| s.arn_variable == arn_variable)
        .ok_or_else(|| {
            ConfigError::new(
                "secrets",
                format!("{arn_variable} is not a secret variable"),
            )
        })
}

/// Puts a secret's value where the configuration reads it: `secret_string` is the secret named
/// by `arn_variable`. A value the configuration would also take from a plain variable must not
/// be given both ways (which one would win would be a guess).
pub fn apply(vars: &mut Vars, arn_variable: &str, secret_string: &str) -> Result<(), ConfigError> {
    let variable = secret_variable(arn_variable)?;
    let var = variable.arn_variable;
    if vars.get(variable.fills).is_some() {
        return Err(ConfigError::new(
            var,
            format!("and {} are both set: set only one", variable.fills),
        ));
    }
    match var {
        "DATABASE_SECRET_ARN" => apply_database(vars, secret_string),
        _ => {
            let value = plain_value(var, secret_string)?;
            vars.set(variable.fills, value);
            Ok(())
        }
    }
}

/// A secret that is a single value: the whole string, or `{"password": ...}` / `{"value": ...}`
/// for those who store it as JSON.
fn plain_value(var: &'static str, secret_string: &str) -> Result<String, ConfigError> {
    let trimmed = secret_string.trim();
    if trimmed.starts_with('{') {
        let json: Value = serde_json::from_str(trimmed).map_err(|_| {
            ConfigError::new(
                var,
                "names a secret that is neither a plain string nor valid JSON",
            )
        })?;
        return ["password", "value"]
            .iter()
            .find_map(|key| json.get(key).and_then(Value::as_str))
            .map(str::to_owned)
            .ok_or_else(|| {
                ConfigError::new(
                    var,
                    "names a JSON secret without a \"password\" or \"value\" string: store the value as a plain string",
                )
            });
    }
    if trimmed.is_empty() {
        return Err(ConfigError::new(var, "names an empty secret"));
    }
    Ok(trimmed.to_owned())
}

fn apply_database(vars: &mut Vars, secret_string: &str) -> Result<(), ConfigError> {
    const VAR: &str = "DATABASE_SECRET_ARN";
    let trimmed = secret_string.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        vars.set("DATABASE_URL", trimmed);
        return Ok(());
    }
    let json: Value = serde_json::from_str(trimmed).map_err(|_| {
        ConfigError::new(
            VAR,
            "names a secret that is neither a postgres:// URL nor JSON ({\"username\", \"password\", ...} or {\"url\"})",
        )
    })?;
    if let Some(url) = json.get("url").and_then(Value::as_str) {
        vars.set("DATABASE_URL", url);
        return Ok(());
    }
    let credentials = credentials_from_json(&json)?;
    vars.set("RDS_USERNAME", credentials.username);
    vars.set("RDS_PASSWORD", credentials.password.expose());
    // Where to connect: what the function was told wins (RDS Proxy's endpoint), then the
    // secret's own fields.
    for (var, key) in [
        ("RDS_HOSTNAME", "host"),
        ("RDS_PORT", "port"),
        ("RDS_DB_NAME", "dbname"),
    ] {
        if vars.get(var).is_some() {
            continue;
        }
        match json.get(key) {
            Some(Value::String(s)) => vars.set(var, s),
            Some(Value::Number(n)) => vars.set(var, n.to_string()),
            _ => {}
        }
    }
    if vars.get("RDS_HOSTNAME").is_none() {
        return Err(ConfigError::new(
            VAR,
            "names a secret without \"host\" and RDS_HOSTNAME is not set: say where the database is",
        ));
    }
    if vars.get("RDS_DB_NAME").is_none() {
        return Err(ConfigError::new(
            VAR,
            "names a secret without \"dbname\" and RDS_DB_NAME is not set: name the database",
        ));
    }
    Ok(())
}

fn credentials_from_json(json: &Value) -> Result<Credentials, ConfigError> {
    let field = |key: &str| {
        json.get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    "DATABASE_SECRET_ARN",
                    format!("names a secret without a \"{key}\" string (expected RDS's {{\"username\", \"password\"}} or {{\"url\"}})"),
                )
            })
    };
    Ok(Credentials {
        username: field("username")?.to_owned(),
        password: Secret::new(field("password")?),
    })
}

/// Reads the process environment (and `.env` locally), fetches the secrets it names (all at
/// once), and builds the configuration. With a database secret, the configuration also carries
/// the [`DatabaseSecret`] that re-reads it when the password is refused.
pub async fn load_config(profile: Profile) -> Result<Config, ConfigError> {
    let mut vars = Vars::from_process(&profile)?;
    let reader = resolve(&mut vars).await?;
    let mut config = Config::from_vars(&profile, &vars)?;
    if let Some(reader) = reader
        && let Some(arn) = vars.get("DATABASE_SECRET_ARN")
    {
        config.database.credentials = Some(Arc::new(DatabaseSecret::new(reader, arn.to_owned())));
    }
    Ok(config)
}

/// Fetches every secret named in `vars` and applies it. Returns the reader when it made one
/// (`None`, and no AWS call, when no secret is named).
pub async fn resolve(vars: &mut Vars) -> Result<Option<SecretReader>, ConfigError> {
    let named: Vec<(&'static str, String)> = SECRET_VARIABLES
        .iter()
        .filter_map(|s| Some((s.arn_variable, vars.get(s.arn_variable)?.to_owned())))
        .collect();
    if named.is_empty() {
        return Ok(None);
    }
    let reader = SecretReader::new().await;
    for (var, value) in reader.read_all(&named).await? {
        apply(vars, var, value.expose())?;
    }
    Ok(Some(reader))
}

/// A Secrets Manager client (made only when a secret is named).
#[derive(Clone, Debug)]
pub struct SecretReader {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretReader {
    pub async fn new() -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await),
        }
    }

    /// The current values of several secrets in one `BatchGetSecretValue` call: one round trip
    /// and one connection at init, however many secrets (against the emulator, 3.9 ms for two
    /// where two `GetSecretValue` calls in parallel took 9.2: BENCHMARKS.md). Each value is
    /// still authorized by `GetSecretValue` on its own ARN. A secret the answer does not name
    /// (it was given by a partial ARN) is read on its own.
    pub async fn read_all(
        &self,
        named: &[(&'static str, String)],
    ) -> Result<Vec<(&'static str, Secret)>, ConfigError> {
        if let [(var, arn)] = named {
            return Ok(vec![(*var, self.read(var, arn).await?)]);
        }
        let first = named.first().map_or("secrets", |(var, _)| *var);
        let mut request = self.client.batch_get_secret_value();
        for (_, arn) in named {
            request = request.secret_id_list(arn);
        }
        let output = request.send().await.map_err(|e| {
            let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e);
            let vars: Vec<&str> = named.iter().map(|(var, _)| *var).collect();
            ConfigError::new(
                first,
                format!(
                    "and the other secrets ({}) could not be read: {e}",
                    vars.join(", ")
                ),
            )
        })?;
        let mut values = Vec::with_capacity(named.len());
        for (var, arn) in named {
            let is = |id: Option<&str>| id == Some(arn.as_str());
            if let Some(error) = output.errors().iter().find(|e| is(e.secret_id())) {
                return Err(ConfigError::new(
                    var,
                    format!(
                        "names a secret that could not be read ({arn}): {}: {}",
                        error.error_code().unwrap_or("error"),
                        error.message().unwrap_or_default()
                    ),
                ));
            }
            let value = match output
                .secret_values()
                .iter()
                .find(|v| is(v.arn()) || is(v.name()))
            {
                Some(entry) => entry.secret_string().map(Secret::new).ok_or_else(|| {
                    ConfigError::new(
                        var,
                        format!("names a binary secret ({arn}): store a string"),
                    )
                })?,
                None => self.read(var, arn).await?,
            };
            values.push((*var, value));
        }
        Ok(values)
    }

    /// The current value of the secret `arn`; `var` names it in the error.
    pub async fn read(&self, var: &'static str, arn: &str) -> Result<Secret, ConfigError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e);
                ConfigError::new(
                    var,
                    format!("names a secret that could not be read ({arn}): {e}"),
                )
            })?;
        output.secret_string.map(Secret::new).ok_or_else(|| {
            ConfigError::new(
                var,
                format!("names a binary secret ({arn}): store a string"),
            )
        })
    }
}

/// The database secret, re-read when the server refuses the password in use (rotation).
#[derive(Debug)]
pub struct DatabaseSecret {
    reader: SecretReader,
    arn: String,
}

impl DatabaseSecret {
    pub fn new(reader: SecretReader, arn: String) -> Self {
        Self { reader, arn }
    }
}

impl CredentialSource for DatabaseSecret {
    fn credentials(&self) -> BoxFuture<'_, anyhow::Result<Credentials>> {
        Box::pin(async move {
            let value = self.reader.read("DATABASE_SECRET_ARN", &self.arn).await?;
            let trimmed = value.expose().trim();
            if trimmed.starts_with('{') {
                let json: Value = serde_json::from_str(trimmed)
                    .map_err(|_| anyhow::anyhow!("the database secret is no longer valid JSON"))?;
                if let Some(url) = json.get("url").and_then(Value::as_str) {
                    return credentials_from_url(url);
                }
                return Ok(credentials_from_json(&json)?);
            }
            credentials_from_url(trimmed)
        })
    }
}

fn credentials_from_url(url: &str) -> anyhow::Result<Credentials> {
    let url = url::Url::parse(url)
        .map_err(|_| anyhow::anyhow!("the database secret's URL is not valid"))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| anyhow::anyhow!("the database secret's URL is not UTF-8 once decoded"))
    };
    Ok(Credentials {
        username: decode(url.username())?,
        password: Secret::new(decode(url.password().unwrap_or_default())?),
    })
}

#[cfg(test)]
mod tests;
