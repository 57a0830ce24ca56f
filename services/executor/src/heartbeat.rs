//! Heartbeats: this executor's entry in the executors bucket, refreshed on its own task so
//! that slow runs or log shipping never delay it.

use crate::Shared;
use chrono::Utc;
use saltant_bus::{Heartbeat, WIRE_VERSION};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let started_at = shared.started_at;
    let mut tick = tokio::time::interval(Duration::from_secs(shared.config.heartbeat_secs.max(1)));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.observe_slots();
        let running = shared.registry.running();
        let (capabilities, engines) = shared.runtimes.capabilities();
        let beat = Heartbeat {
            v: WIRE_VERSION,
            executor: shared.id.clone(),
            host: crate::hostname(),
            queues: shared.config.queues.clone(),
            slots: shared.config.slots,
            running,
            capabilities,
            engines,
            version: env!("CARGO_PKG_VERSION").into(),
            started_at,
            at: Utc::now(),
        };
        if let Err(e) = shared.bus.put_heartbeat(&beat).await {
            tracing::warn!(error = %format!("{e:#}"), "put heartbeat");
        }
    }
}
