//! Termination of instances that have not started. The api puts a request in the
//! terminations bucket; this consumer of the bucket's stream (durable, so requests made
//! while no scheduler ran are not missed) ends every requested instance that is still
//! `created` or `published` with a `terminated` event of its current attempt. Running
//! instances are ended by the executor that runs them, which watches the same bucket; an
//! executor that takes a requested instance later sees the request first and never starts it.

use crate::{Ctx, next_batch, open_consumer};
use async_nats::jetstream::{self, AckKind};
use saltant_bus::{Bus, Event, Termination, trace};
use saltant_core::State;
use saltant_store::Store;
use std::time::Duration;
use tracing::Instrument;

pub(crate) async fn run(ctx: Ctx) {
    let Some(consumer) = open_consumer(&ctx, ctx.bus.names.scheduler_terminations()).await else {
        return;
    };
    let Ctx {
        bus, store, stop, ..
    } = ctx;
    let expires = Duration::from_secs(1);
    while let Some(messages) =
        next_batch(&consumer, 500, expires, &stop, "fetch termination requests").await
    {
        if let Err(e) = handle(&bus, &store, &messages).await {
            tracing::warn!(error = %format!("{e:#}"), "end terminated instances; they will be redelivered");
            for m in &messages {
                let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
            }
            continue;
        }
        for m in messages {
            if let Err(e) = m.ack().await {
                tracing::debug!(error = %e, "ack termination request (a redelivery is harmless)");
            }
        }
    }
}

async fn handle(bus: &Bus, store: &Store, messages: &[jetstream::Message]) -> anyhow::Result<()> {
    let mut uuids = Vec::with_capacity(messages.len());
    let mut traces = std::collections::HashMap::new();
    for m in messages {
        // Deletes and purges of keys carry no request.
        if m.payload.is_empty() {
            continue;
        }
        match Termination::decode(&m.payload) {
            Ok(t) => {
                uuids.push(t.uuid);
                traces.insert(t.uuid, t.trace);
            }
            Err(e) => {
                tracing::error!(error = %e, subject = %m.subject, "ignoring undecodable termination request")
            }
        }
    }
    if uuids.is_empty() {
        return Ok(());
    }
    let rows = store.terminating(&uuids).await?;
    let mut acks = Vec::new();
    for row in rows {
        if row.state.rank() >= State::Running.rank() {
            continue;
        }
        let mut event = Event::new(
            row.uuid,
            row.queue_name,
            row.attempt as u32,
            State::Terminated,
        );
        event.reason = Some("terminated before it started".into());
        let span = tracing::info_span!("terminate before start", instance = %row.uuid);
        trace::set_parent_traceparent(&span, traces.get(&row.uuid).and_then(|t| t.as_deref()));
        acks.push(bus.publish_event(&event).instrument(span).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(())
}
