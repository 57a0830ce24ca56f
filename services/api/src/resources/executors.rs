//! Native endpoint: the fleet. `GET /api/executors/` answers the executors alive now (their
//! latest heartbeats: host, queues, slots, running instances, capabilities, engine
//! versions, version, time) and each queue's unfinished instances with the age of the
//! oldest waiting one. The web UI's fleet page shows the same (docs/ui.md).

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use saltant_bus::Heartbeat;
use saltant_core::State as InstanceState;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One queue's unfinished instances.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct QueueDepth {
    pub queue: String,
    /// `created` and `published`.
    pub waiting: i64,
    pub running: i64,
    /// Seconds since the oldest waiting instance was created (0 when none waits).
    pub oldest_waiting_secs: f64,
}

pub(crate) struct Fleet {
    /// By host, then executor id.
    pub executors: Vec<(String, Heartbeat)>,
    /// Alive, with a heartbeat this version cannot read (a newer wire version).
    pub unreadable: Vec<String>,
    /// By queue name.
    pub queues: Vec<QueueDepth>,
}

/// The heartbeats in the bus and the scheduler's gauges' query, at once.
pub(crate) async fn fleet(s: &AppState) -> ApiResult<Fleet> {
    let (beats, counts) = tokio::join!(s.bus.heartbeats(), s.store.instance_counts());
    let (beats, mut unreadable) = beats?;
    let mut executors: Vec<(String, Heartbeat)> = beats.into_iter().collect();
    executors.sort_by(|a, b| a.1.host.cmp(&b.1.host).then(a.0.cmp(&b.0)));
    unreadable.sort();
    let mut depth: BTreeMap<String, QueueDepth> = BTreeMap::new();
    for c in counts? {
        let d = depth.entry(c.queue_name.clone()).or_default();
        d.queue = c.queue_name;
        match c.state {
            InstanceState::Running => d.running += c.n,
            _ => {
                d.waiting += c.n;
                d.oldest_waiting_secs = d.oldest_waiting_secs.max(c.oldest_secs);
            }
        }
    }
    Ok(Fleet {
        executors,
        unreadable,
        queues: depth.into_values().collect(),
    })
}

/// `GET /api/executors/` (any signed-in user).
pub async fn list(State(s): State<AppState>, _: Auth) -> ApiResult<Json<Value>> {
    let f = fleet(&s).await?;
    let executors: Vec<Value> = f
        .executors
        .iter()
        .map(|(id, b)| {
            json!({
                "id": id,
                "host": b.host,
                "queues": b.queues,
                "slots": b.slots,
                "slots_free": b.slots.saturating_sub(b.running.len() as u32),
                "running": b.running,
                "capabilities": b.capabilities,
                "engines": b.engines,
                "version": b.version,
                "started_at": b.started_at,
                "at": b.at,
            })
        })
        .collect();
    Ok(Json(json!({
        "executors": executors,
        "unreadable": f.unreadable,
        "queues": f.queues,
    })))
}
