//! Templates and the stylesheet, embedded at compile time so a Lambda package is one file.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};
use sha2::{Digest, Sha256};
use shared::config::Config;

use crate::error::WebError;

/// (name, source) for each file in `assets/templates/`. Names end in `.html`, which turns on
/// minijinja's HTML escaping.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../assets/templates/", $name)))),*]
    };
}
const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "_forms.html",
    "home.html",
    "error.html",
    "message.html",
    "dev_mail.html",
    "signup.html",
    "login.html",
    "verify_email.html",
    "password_reset.html",
    "password_reset_confirm.html",
    "account.html",
    "_pager.html",
    "classes.html",
    "class.html",
    "class_form.html",
    "bookings.html",
    "admin/base.html",
    "admin/_admin.html",
    "admin/dashboard.html",
    "admin/log.html",
    "admin/users.html",
    "admin/user.html",
    "admin/emails.html",
    "admin/email.html",
    "admin/classes.html",
    "admin/class.html",
    "admin/jobs.html",
    "admin/job.html",
    "admin/dead_letters.html",
];

/// Built by Tailwind from the templates (`npm --prefix assets run build`); committed.
const STYLESHEET: &[u8] = include_bytes!("../../../assets/dist/app.css");

/// The stylesheet's public name, e.g. `app.3f9c0a1b2c4d.css`: a new build gets a new name, so
/// browsers and CDNs may cache each one forever.
pub fn stylesheet_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let digest = hex::encode(Sha256::digest(STYLESHEET));
        format!("app.{}.css", &digest[..12])
    })
}

pub fn stylesheet_url() -> String {
    format!("/static/{}", stylesheet_name())
}

/// `GET /static/{file}`: the current stylesheet, cached for a year.
pub async fn stylesheet(Path(file): Path<String>) -> Result<Response, WebError> {
    if file != stylesheet_name() {
        return Err(WebError::not_found("no such file"));
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        STYLESHEET,
    )
        .into_response())
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Parses every template; a syntax error stops start-up (and fails the router tests).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| anyhow::anyhow!("template {name} does not parse: {e:#}"))?;
        }
        // A URL we built, not user input: marked safe so `/` is not entity-escaped.
        env.add_global("css_url", Value::from_safe_string(stylesheet_url()));
        env.add_global("site_name", "Serverless Starter");
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        env.add_global("debug", config.debug);
        Ok(Self { env })
    }

    /// Renders a page; a template error is a 500 (and is logged), never a panic.
    pub fn render(&self, name: &str, ctx: Value) -> Result<Html<String>, WebError> {
        self.render_string(name, ctx).map(Html)
    }

    pub fn render_string(&self, name: &str, ctx: Value) -> Result<String, WebError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| WebError::unexpected(anyhow::anyhow!("template {name}: {e:#}")))?;
        template
            .render(ctx)
            .map_err(|e| WebError::unexpected(anyhow::anyhow!("rendering {name}: {e:#}")))
    }
}
