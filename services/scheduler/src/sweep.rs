//! The sweep: instances still `created` long after the api answered for them were never
//! seen by the bus (NATS was down, or the api died between commit and publish), and
//! retries whose back-off has passed are due. They are submitted, each in a span of the
//! instance's trace (from its stored `traceparent`) whose context the submission carries; the dispatcher's state check makes a
//! repeat harmless, and JetStream drops a repeat of the same attempt (message id
//! `<uuid>.<attempt>`) that reached the stream already. See docs/bus.md, "Message ids".

use crate::{Config, Ctx, next_turn, report};
use saltant_bus::{Bus, Submission, Termination, WIRE_VERSION, trace};
use saltant_store::Store;
use tracing::Instrument;

pub(crate) async fn run(ctx: Ctx) {
    while next_turn(ctx.config.sweep_every_secs, &ctx.lease, &ctx.stop).await {
        report(
            sweep(&ctx.bus, &ctx.store, &ctx.config).await,
            "submitted instances the bus had not seen, and due retries",
            "sweep",
        );
        report(
            repeat_terminations(&ctx.bus, &ctx.store, &ctx.config).await,
            "repeated unconfirmed termination requests",
            "sweep terminations",
        );
    }
}

/// Instances whose first attempt is older than this were missed by the bus.
fn missed_before(config: &Config) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::seconds(config.resubmit_after_secs as i64)
}

async fn sweep(bus: &Bus, store: &Store, config: &Config) -> anyhow::Result<usize> {
    let pending = store.pending_instances(missed_before(config), 1000).await?;
    let mut acks = Vec::with_capacity(pending.len());
    for p in &pending {
        let s = Submission {
            v: WIRE_VERSION,
            uuid: p.uuid,
            attempt: p.attempt as u32,
            queue: p.queue_name.clone(),
            spec: p.spec.0.clone(),
            created_at: Some(p.datetime_created),
        };
        // The instance's trace goes on: a retry or a missed submission is part of it.
        let span = tracing::info_span!("resubmit", instance = %p.uuid, attempt = p.attempt);
        trace::set_parent_traceparent(&span, p.trace_parent.as_deref());
        acks.push(bus.publish_submission(&s).instrument(span).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(pending.len())
}

/// Termination requests not confirmed after `resubmit_after_secs` are put in the bucket
/// again: the api may have failed to reach NATS after recording the request.
async fn repeat_terminations(bus: &Bus, store: &Store, config: &Config) -> anyhow::Result<usize> {
    let rows = store
        .unconfirmed_terminations(missed_before(config), 1000)
        .await?;
    for row in &rows {
        bus.request_termination(&Termination {
            v: WIRE_VERSION,
            uuid: row.uuid,
            queue: row.queue_name.clone(),
            at: chrono::Utc::now(),
            by: None,
            trace: row.trace_parent.clone(),
        })
        .await?;
    }
    Ok(rows.len())
}
