//! Domain types: parsed once from raw input, valid for their whole life. No SQL, no HTTP.

// example-app:begin
pub mod classes;

// example-app:end
use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Why a value was refused; shown to the user next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// Refuses control characters in text a person typed: a NUL, which PostgreSQL cannot store in
/// `text` (SQLite would, so the two databases would disagree), and in a one-line field a CR or
/// LF, which turns into a forged header or log line when the text reaches an email subject or a
/// log. Multi-line fields (`multi_line`) keep newlines and tabs.
pub fn check_text(value: &str, multi_line: bool) -> Result<(), Invalid> {
    let allowed = |c: char| multi_line && matches!(c, '\n' | '\r' | '\t');
    match value.chars().find(|&c| c.is_control() && !allowed(c)) {
        None => Ok(()),
        Some('\n' | '\r') => Err(invalid("use a single line (no line breaks)")),
        Some(c) => Err(invalid(format!(
            "remove the control character U+{:04X}",
            u32::from(c)
        ))),
    }
}

/// A syntactically valid email address, normalised to lower case so that uniqueness and
/// look-ups are case-insensitive everywhere (the database also has a unique `lower(email)`
/// index as a second guard).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let address = raw.trim().to_lowercase();
        if address.is_empty() {
            return Err(invalid("enter an email address"));
        }
        if address.len() > 254 {
            return Err(invalid("an email address has at most 254 characters"));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(invalid(
                "an email address needs an @, like name@example.com",
            ));
        };
        let forbidden = |c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '\\' | '"' | '@'
                )
        };
        if local.is_empty() || local.len() > 64 || local.chars().any(forbidden) {
            return Err(invalid(format!("{raw:?} is not a valid email address")));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid(format!(
                "{raw:?} is not a valid email address: the part after @ must be a domain like example.com"
            )));
        }
        Ok(Self(address))
    }

    /// An address read back from the database, where only parsed addresses are written.
    pub(crate) fn from_stored(address: String) -> Self {
        Self(address)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that meets the policy. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Generous (passphrases), but bounded so hashing cannot be used to burn CPU.
    pub const MAX_CHARS: usize = 1024;

    /// Checks the policy. `email` is the account's address: a password equal to it (or to its
    /// local part) is refused.
    pub fn parse(raw: &str, email: Option<&EmailAddress>) -> Result<Self, Invalid> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(invalid(format!(
                "use at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if chars > Self::MAX_CHARS {
            return Err(invalid(format!(
                "use at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if raw.trim().is_empty() {
            return Err(invalid("a password cannot be only spaces"));
        }
        if let Some(email) = email {
            let lower = raw.to_lowercase();
            let local = email.as_str().split('@').next().unwrap_or_default();
            if lower == email.as_str() || lower == local {
                return Err(invalid("the password must not be your email address"));
            }
        }
        let distinct = raw.chars().collect::<HashSet<_>>().len();
        if distinct < 3 {
            return Err(invalid("the password is too easy to guess"));
        }
        if is_common_password(raw) {
            return Err(invalid(
                "this password is one of the 10,000 most common; choose another",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The 10,000 most common passwords (`assets/common-passwords.txt`), compared ignoring case.
fn is_common_password(raw: &str) -> bool {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let common = COMMON.get_or_init(|| {
        include_str!("../../../assets/common-passwords.txt")
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .collect()
    });
    common.contains(raw.to_lowercase().as_str())
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// An account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: EmailAddress,
    /// `None` for an account that cannot log in with a password.
    pub password_hash: Option<String>,
    pub is_verified: bool,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// An API token as its owner sees it (never the token itself, which is shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// `None`: valid until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What the `emails` outbox row is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// Written; waiting for (another) delivery attempt.
    Pending,
    /// Claimed by a worker that is sending it now.
    Sending,
    Sent,
    /// Permanently refused by the provider; not retried.
    Failed,
}

impl EmailStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Sending, Self::Sent, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Which email an outbox row holds: each kind has its templates in `assets/emails/<kind>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// `sendtestemail`'s message.
    Test,
    VerifyEmail,
    /// Sent instead of a verification when someone signs up with a taken address.
    AccountExists,
    PasswordReset,
    // example-app:begin
    /// A booked class starts soon.
    Reminder,
    // example-app:end
}

impl EmailKind {
    pub const ALL: &[Self] = &[
        Self::Test,
        Self::VerifyEmail,
        Self::AccountExists,
        Self::PasswordReset,
        // example-app:begin
        Self::Reminder,
        // example-app:end
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::VerifyEmail => "verify_email",
            Self::AccountExists => "account_exists",
            Self::PasswordReset => "password_reset",
            // example-app:begin
            Self::Reminder => "reminder",
            // example-app:end
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == raw)
    }
}

/// Shown, compared and handed to templates as their stored names (`sent`, `verify_email`).
macro_rules! named_by_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl From<$ty> for minijinja::Value {
            fn from(value: $ty) -> Self {
                Self::from(value.as_str())
            }
        }

        impl From<&$ty> for minijinja::Value {
            fn from(value: &$ty) -> Self {
                Self::from(value.as_str())
            }
        }
    )*};
}
named_by_str!(EmailStatus, EmailKind);

/// What a one-time email token proves when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_line_breaks_only_in_multi_line_text() {
        let cases: &[(&str, bool, bool, &str)] = &[
            ("Yoga", false, true, "plain text"),
            ("Café – 9:30 ✓", false, true, "non-ASCII text"),
            ("a\r\nBcc: x@evil.tld", false, false, "CRLF in one line"),
            ("a\nb", false, false, "LF in one line"),
            ("a\tb", false, false, "tab in one line"),
            ("a\0b", false, false, "NUL in one line"),
            (
                "a\nb\r\nc\td",
                true,
                true,
                "line breaks and tabs in multi-line",
            ),
            ("a\0b", true, false, "NUL in multi-line"),
            ("a\u{1b}[31mb", true, false, "escape in multi-line"),
            ("a\u{7f}b", false, false, "DEL"),
        ];
        for &(value, multi_line, ok, case) in cases {
            assert_eq!(check_text(value, multi_line).is_ok(), ok, "{case}");
        }
        assert_eq!(
            check_text("a\0", true).unwrap_err().0,
            "remove the control character U+0000"
        );
    }

    #[test]
    fn email_addresses_are_trimmed_and_lower_cased() {
        let email = EmailAddress::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_email_addresses_are_refused() {
        let cases = [
            ("", "empty"),
            ("plainaddress", "no @"),
            ("@example.com", "no local part"),
            ("user@", "no domain"),
            ("user@localhost", "domain without a dot"),
            ("user@exa mple.com", "space in domain"),
            ("us er@example.com", "space in local part"),
            ("user@-example.com", "label starts with a hyphen"),
            ("user@example..com", "empty label"),
            ("a<b>@example.com", "angle brackets"),
            (
                "user@example.com\n",
                "trailing newline is trimmed, so this one passes",
            ),
        ];
        for (raw, why) in cases {
            let result = EmailAddress::parse(raw);
            if why.contains("passes") {
                assert!(result.is_ok(), "{why}: {raw:?}");
            } else {
                assert!(result.is_err(), "{why}: {raw:?} was accepted");
            }
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long).is_err(), "local part over 64");
    }

    #[test]
    fn password_policy_refuses_weak_passwords_with_a_reason() {
        let email = EmailAddress::parse("ada.lovelace@example.com").unwrap();
        let cases = [
            ("short", "at least 8"),
            ("ada.lovelace@example.com", "email address"),
            ("ADA.LOVELACE@EXAMPLE.COM", "email address"),
            ("Ada.Lovelace", "email address"),
            ("aaaaaaaaaaaa", "too easy"),
            ("           ", "only spaces"),
            ("password1", "most common"),
            ("Sunshine", "most common"),
            ("iloveyou", "most common"),
        ];
        for (raw, expected) in cases {
            let err = Password::parse(raw, Some(&email)).unwrap_err();
            assert!(err.0.contains(expected), "{raw:?}: got {err}");
        }
        assert!(Password::parse(&"x".repeat(Password::MAX_CHARS + 1), None).is_err());
    }

    #[test]
    fn long_passphrases_are_accepted_and_never_truncated() {
        let long = "correct horse battery staple ".repeat(3);
        let password = Password::parse(&long, None).unwrap();
        assert_eq!(password.expose(), long);
        assert!(!format!("{password:?}").contains("horse"));
    }
}
