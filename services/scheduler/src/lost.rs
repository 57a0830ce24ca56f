//! Lost executors and queue time-outs (singleton duty, under the lease). A running
//! instance whose executor has no heartbeat any more (the executors bucket forgets an
//! executor 15 s after its last beat), or whose executor restarted without it, gets a
//! `failed` event for its attempt, recorded like any other: retried if its policy allows,
//! final otherwise. Events of the lost attempt that arrive later are fenced by the attempt.
//! Instances waiting longer than their queue time-out fail without retry.

use crate::{Ctx, next_turn, report};
use saltant_bus::{Bus, Event, Heartbeat, trace};
use saltant_core::State;
use saltant_store::Store;
use saltant_store::instances::RunningInstance;
use std::collections::HashMap;
use tracing::Instrument;

pub(crate) async fn run(ctx: Ctx) {
    while next_turn(ctx.config.lost_check_every_secs, &ctx.lease, &ctx.stop).await {
        report(
            check_lost(&ctx.bus, &ctx.store).await,
            "failed instances of lost executors",
            "check for lost executors",
        );
        report(
            check_queue_timeouts(&ctx.bus, &ctx.store).await,
            "failed instances past their queue time-out",
            "check queue time-outs",
        );
    }
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
async fn already_finished(bus: &Bus, r: &RunningInstance) -> Result<bool, saltant_bus::Error> {
    Ok(bus
        .last_event(&r.queue_name, r.uuid)
        .await?
        .is_some_and(|e| e.attempt == r.attempt as u32 && e.state.is_final()))
}

async fn publish_failed(
    bus: &Bus,
    r: &RunningInstance,
    reason: String,
    no_retry: bool,
) -> anyhow::Result<()> {
    let mut event = Event::new(
        r.uuid,
        r.queue_name.clone(),
        r.attempt as u32,
        State::Failed,
    );
    event.executor = r.executor.clone();
    event.reason = Some(reason);
    event.no_retry = no_retry;
    let span = tracing::info_span!("fail attempt", instance = %r.uuid, attempt = r.attempt, reason = ?event.reason, otel.status_code = "ERROR");
    trace::set_parent_traceparent(&span, r.trace_parent.as_deref());
    async {
        bus.publish_event(&event).await?.await?;
        Ok::<_, anyhow::Error>(())
    }
    .instrument(span)
    .await
}

async fn check_lost(bus: &Bus, store: &Store) -> anyhow::Result<usize> {
    let running = store.running_instances().await?;
    if running.is_empty() {
        return Ok(0);
    }
    let (alive, unreadable) = bus.heartbeats().await?;
    for executor in &unreadable {
        tracing::warn!(%executor, "heartbeat does not decode (another version?); its instances are left to it");
    }
    // An instance that has only just started may not be in a heartbeat yet.
    let settled = chrono::Utc::now() - chrono::Duration::seconds(5);
    let mut n = 0;
    for r in running {
        if r.datetime_started.is_some_and(|s| s > settled)
            || r.executor.as_ref().is_some_and(|e| unreadable.contains(e))
        {
            continue;
        }
        let Some(reason) = lost_reason(&r, &alive) else {
            continue;
        };
        // Not knowing is not finding nothing: such an instance waits for the next check.
        match already_finished(bus, &r).await {
            Ok(false) => {}
            Ok(true) => continue,
            Err(e) => {
                tracing::warn!(instance = %r.uuid, error = %format!("{e:#}"), "read the events stream; checking again later");
                continue;
            }
        }
        tracing::warn!(instance = %r.uuid, attempt = r.attempt, %reason, "instance lost");
        publish_failed(bus, &r, reason, false).await?;
        n += 1;
    }
    Ok(n)
}

async fn check_queue_timeouts(bus: &Bus, store: &Store) -> anyhow::Result<usize> {
    let waiting = store.queue_timeouts(1000).await?;
    let mut n = 0;
    for r in waiting {
        publish_failed(
            bus,
            &r,
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
    use saltant_core::QueueName;
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
            queue_name: QueueName::parse("q").expect("valid"),
            datetime_started: Some(now - chrono::Duration::seconds(60)),
            trace_parent: None,
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
