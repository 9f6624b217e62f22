//! The console mailer: prints each message readably (locally, on the terminal running
//! `cargo run`) and logs it. `/_dev/mail` shows what the outbox sent.

use super::{OutgoingEmail, SendError, SentEmail};

#[derive(Debug, Clone)]
pub struct ConsoleMailer {
    from: String,
}

impl ConsoleMailer {
    pub fn new(from: &str) -> Self {
        Self {
            from: from.to_owned(),
        }
    }

    pub fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, SendError> {
        let id = format!("console-{}", uuid::Uuid::now_v7());
        let rule = "-".repeat(72);
        println!(
            "{rule}\nFrom: {}\nTo: {}\nSubject: {}\nMessage-Id: {id}\n\n{}\n{rule}",
            self.from,
            email.to,
            email.subject,
            email.text.trim_end()
        );
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
