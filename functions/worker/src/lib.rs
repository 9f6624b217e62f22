//! The worker function: handles batches of SQS messages (the old worker tier).
//!
//! Not built yet (the worker-tier issue): until then every event fails, loudly, so a
//! deployment never deletes a message it did not handle.

use serde_json::Value;

/// Handles one Lambda event. Today: refuses it.
pub async fn handle_event(event: Value) -> anyhow::Result<Value> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    tracing::error!(records, "worker received an event but has no handlers yet");
    anyhow::bail!("the worker cannot handle messages yet: {records} record(s) left on the queue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_event_fails_until_the_worker_is_built() {
        let event = serde_json::json!({"Records": [{"messageId": "1", "body": "{}"}]});
        let err = handle_event(event).await.unwrap_err();
        assert!(err.to_string().contains("1 record(s)"), "{err}");
        assert!(handle_event(Value::Null).await.is_err());
    }
}
