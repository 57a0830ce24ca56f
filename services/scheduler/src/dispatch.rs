//! Submissions → dispatches. Each submission whose instance is still `created` (and due)
//! in PostgreSQL becomes a dispatch of its current attempt on its queue's subject (message
//! id `<uuid>.<attempt>`, so a repeat within the duplicate window is dropped by
//! JetStream), followed by its `published` event. Retries come back here through the sweep.

use crate::{Config, open_consumer, pause};
use async_nats::jetstream::{self, AckKind};
use saltant_bus::{Bus, Dispatch, Event, Submission, WIRE_VERSION, fetch_batch, trace};
use saltant_core::{QueueName, State};
use saltant_store::Store;
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) async fn run(bus: Bus, store: Store, config: Config, stop: CancellationToken) {
    let Some(consumer) = open_consumer(
        &bus,
        bus.names.submit_stream(),
        bus.names.scheduler_submit_consumer(),
        bus.names.submit(),
        &stop,
    )
    .await
    else {
        return;
    };
    let mut known_queues = HashSet::new();
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => return,
            b = fetch_batch(&consumer, config.dispatch_batch, Duration::from_secs(1)) => b,
        };
        let messages = match batch {
            Ok(m) if m.is_empty() => continue,
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "fetch submissions");
                if pause(&stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        let n = messages.len();
        match handle(&bus, &store, &config, &mut known_queues, messages).await {
            Ok(()) => tracing::debug!(submissions = n, "dispatched submissions"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "dispatch submissions; they will be redelivered");
                if pause(&stop, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    }
}

async fn handle(
    bus: &Bus,
    store: &Store,
    config: &Config,
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
    let due: std::collections::HashMap<Uuid, i32> =
        store.dispatchable(&uuids).await?.into_iter().collect();

    let mut dispatch_acks = Vec::new();
    let mut dispatched = Vec::with_capacity(subs.len());
    for (s, headers) in &subs {
        let Some(&attempt) = due.get(&s.uuid) else {
            continue;
        };
        // One dispatch per attempt even if the batch holds the submission twice.
        if dispatched.iter().any(|(u, _, _)| *u == s.uuid) {
            continue;
        }
        if known_queues.insert(s.queue.clone()) {
            // First work for this queue in this process: make sure its consumer exists.
            bus.dispatch_consumer(&s.queue).await?;
        }
        let span = tracing::info_span!("dispatch", instance = %s.uuid, queue = %s.queue);
        trace::set_parent(&span, headers.as_ref());
        let headers = span.in_scope(trace::headers);
        let policy = s.spec.policy;
        let d = Dispatch {
            v: WIRE_VERSION,
            uuid: s.uuid,
            queue: s.queue.clone(),
            attempt: attempt as u32,
            spec: s.spec.clone(),
            start_by: policy.queue_timeout_secs.and_then(|secs| {
                s.created_at
                    .map(|c| c + chrono::Duration::seconds(secs as i64))
            }),
            run_timeout_secs: policy.run_timeout_secs.or(config.run_timeout_secs),
        };
        dispatched.push((s.uuid, s.queue.clone(), attempt));
        let publish = jetstream::message::PublishMessage::build()
            .payload(d.encode())
            .headers(headers.clone())
            .message_id(format!("{}.{}", d.uuid, d.attempt));
        dispatch_acks.push(
            bus.js
                .send_publish(bus.names.dispatch(&s.queue), publish)
                .await?,
        );
    }
    for ack in dispatch_acks {
        ack.await?;
    }
    let mut event_acks = Vec::new();
    for (uuid, queue, attempt) in &dispatched {
        let e = Event::new(*uuid, queue.clone(), *attempt as u32, State::Published);
        event_acks.push(bus.send_event(&e, async_nats::HeaderMap::new()).await?);
    }
    for ack in event_acks {
        ack.await?;
    }
    // Dispatches and their `published` events are stored: executors serving these queues
    // may pull now. (Signalled earlier, a quick task's `running` and final events could
    // land before its `published`, and the events stream's last event would lie.)
    let mut signalled = HashSet::new();
    for (_, queue, _) in &dispatched {
        if signalled.insert(queue)
            && let Err(e) = bus.signal_ready(queue).await
        {
            // Executors find the work at their next rescan.
            tracing::warn!(%queue, error = %format!("{e:#}"), "signal ready queue");
        }
    }
    for msg in acks {
        if let Err(e) = msg.ack().await {
            tracing::warn!(error = %e, "ack submission (a redelivery is harmless)");
        }
    }
    Ok(())
}
