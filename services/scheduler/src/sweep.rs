//! The sweep: instances still `created` long after the api answered for them were never
//! seen by the bus (NATS was down, or the api died between commit and publish). They are
//! submitted again; the dispatcher's state check makes a repeat harmless.

use crate::{Config, pause};
use async_nats::jetstream;
use saltant_bus::{Bus, Submission, Termination, WIRE_VERSION};
use saltant_core::QueueName;
use saltant_store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(
    bus: Bus,
    store: Store,
    config: Config,
    lease: crate::lease::Lease,
    stop: CancellationToken,
) {
    let every = Duration::from_secs(config.sweep_every_secs.max(1));
    loop {
        if pause(&stop, every).await {
            return;
        }
        if !lease.held() {
            continue;
        }
        match sweep(&bus, &store, &config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(resubmitted = n, "swept instances the bus had not seen"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "sweep"),
        }
        match repeat_terminations(&bus, &store, &config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(repeated = n, "repeated unconfirmed termination requests"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "sweep terminations"),
        }
    }
}

async fn sweep(bus: &Bus, store: &Store, config: &Config) -> anyhow::Result<usize> {
    let before = chrono::Utc::now() - chrono::Duration::seconds(config.resubmit_after_secs as i64);
    let pending = store.pending_instances(before, 1000).await?;
    let mut acks = Vec::with_capacity(pending.len());
    for p in &pending {
        let Ok(queue) = QueueName::parse(&p.queue_name) else {
            tracing::error!(instance = %p.uuid, queue = %p.queue_name, "instance has an invalid queue name");
            continue;
        };
        let s = Submission {
            v: WIRE_VERSION,
            uuid: p.uuid,
            queue,
            spec: p.spec.0.clone(),
            created_at: Some(p.datetime_created),
        };
        let publish = jetstream::message::PublishMessage::build()
            .payload(s.encode())
            .message_id(format!("{}.resubmit.{}", s.uuid, before.timestamp()));
        acks.push(bus.js.send_publish(bus.names.submit(), publish).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(pending.len())
}

/// Termination requests not confirmed after `resubmit_after_secs` are put in the bucket
/// again: the api may have failed to reach NATS after recording the request.
async fn repeat_terminations(bus: &Bus, store: &Store, config: &Config) -> anyhow::Result<usize> {
    let before = chrono::Utc::now() - chrono::Duration::seconds(config.resubmit_after_secs as i64);
    let rows = store.unconfirmed_terminations(before, 1000).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let kv = bus.terminations_kv().await?;
    for row in &rows {
        let Ok(queue) = QueueName::parse(&row.queue_name) else {
            continue;
        };
        let t = Termination {
            v: WIRE_VERSION,
            uuid: row.uuid,
            queue,
            at: chrono::Utc::now(),
            by: None,
        };
        kv.put(row.uuid.to_string(), t.encode()).await?;
    }
    Ok(rows.len())
}
