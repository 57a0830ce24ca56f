//! `PATCH /api/updatetaskinstancestatus/{uuid}/`: the original worker's status callback,
//! kept for old workers and scripts. Unlike the original, the state must be one of the six
//! and may only move forward (a finished instance stays finished); the change is written
//! to PostgreSQL with the same compare-and-set as the scheduler's, then published on the
//! events stream for subscribers.

use super::inputs::{StatusInput, StatusOutput};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::io::{Input, PathUuid};
use axum::Json;
use axum::extract::State;
use saltant_bus::Event;
use saltant_core::{QueueName, State as RunState};
use saltant_store::instances::{RetryPolicy, StateChange};
use serde_json::Value;
use uuid::Uuid;

fn unknown(id: &str) -> ApiError {
    // The original's answer: 400 with a bare JSON string.
    ApiError::BadRequest(Value::String(format!(
        "No task instance with UUID {id} found"
    )))
}

#[tracing::instrument(skip_all, fields(instance = %id))]
pub async fn update(
    State(s): State<AppState>,
    user: Auth,
    PathUuid(id): PathUuid,
    Input(p, _): Input<StatusInput>,
) -> ApiResult<Json<StatusOutput>> {
    let uuid: Uuid = id.parse().map_err(|_| unknown(&id))?;
    let row = s.store.instance(uuid).await?.ok_or_else(|| unknown(&id))?;
    user.may_change(row.user_id)?;
    let choices: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
    let mut f = Fields::new(&p, false);
    let wanted = f.choice("state", &choices);
    f.finish()?;
    let wanted: RunState = wanted
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("validated state missing")))?;
    let current = row.state;
    let body = StatusOutput {
        uuid: row.uuid.to_string(),
        state: wanted.as_str(),
    };
    if current == wanted {
        return Ok(Json(body));
    }
    let refuse = |from: RunState| {
        ApiError::field(
            "state",
            format!("Cannot change state from \"{from}\" to \"{wanted}\"."),
        )
    };
    if !current.can_become(wanted) {
        return Err(refuse(current));
    }
    let change = StateChange {
        uuid: row.uuid,
        attempt: row.attempt,
        state: wanted,
        at: chrono::Utc::now(),
        executor: None,
        exit_code: None,
        reason: Some(format!(
            "reported by {} through the status endpoint",
            user.0.username
        )),
        // A report is what happened: never turned into a retry.
        no_retry: true,
        results_digest: None,
        queue: None,
    };
    if s.store
        .apply_state_changes(std::slice::from_ref(&change), RetryPolicy::default())
        .await?
        .changed
        == 0
    {
        // Someone else moved it meanwhile.
        let now = s.store.instance(uuid).await?.ok_or_else(|| unknown(&id))?;
        if now.state != wanted {
            return Err(refuse(now.state));
        }
        return Ok(Json(body));
    }
    publish(&s, row.queue_name, change).await;
    Ok(Json(body))
}

/// Tells event subscribers; the record is already written, so the scheduler skips it.
async fn publish(s: &AppState, queue: QueueName, c: StateChange) {
    let mut event = Event::new(c.uuid, queue, c.attempt as u32, c.state);
    event.at = c.at;
    event.reason = c.reason;
    let sent = async {
        s.bus.publish_recorded_event(&event).await?.await?;
        Ok::<_, anyhow::Error>(())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), sent).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "publish status event"),
        Err(_) => tracing::warn!("publish status event: timed out"),
    }
}
