//! The scheduler function: runs the job an EventBridge schedule names (the old cron.yaml).
//!
//! Not built yet (the classes and scheduler issue): until then every event fails, loudly, so
//! a schedule's failure alarm fires rather than a job silently not running.

use serde_json::Value;

/// Handles one Lambda event. Today: refuses it.
pub async fn handle_event(event: Value) -> anyhow::Result<Value> {
    let job = event
        .get("job")
        .or_else(|| event.pointer("/detail/job"))
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_owned();
    tracing::error!(job, "scheduler received an event but has no jobs yet");
    anyhow::bail!("the scheduler cannot run jobs yet (asked for {job})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_event_fails_until_the_scheduler_is_built() {
        let err = handle_event(serde_json::json!({"job": "sweep-outbox"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("sweep-outbox"), "{err}");
        assert!(handle_event(Value::Null).await.is_err());
    }
}
