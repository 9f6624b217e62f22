//! The console mailer: prints each message readably (locally, on the terminal running
//! `cargo run`) and logs it. `/_dev/mail` shows what the outbox sent.

use super::{OutgoingEmail, SendError, SentEmail};

#[derive(Debug, Clone)]
pub struct ConsoleMailer {
    from: String,
    /// Print on stderr rather than stdout.
    stderr: bool,
}

impl ConsoleMailer {
    pub fn new(from: &str) -> Self {
        Self {
            from: from.to_owned(),
            stderr: false,
        }
    }

    /// Prints on stderr, for a command whose stdout is its result alone (`invoke`).
    pub fn on_stderr(self) -> Self {
        Self {
            stderr: true,
            ..self
        }
    }

    pub fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, SendError> {
        let id = format!("console-{}", uuid::Uuid::now_v7());
        let rule = "-".repeat(72);
        let printed = format!(
            "{rule}\nFrom: {}\nTo: {}\nSubject: {}\nMessage-Id: {id}\n\n{}\n{rule}",
            self.from,
            email.to,
            email.subject,
            email.text.trim_end()
        );
        if self.stderr {
            eprintln!("{printed}");
        } else {
            println!("{printed}");
        }
        tracing::info!(
            to = email.to,
            subject = email.subject,
            message_id = id,
            "email printed (console backend)"
        );
        Ok(SentEmail {
            provider_message_id: id,
        })
    }
}
