//! Email: templates rendered with minijinja, and the mailer chosen by `EMAIL_BACKEND`.
//!
//! Each kind of email ([`EmailKind`]) is a folder in `assets/emails/<kind>/` with
//! `subject.txt`, `body.txt` and `body.html` (HTML-escaped; it may extend
//! `assets/emails/base.html`). Adding a kind is one folder, one variant and one line in
//! [`KINDS`].
//!
//! Mailers: [`ConsoleMailer`] prints messages (the local default; `/_dev/mail` shows what the
//! outbox sent), [`SesMailer`] calls Amazon SES v2 `SendEmail`. A failure is
//! [`FailureKind::Transient`] (retry later) or [`FailureKind::Permanent`] (retrying cannot help).

mod console;
#[cfg(any(test, feature = "testing"))]
mod fake;
mod ses;

use std::sync::OnceLock;

use minijinja::Environment;

use crate::config::{Config, EmailBackend};
use crate::domain::EmailKind;

pub use console::ConsoleMailer;
#[cfg(any(test, feature = "testing"))]
pub use fake::FakeMailer;
pub use ses::{SEND_TIMEOUT as SES_SEND_TIMEOUT, SesMailer};

/// (kind, subject, text body, HTML body) for each folder in `assets/emails/`, embedded at
/// compile time.
macro_rules! kinds {
    ($($kind:ident => $folder:literal),* $(,)?) => {
        &[$((
            EmailKind::$kind,
            include_str!(concat!("../../../assets/emails/", $folder, "/subject.txt")),
            include_str!(concat!("../../../assets/emails/", $folder, "/body.txt")),
            include_str!(concat!("../../../assets/emails/", $folder, "/body.html")),
        )),*]
    };
}
const KINDS: &[(EmailKind, &str, &str, &str)] = kinds![
    Test => "test",
    VerifyEmail => "verify_email",
    AccountExists => "account_exists",
    PasswordReset => "password_reset",
    // example-app:begin
    Reminder => "reminder",
    // example-app:end
];

const BASE_HTML: &str = include_str!("../../../assets/emails/base.html");

/// A rendered email, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a mailer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The provider's id for a sent message (SES's `MessageId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub provider_message_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, a provider 5xx, a timeout, a network error: the same message may succeed later.
    Transient,
    /// A rejected address or an invalid request: retrying cannot help.
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: FailureKind,
    pub message: String,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }
}

/// Renders `kind` with `context` (plus the globals `site_name` and `site_url`).
pub fn render(
    config: &Config,
    kind: EmailKind,
    context: minijinja::Value,
) -> anyhow::Result<Rendered> {
    let env = environment()?;
    let ctx = minijinja::context! {
        site_name => config.site_name.as_str(),
        site_url => config.site_url.as_str(),
        ..context
    };
    let part = |name: String| -> anyhow::Result<String> {
        env.get_template(&name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| anyhow::anyhow!("rendering email {name}: {e:#}"))
    };
    if !KINDS.iter().any(|(k, ..)| *k == kind) {
        anyhow::bail!("no email templates for kind {kind}");
    }
    let subject = part(format!("{kind}/subject.txt"))?;
    Ok(Rendered {
        // One line: a template's trailing newline (or a stray one) must not reach the header.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text: part(format!("{kind}/body.txt"))?,
        html: part(format!("{kind}/body.html"))?,
    })
}

/// The parsed templates, built once.
fn environment() -> anyhow::Result<&'static Environment<'static>> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // A variable the caller forgot is an error, not an empty link in someone's inbox.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template("base.html", BASE_HTML)
            .map_err(|e| format!("email base.html: {e:#}"))?;
        for (kind, subject, text, html) in KINDS {
            for (part, source) in [
                ("subject.txt", subject),
                ("body.txt", text),
                ("body.html", html),
            ] {
                env.add_template_owned(format!("{kind}/{part}"), *source)
                    .map_err(|e| format!("email {kind}/{part}: {e:#}"))?;
            }
        }
        Ok(env)
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The mailer `EMAIL_BACKEND` names.
#[derive(Clone)]
pub enum Mailer {
    Console(ConsoleMailer),
    Ses(SesMailer),
    /// Scripted outcomes, for tests.
    #[cfg(any(test, feature = "testing"))]
    Fake(FakeMailer),
}

impl Mailer {
    pub async fn from_config(config: &Config) -> Self {
        match config.email_backend {
            EmailBackend::Console => Self::Console(ConsoleMailer::new(&config.default_from_email)),
            EmailBackend::Ses => Self::Ses(SesMailer::new(
                &crate::aws::sdk_config().await,
                &config.default_from_email,
            )),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Console(_) => "console",
            Self::Ses(_) => "ses",
            #[cfg(any(test, feature = "testing"))]
            Self::Fake(_) => "fake",
        }
    }

    pub async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, SendError> {
        match self {
            Self::Console(m) => m.send(email),
            Self::Ses(m) => m.send(email).await,
            #[cfg(any(test, feature = "testing"))]
            Self::Fake(m) => m.send(email).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Profile, Vars};

    fn config() -> Config {
        Config::from_vars(
            &Profile::Lambda,
            &Vars::from_pairs(crate::testing::production_vars()),
        )
        .unwrap()
    }

    #[test]
    fn every_kind_renders_subject_text_and_html() {
        let context = minijinja::context! {
            backend => "console",
            link => "https://app.example.com/verify?token=abc",
            login_link => "https://app.example.com/login",
            reset_link => "https://app.example.com/password-reset",
            valid_hours => 48,
            valid_minutes => 60,
            // example-app:begin
            title => "Yoga",
            location => "Studio 1",
            starts_local => "Saturday 28 November, 09:30 GMT",
            bookings_link => "https://app.example.com/bookings",
            // example-app:end
        };
        for &kind in EmailKind::ALL {
            let rendered =
                render(&config(), kind, context.clone()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(
                !rendered.subject.is_empty() && !rendered.subject.contains('\n'),
                "{kind}"
            );
            assert!(
                rendered.text.contains("https://app.example.com/"),
                "{kind}: site URL in text"
            );
            assert!(
                rendered.html.starts_with("<!doctype html>"),
                "{kind}: uses the layout"
            );
        }
    }

    #[test]
    fn html_parts_escape_their_context_and_text_parts_do_not() {
        let rendered = render(
            &config(),
            EmailKind::Test,
            minijinja::context! { backend => "<script>x</script>" },
        )
        .unwrap();
        assert!(
            rendered.html.contains("&lt;script&gt;"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.text.contains("<script>x</script>"));
    }

    #[test]
    fn an_unknown_kind_or_a_missing_variable_is_an_error() {
        assert_eq!(EmailKind::parse("nope"), None);
        let err = render(&config(), EmailKind::VerifyEmail, minijinja::context! {}).unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }
}
