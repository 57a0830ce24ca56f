//! The sweep: instances still `created` long after the api answered for them were never
//! seen by the bus (NATS was down, or the api died between commit and publish). They are
//! submitted again; the dispatcher's state check makes a repeat harmless.

use crate::{Config, pause};
use async_nats::jetstream;
use saltant_bus::{Bus, Submission, WIRE_VERSION};
use saltant_core::QueueName;
use saltant_store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(bus: Bus, store: Store, config: Config, stop: CancellationToken) {
    let every = Duration::from_secs(config.sweep_every_secs.max(1));
    loop {
        if pause(&stop, every).await {
            return;
        }
        match sweep(&bus, &store, &config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(resubmitted = n, "swept instances the bus had not seen"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "sweep"),
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
