//! What Lambda shows for a failed invocation. lambda_runtime 1.5 names a failure after its
//! Rust type (`std::any::type_name`), so a handler returning `lambda_runtime::Error` shows up in
//! the console, the `/error` report and the logs as
//! `&alloc::boxed::Box<dyn core::error::Error + Send + Sync>`. Every function's handler turns its
//! errors into a [`Diagnostic`] here instead, under a name alarms and people can read, and
//! reads its event itself ([`event`]) so that the wrong event is one of those failures too.
//!
//! What keeps the runtime's own names: a payload that is not JSON at all (Lambda's Invoke API
//! refuses one before it reaches a function, so only a hand-made test can send it) and a panic.

use std::fmt::Display;

pub use lambda_runtime::Diagnostic;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// The `errorType` of an event the function does not take: another source's event, a field of
/// the wrong type, a CloudFormation request without the fields an answer needs.
pub const INVALID_EVENT: &str = "InvalidEvent";
/// The `errorType` of any other failure of a handler on its event.
pub const HANDLER_ERROR: &str = "HandlerError";

/// A failure named `error_type`; the message is the error with its causes (`{:#}`).
pub fn failure(error_type: &str, error: impl Display) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: format!("{error:#}"),
    }
}

/// A [`HANDLER_ERROR`].
pub fn handler_error(error: impl Display) -> Diagnostic {
    failure(HANDLER_ERROR, error)
}

/// An [`INVALID_EVENT`].
pub fn invalid_event(error: impl Display) -> Diagnostic {
    failure(INVALID_EVENT, error)
}

/// The event as `T`, or an [`INVALID_EVENT`] saying it is not `what` ("an SQS event"). The
/// handlers take the payload as [`RawValue`] (checked JSON, not yet parsed) and call this, rather
/// than letting the runtime parse `T` and name its failure after a private type.
pub fn event<T: DeserializeOwned>(payload: &RawValue, what: &str) -> Result<T, Diagnostic> {
    serde_json::from_str(payload.get()).map_err(|e| invalid_event(format_args!("not {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn errors_get_a_readable_type_and_their_whole_message() {
        let cases = [
            (
                handler_error("the database refused the connection"),
                HANDLER_ERROR,
                "the database refused the connection",
            ),
            (
                invalid_event("the event names no job"),
                INVALID_EVENT,
                "the event names no job",
            ),
            (
                failure("UnknownJob", "unknown job \"x\""),
                "UnknownJob",
                "unknown job \"x\"",
            ),
        ];
        for (diagnostic, error_type, message) in cases {
            assert_eq!(diagnostic.error_type, error_type, "{message}");
            assert_eq!(diagnostic.error_message, message);
        }
    }

    #[test]
    fn an_error_keeps_its_causes_in_the_message() {
        let io = std::io::Error::other("connection reset");
        let error = anyhow::Error::new(io).context("sending the answer");
        assert_eq!(
            handler_error(error).error_message,
            "sending the answer: connection reset"
        );
    }

    #[test]
    fn an_event_of_the_wrong_shape_is_an_invalid_event_naming_what_was_expected() {
        #[derive(Debug, serde::Deserialize)]
        struct Batch {
            records: Vec<u32>,
        }
        let batch: Batch = event(&raw(r#"{"records": [1]}"#), "a batch").unwrap();
        assert_eq!(batch.records, [1]);
        let wrong = event::<Batch>(&raw(r#"{"records": "none"}"#), "a batch").unwrap_err();
        assert_eq!(wrong.error_type, INVALID_EVENT);
        assert!(
            wrong
                .error_message
                .starts_with("not a batch: invalid type: string \"none\""),
            "{}",
            wrong.error_message
        );
    }
}
