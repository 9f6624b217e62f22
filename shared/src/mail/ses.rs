//! Amazon SES v2 `SendEmail`.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::{FailureKind, OutgoingEmail, SendError, SentEmail};

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

/// The longest one `SendEmail` call may take, connecting included. A batch sends its records
/// concurrently, so this bounds the whole batch's sending well inside the worker's 30 s Lambda
/// timeout; a call cut short is a transient failure, retried by SQS like any other.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl SesMailer {
    /// A client for `sdk`'s region, credentials and endpoint, making one attempt per send.
    ///
    /// The SDK's own retries are off (for SES only; SQS keeps the shared configuration): the
    /// outbox and SQS redelivery are the retry mechanism. Each worker attempt is then exactly
    /// one call to SES, so a row's `attempts` counts what SES saw, SQS's backoff (the
    /// visibility timeout) spaces the retries instead of the SDK's sub-second backoff inside
    /// one invocation, and a throttled send gives its Lambda back at once instead of sleeping
    /// through three attempts.
    pub fn new(sdk: &SdkConfig, from: &str) -> Self {
        let config = aws_sdk_sesv2::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(SEND_TIMEOUT)
                    .build(),
            )
            .build();
        Self {
            client: Client::from_conf(config),
            from: from.to_owned(),
        }
    }

    pub async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, SendError> {
        let content = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| SendError::permanent(format!("building the message: {e}")))
        };
        let mut body = Body::builder().text(content(&email.text)?);
        if let Some(html) = &email.html {
            body = body.html(content(html)?);
        }
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(body.build())
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(classify)?;
        let id = output.message_id().ok_or_else(|| {
            SendError::transient("SES accepted the message but returned no MessageId")
        })?;
        Ok(SentEmail {
            provider_message_id: id.to_owned(),
        })
    }
}

/// Transient: the same message may go through later. Permanent: it never will.
fn classify(
    error: SdkError<SendEmailError, aws_sdk_sesv2::config::http::HttpResponse>,
) -> SendError {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let kind = match &error {
        SdkError::ServiceError(service) => match service.err() {
            // Throttling, the daily quota, sending paused or the account suspended: problems of
            // the account or the moment, not of this message. Retried until the outbox gives up.
            SendEmailError::TooManyRequestsException(_)
            | SendEmailError::LimitExceededException(_)
            | SendEmailError::SendingPausedException(_)
            | SendEmailError::AccountSuspendedException(_) => FailureKind::Transient,
            // The address or the request itself is refused.
            SendEmailError::MessageRejected(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::BadRequestException(_)
            | SendEmailError::NotFoundException(_) => FailureKind::Permanent,
            _ => match status {
                Some(s) if s == 429 || s >= 500 => FailureKind::Transient,
                Some(s) if (400..500).contains(&s) => FailureKind::Permanent,
                _ => FailureKind::Transient,
            },
        },
        // Could not build the request: it will not build next time either.
        SdkError::ConstructionFailure(_) => FailureKind::Permanent,
        // Timeouts, connection failures, unreadable responses.
        _ => FailureKind::Transient,
    };
    let code = error.code().unwrap_or("");
    let message = error.message().map(str::to_owned).unwrap_or_else(|| {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    });
    SendError {
        kind,
        message: format!(
            "SES {}{}{message}",
            if code.is_empty() { "" } else { code },
            if code.is_empty() { "" } else { ": " }
        ),
    }
}
