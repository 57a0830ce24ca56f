//! Native endpoint: an instance's trace. `GET /api/taskinstances/{uuid}/trace/` answers its
//! trace id, the `traceparent` of the span that created it, and a link to the trace in
//! the operator's tracing UI (`api.trace_url`, e.g. Jaeger's
//! `http://jaeger:16686/trace/{trace_id}`). See docs/observability.md.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::io::PathUuid;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn trace(
    State(s): State<AppState>,
    _: Auth,
    PathUuid(id): PathUuid,
) -> ApiResult<Json<Value>> {
    let uuid: uuid::Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let row = s.store.instance(uuid).await?.ok_or(ApiError::NotFound)?;
    let url = match (&s.config.trace_url, &row.trace_id) {
        (Some(template), Some(trace_id)) => Some(template.replace("{trace_id}", trace_id)),
        _ => None,
    };
    Ok(Json(json!({
        "uuid": uuid,
        "trace_id": row.trace_id,
        "traceparent": row.trace_parent,
        "url": url,
    })))
}
