//! Lost executors and queue time-outs (singleton duty, under the lease). A running
//! instance whose executor has no heartbeat any more (the executors bucket forgets an
//! executor 15 s after its last beat), or whose executor restarted without it, gets a
//! `failed` event for its attempt, recorded like any other: retried if its policy allows,
//! final otherwise. Events of the lost attempt that arrive later are fenced by the attempt.
//! Instances waiting longer than their queue time-out fail without retry.

use crate::lease::Lease;
use crate::{Config, pause};
use futures::StreamExt;
use saltant_bus::{Bus, Event, Heartbeat, trace};
use saltant_core::{QueueName, State};
use saltant_store::Store;
use saltant_store::instances::RunningInstance;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(
    bus: Bus,
    store: Store,
    config: Config,
    lease: Lease,
    stop: CancellationToken,
) {
    let every = Duration::from_secs(config.lost_check_every_secs.max(1));
    loop {
        if pause(&stop, every).await {
            return;
        }
        if !lease.held() {
            continue;
        }
        match check_lost(&bus, &store).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(lost = n, "failed instances of lost executors"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "check for lost executors"),
        }
        match check_queue_timeouts(&bus, &store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(timed_out = n, "failed instances past their queue time-out"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "check queue time-outs"),
        }
    }
}

async fn live_executors(bus: &Bus) -> anyhow::Result<HashMap<String, Heartbeat>> {
    let kv = bus.executors_kv().await?;
    let mut keys = kv.keys().await?;
    let mut alive = HashMap::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if let Some(value) = kv.get(&key).await?
            && let Ok(hb) = Heartbeat::decode(&value)
        {
            alive.insert(key, hb);
        }
    }
    Ok(alive)
}

/// Why `r` is lost, if it is.
fn lost_reason(r: &RunningInstance, alive: &HashMap<String, Heartbeat>) -> Option<String> {
    let Some(executor) = &r.executor else {
        return Some("running with no executor recorded".into());
    };
    match alive.get(executor) {
        None => Some(format!(
            "executor {executor} stopped answering (no heartbeat)"
        )),
        Some(hb) => {
            let restarted = r.datetime_started.is_some_and(|s| hb.started_at > s);
            (restarted && !hb.running.contains(&r.uuid))
                .then(|| format!("executor {executor} restarted without it"))
        }
    }
}

/// Whether the events stream already holds a final event of this attempt (not recorded
/// yet): then the executor finished before it went away, and that outcome stands.
async fn already_finished(
    bus: &Bus,
    r: &RunningInstance,
    queue: &QueueName,
) -> Result<bool, saltant_bus::Error> {
    Ok(bus
        .last_event(queue, r.uuid)
        .await?
        .is_some_and(|e| e.attempt == r.attempt as u32 && e.state.is_final()))
}

async fn publish_failed(
    bus: &Bus,
    r: &RunningInstance,
    queue: QueueName,
    reason: String,
    no_retry: bool,
) -> anyhow::Result<()> {
    let mut event = Event::new(r.uuid, queue, r.attempt as u32, State::Failed);
    event.executor = r.executor.clone();
    event.reason = Some(reason);
    event.no_retry = no_retry;
    bus.send_event(&event, trace::headers()).await?.await?;
    Ok(())
}

async fn check_lost(bus: &Bus, store: &Store) -> anyhow::Result<usize> {
    let running = store.running_instances().await?;
    if running.is_empty() {
        return Ok(0);
    }
    let alive = live_executors(bus).await?;
    // An instance that has only just started may not be in a heartbeat yet.
    let settled = chrono::Utc::now() - chrono::Duration::seconds(5);
    let mut n = 0;
    for r in running {
        if r.datetime_started.is_some_and(|s| s > settled) {
            continue;
        }
        let Some(reason) = lost_reason(&r, &alive) else {
            continue;
        };
        let Ok(queue) = QueueName::parse(&r.queue_name) else {
            continue;
        };
        // Not knowing is not finding nothing: such an instance waits for the next check.
        match already_finished(bus, &r, &queue).await {
            Ok(false) => {}
            Ok(true) => continue,
            Err(e) => {
                tracing::warn!(instance = %r.uuid, error = %format!("{e:#}"), "read the events stream; checking again later");
                continue;
            }
        }
        tracing::warn!(instance = %r.uuid, attempt = r.attempt, %reason, "instance lost");
        publish_failed(bus, &r, queue, reason, false).await?;
        n += 1;
    }
    Ok(n)
}

async fn check_queue_timeouts(bus: &Bus, store: &Store) -> anyhow::Result<usize> {
    let waiting = store.queue_timeouts(1000).await?;
    let mut n = 0;
    for r in waiting {
        let Ok(queue) = QueueName::parse(&r.queue_name) else {
            continue;
        };
        publish_failed(
            bus,
            &r,
            queue,
            "not started within its queue time-out".into(),
            true,
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    fn beat(started: chrono::DateTime<Utc>, running: Vec<Uuid>) -> Heartbeat {
        Heartbeat {
            v: 1,
            executor: "e1".into(),
            host: "h".into(),
            queues: vec![],
            slots: 1,
            running,
            capabilities: vec![],
            engines: Default::default(),
            version: "0".into(),
            started_at: started,
            at: Utc::now(),
        }
    }

    #[test]
    fn lost_means_no_heartbeat_or_restarted_without_it() {
        let now = Utc::now();
        let r = RunningInstance {
            uuid: Uuid::new_v4(),
            attempt: 1,
            executor: Some("e1".into()),
            queue_name: "q".into(),
            datetime_started: Some(now - chrono::Duration::seconds(60)),
        };
        let mut alive = HashMap::new();
        assert!(lost_reason(&r, &alive).is_some_and(|m| m.contains("no heartbeat")));
        // Alive since before the instance started: fine, listed or not (heartbeats lag).
        alive.insert(
            "e1".into(),
            beat(now - chrono::Duration::seconds(600), vec![]),
        );
        assert_eq!(lost_reason(&r, &alive), None);
        // Restarted after the instance started and does not run it: lost.
        alive.insert("e1".into(), beat(now, vec![]));
        assert!(lost_reason(&r, &alive).is_some_and(|m| m.contains("restarted")));
        // Restarted but still runs it (adopted): fine.
        alive.insert("e1".into(), beat(now, vec![r.uuid]));
        assert_eq!(lost_reason(&r, &alive), None);
    }
}
