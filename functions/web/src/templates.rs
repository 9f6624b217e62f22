//! Templates, embedded at compile time so a Lambda package is one file.

use minijinja::{Environment, Value};

use crate::stylesheet::stylesheet_url;

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
    // example-app:begin
    "classes.html",
    "class.html",
    "class_form.html",
    "bookings.html",
    // example-app:end
    "api_docs.html",
    "admin/base.html",
    "admin/_admin.html",
    "admin/dashboard.html",
    "admin/log.html",
    "admin/users.html",
    "admin/user.html",
    "admin/emails.html",
    "admin/email.html",
    // example-app:begin
    "admin/classes.html",
    "admin/class.html",
    "admin/occurrence.html",
    // example-app:end
    "admin/jobs.html",
    "admin/job.html",
    "admin/dead_letters.html",
];

fn source(name: &str) -> Option<&'static str> {
    TEMPLATES
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|(_, source)| *source)
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Each template is parsed at its first use, not here: parsing all of them took about
    /// 1 MB of heap and 1.8 ms of the web Lambda's init, and a cold start renders one page
    /// (BENCHMARKS.md, "Findings"). A syntax error
    /// is still caught before deploying: `check_all` parses every template, and a unit test and
    /// the local runner's start-up call it.
    pub fn new(debug: bool, site_name: &str) -> Self {
        let mut env = Environment::new();
        env.set_loader(|name| Ok(source(name)));
        // A URL we built, not user input: marked safe so `/` is not entity-escaped.
        env.add_global("css_url", Value::from_safe_string(stylesheet_url()));
        env.add_global("site_name", site_name.to_owned());
        // Pages show the version (and the home page the database) with DEBUG on only: in
        // production they would tell an attacker which known flaws to try.
        if debug {
            env.add_global("version", env!("CARGO_PKG_VERSION"));
        }
        env.add_global("debug", debug);
        Self { env }
    }

    /// The templates and `extra` ones, `(name, source)`: the worked example of
    /// `docs/first-model.md` renders the guide's template this way.
    #[cfg(test)]
    pub(crate) fn with_extra(debug: bool, site_name: &str, extra: Vec<(String, String)>) -> Self {
        let mut templates = Self::new(debug, site_name);
        templates.env.set_loader(move |name| {
            Ok(extra
                .iter()
                .find(|(candidate, _)| candidate == name)
                .map(|(_, source)| source.clone())
                .or_else(|| source(name).map(str::to_owned)))
        });
        templates
    }

    /// Parses every template (and loads what each extends, includes or imports).
    pub fn check_all(&self) -> anyhow::Result<()> {
        for (name, _) in TEMPLATES {
            self.env
                .get_template(name)
                .map_err(|e| anyhow::anyhow!("template {name} does not parse: {e:#}"))?;
        }
        Ok(())
    }

    /// Renders template `name`. An error names the template; callers turn it into a 500 (and
    /// a log line), never a panic.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError(anyhow::anyhow!("template {name}: {e:#}")))?;
        template
            .render(ctx)
            .map_err(|e| TemplateError(anyhow::anyhow!("rendering {name}: {e:#}")))
    }
}

/// A template that could not be loaded or rendered, with its name.
#[derive(Debug)]
pub struct TemplateError(pub anyhow::Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        Templates::new(false, "Serverless Starter")
            .check_all()
            .unwrap();
    }

    #[test]
    fn every_file_in_the_templates_folder_is_listed() {
        fn files(dir: &std::path::Path, prefix: &str, into: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type().unwrap().is_dir() {
                    files(&entry.path(), &format!("{name}/"), into);
                } else {
                    into.push(name);
                }
            }
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/templates");
        let mut on_disk = Vec::new();
        files(std::path::Path::new(dir), "", &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn a_template_that_does_not_parse_is_reported_by_name() {
        let mut env = Environment::new();
        env.set_loader(|_| Ok(Some("{% if %}")));
        let error = Templates { env }.check_all().unwrap_err().to_string();
        assert!(
            error.starts_with("template base.html does not parse"),
            "{error}"
        );
    }
}
