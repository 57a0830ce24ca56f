//! Submissions → dispatches. Each submission whose instance is still `created` (and due)
//! in PostgreSQL becomes a dispatch of its current attempt on its queue's subject (message
//! id `<uuid>.<attempt>`, so a repeat within the duplicate window is dropped by
//! JetStream), followed by its `published` event (a first attempt's `created` before it). Retries come back here through the sweep.

use crate::{Config, Ctx, next_batch, open_consumer, pause};
use async_nats::jetstream::{self, AckKind};
use saltant_bus::{Bus, Dispatch, Event, Submission, WIRE_VERSION, trace};
use saltant_core::{QueueName, State};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

pub(crate) async fn run(ctx: Ctx) {
    let Some(consumer) = open_consumer(&ctx, ctx.bus.names.scheduler_submit()).await else {
        return;
    };
    let mut known_queues = HashSet::new();
    let (max, expires) = (ctx.config.dispatch_batch, Duration::from_secs(1));
    while let Some(messages) =
        next_batch(&consumer, max, expires, &ctx.stop, "fetch submissions").await
    {
        let n = messages.len();
        match handle(&ctx, &mut known_queues, messages).await {
            Ok(()) => tracing::debug!(submissions = n, "dispatched submissions"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "dispatch submissions; they will be redelivered");
                if pause(&ctx.stop, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    }
}

/// A dispatch sent, with the span its trace continues in.
struct Sent {
    dispatch: Dispatch,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    span: tracing::Span,
}

async fn handle(
    ctx: &Ctx,
    known_queues: &mut HashSet<QueueName>,
    messages: Vec<jetstream::Message>,
) -> anyhow::Result<()> {
    let mut subs = Vec::with_capacity(messages.len());
    let mut acks = Vec::with_capacity(messages.len());
    for msg in messages {
        match Submission::decode(&msg.payload) {
            Ok(s) => {
                subs.push((s, msg.headers.clone()));
                acks.push(msg);
            }
            Err(e) => {
                tracing::error!(error = %e, "dropping undecodable submission");
                let _ = msg.ack_with(AckKind::Term).await;
            }
        }
    }
    // One read for the batch: only instances still `created` are dispatched, so a repeated
    // submission (sweep, redelivery) of an instance already under way does nothing.
    let uuids: Vec<Uuid> = subs.iter().map(|(s, _)| s.uuid).collect();
    let due: HashMap<Uuid, i32> = ctx.store.dispatchable(&uuids).await?.into_iter().collect();
    let sent = send_dispatches(ctx, known_queues, &subs, &due).await?;
    let mut event_acks = Vec::new();
    for s in &sent {
        let d = &s.dispatch;
        // A first attempt's `created` goes out first, for subscribers (docs/events.md); it
        // is recorded already (the api inserted the row). One connection keeps the order.
        if d.attempt == 1 {
            let mut e = Event::new(d.uuid, d.queue.clone(), 1, State::Created);
            e.at = s.created_at.unwrap_or(e.at);
            let ack = ctx.bus.publish_recorded_event(&e);
            event_acks.push(ack.instrument(s.span.clone()).await?);
        }
        let e = Event::new(d.uuid, d.queue.clone(), d.attempt, State::Published);
        event_acks.push(ctx.bus.publish_event(&e).instrument(s.span.clone()).await?);
    }
    for ack in event_acks {
        ack.await?;
    }
    // Dispatches and their `published` events are stored: executors serving these queues
    // may pull now. (Signalled earlier, a quick task's `running` and final events could
    // land before its `published`, and the events stream's last event would lie.)
    signal_ready(&ctx.bus, sent.iter().map(|s| &s.dispatch.queue)).await;
    for msg in acks {
        if let Err(e) = msg.ack().await {
            tracing::warn!(error = %e, "ack submission (a redelivery is harmless)");
        }
    }
    Ok(())
}

/// Publishes one dispatch per due instance of the batch and waits for them to be stored.
async fn send_dispatches(
    ctx: &Ctx,
    known_queues: &mut HashSet<QueueName>,
    subs: &[(Submission, Option<async_nats::HeaderMap>)],
    due: &HashMap<Uuid, i32>,
) -> anyhow::Result<Vec<Sent>> {
    let mut acks = Vec::new();
    let mut sent: Vec<Sent> = Vec::with_capacity(subs.len());
    for (s, headers) in subs {
        let Some(&attempt) = due.get(&s.uuid) else {
            continue;
        };
        // One dispatch per attempt even if the batch holds the submission twice.
        if sent.iter().any(|x| x.dispatch.uuid == s.uuid) {
            continue;
        }
        if known_queues.insert(s.queue.clone()) {
            // First work for this queue in this process: make sure its consumer exists.
            ctx.bus.dispatch_consumer(&s.queue).await?;
        }
        let span = tracing::info_span!("dispatch", instance = %s.uuid, queue = %s.queue);
        trace::set_parent(&span, headers.as_ref());
        let dispatch = dispatch(&ctx.config, s, attempt as u32);
        acks.push(
            ctx.bus
                .publish_dispatch(&dispatch)
                .instrument(span.clone())
                .await?,
        );
        sent.push(Sent {
            dispatch,
            created_at: s.created_at,
            span,
        });
    }
    for ack in acks {
        ack.await?;
    }
    // Stored: from creation to the first dispatch (a retry's would count its earlier
    // attempts; a batch that failed is redelivered and observed then).
    let now = chrono::Utc::now();
    for s in sent.iter().filter(|s| s.dispatch.attempt == 1) {
        if let Some(created) = s.created_at {
            let waited = (now - created).to_std().unwrap_or_default();
            saltant_telemetry::metrics::metrics()
                .dispatch_latency
                .get_or_create(&saltant_telemetry::metrics::QueueLabels {
                    queue: s.dispatch.queue.to_string(),
                })
                .observe(waited.as_secs_f64());
        }
    }
    Ok(sent)
}

fn dispatch(config: &Config, s: &Submission, attempt: u32) -> Dispatch {
    let policy = s.spec.policy;
    Dispatch {
        v: WIRE_VERSION,
        uuid: s.uuid,
        queue: s.queue.clone(),
        attempt,
        spec: s.spec.clone(),
        start_by: policy.queue_timeout_secs.and_then(|secs| {
            s.created_at
                .map(|c| c + chrono::Duration::seconds(secs as i64))
        }),
        run_timeout_secs: policy.run_timeout_secs.or(config.run_timeout_secs),
        created_at: s.created_at,
    }
}

/// Tells the executors of each queue once that it has work. Best effort: executors find
/// the work at their next rescan anyway.
async fn signal_ready<'a>(bus: &Bus, queues: impl Iterator<Item = &'a QueueName>) {
    let mut signalled = HashSet::new();
    for queue in queues {
        if signalled.insert(queue)
            && let Err(e) = bus.signal_ready(queue).await
        {
            tracing::warn!(%queue, error = %format!("{e:#}"), "signal ready queue");
        }
    }
}
