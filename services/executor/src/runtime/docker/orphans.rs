//! Containers whose executor is gone (killed, crashed), found by their labels and
//! removed; and this executor's own containers of instances it no longer runs.

use super::{Engine, LABEL_EXECUTOR, LABEL_INSTANCE, LABEL_PREFIX};
use crate::Shared;
use bollard::query_parameters::ListContainersOptionsBuilder;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Removes containers of this deployment (bus prefix) whose executor is neither this one
/// nor alive (no heartbeat in the executors bucket), and this executor's own containers of
/// instances it is not running (a previous life with the same id). Runs at start-up and
/// then every `orphan_sweep_secs` until `stop`.
pub(crate) async fn reap_orphans(shared: Arc<Shared>, stop: CancellationToken) {
    let Some(engine) = shared.runtimes.docker.as_ref() else {
        return;
    };
    let every = Duration::from_secs(shared.config.docker.orphan_sweep_secs.max(1));
    loop {
        match reap_once(&shared, engine).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed orphan containers"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "sweep orphan containers"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn reap_once(shared: &Arc<Shared>, engine: &Engine) -> anyhow::Result<usize> {
    let filters = HashMap::from([(
        "label",
        vec![format!("{LABEL_PREFIX}={}", shared.bus.names.prefix())],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = engine.docker.list_containers(Some(options)).await?;
    if containers.is_empty() {
        return Ok(0);
    }
    let kv = shared.bus.executors_kv().await?;
    let running = shared.registry.running();
    let mut alive: HashMap<String, bool> = HashMap::new();
    let mut removed = 0;
    for c in containers {
        let Some(id) = c.id else { continue };
        let labels = c.labels.unwrap_or_default();
        let owner = labels.get(LABEL_EXECUTOR).cloned().unwrap_or_default();
        let instance = labels.get(LABEL_INSTANCE).cloned().unwrap_or_default();
        let orphan = if owner == shared.id {
            !running.iter().any(|u| u.to_string() == instance)
        } else {
            let is_alive = match alive.get(&owner) {
                Some(a) => *a,
                None => {
                    // Not knowing is not "gone": a failed read ends this sweep, and the
                    // next one looks again.
                    let a = kv.get(&owner).await?.is_some();
                    alive.insert(owner.clone(), a);
                    a
                }
            };
            !is_alive
        };
        if orphan {
            tracing::info!(container = %id, %instance, executor = %owner, "removing orphan container");
            engine.remove(&id).await;
            removed += 1;
        }
    }
    Ok(removed)
}
