//! Events → PostgreSQL: every state change on the events stream is recorded in batches (one
//! transaction per batch), compare-and-set on attempt and state rank, then acked.

use crate::{Config, Consumer, Ctx, next_batch, open_consumer, pause};
use async_nats::jetstream::{self, AckKind};
use saltant_bus::{Event, RECORDED_HEADER, fetch_now, trace};
use saltant_store::instances::StateChange;
use std::time::Duration;

pub(crate) async fn run(ctx: Ctx) {
    let Some(consumer) = open_consumer(&ctx, ctx.bus.names.scheduler_events()).await else {
        return;
    };
    let (max, expires) = (ctx.config.record_batch, Duration::from_millis(500));
    while let Some(mut messages) =
        next_batch(&consumer, max, expires, &ctx.stop, "fetch events").await
    {
        linger(&consumer, &ctx.config, &mut messages).await;
        let (changes, to_ack, spans) = changes(&ctx.bus.names, messages).await;
        // Retry the same batch until PostgreSQL takes it: events are acked only once stored.
        let mut delay = Duration::from_millis(200);
        loop {
            match ctx
                .store
                .apply_state_changes(&changes, ctx.config.retry_policy())
                .await
            {
                Ok(applied) => {
                    tracing::debug!(
                        events = changes.len(),
                        changed = applied.changed,
                        "recorded events"
                    );
                    for (uuid, state) in &applied.refused {
                        tracing::error!(instance = %uuid, %state, queue = ?spans.queues.get(uuid).map(|q| q.to_string()),
                            "refused an event naming another queue than its instance's (published by an executor of that queue)");
                    }
                    // Counted once per instance, attempt and state: repeats are not new.
                    let m = saltant_telemetry::metrics::metrics();
                    for (uuid, state) in &applied.new {
                        if let Some(queue) = spans.queues.get(uuid) {
                            m.events_recorded
                                .get_or_create(&saltant_telemetry::metrics::QueueStateLabels {
                                    queue: queue.to_string(),
                                    state: state.to_string(),
                                })
                                .inc();
                        }
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "record events");
                    for msg in &to_ack {
                        let _ = msg.ack_with(AckKind::Progress).await;
                    }
                    if pause(&ctx.stop, delay).await {
                        return;
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for msg in to_ack {
            if let Err(e) = msg.ack().await {
                tracing::warn!(error = %e, "ack event (a redelivery is harmless)");
            }
        }
    }
}

/// Under load, lingers a little for more: an instance's `published`, `running` and final
/// events then often land in one batch and cost one row update instead of three. A few
/// events (a quiet system) are written at once.
async fn linger(consumer: &Consumer, config: &Config, messages: &mut Vec<jetstream::Message>) {
    if messages.len() < config.record_linger_from || config.record_linger_ms == 0 {
        return;
    }
    let until = tokio::time::Instant::now() + Duration::from_millis(config.record_linger_ms);
    while messages.len() < config.record_batch {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_millis(10))).await;
        match fetch_now(consumer, config.record_batch - messages.len()).await {
            Ok(more) => messages.extend(more),
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "fetch more events; recording what came");
                break;
            }
        }
    }
}

/// Each change's queue, and its span in the instance's trace: open until the batch is
/// stored (so it spans the transaction), closed when dropped.
#[derive(Default)]
struct Recording {
    queues: std::collections::HashMap<uuid::Uuid, saltant_core::QueueName>,
    _spans: Vec<tracing::Span>,
}

/// The changes to record, and the messages to ack once they are: events already recorded
/// (by the status endpoint) are only acked, undecodable ones are dropped, and so are events
/// whose subject is not theirs (an executor's report published under another source: see
/// `Names::check_event_subject`).
async fn changes(
    names: &saltant_bus::Names,
    messages: Vec<jetstream::Message>,
) -> (Vec<StateChange>, Vec<jetstream::Message>, Recording) {
    let mut changes = Vec::with_capacity(messages.len());
    let mut to_ack = Vec::with_capacity(messages.len());
    let mut rec = Recording::default();
    for msg in messages {
        let recorded = msg
            .headers
            .as_ref()
            .is_some_and(|h| h.get(RECORDED_HEADER).is_some());
        if recorded {
            to_ack.push(msg);
            continue;
        }
        match Event::decode(&msg.payload) {
            Ok(e) if let Err(why) = names.check_event_subject(&msg.subject, &e) => {
                tracing::error!(%why, instance = %e.uuid, "dropping an event published under another source");
                let _ = msg.ack_with(AckKind::Term).await;
            }
            Ok(e) => {
                let span = tracing::info_span!("record event", instance = %e.uuid, attempt = e.attempt, state = %e.state);
                trace::set_parent(&span, msg.headers.as_ref());
                rec._spans.push(span);
                rec.queues.insert(e.uuid, e.queue.clone());
                changes.push(StateChange {
                    uuid: e.uuid,
                    attempt: e.attempt as i32,
                    state: e.state,
                    at: e.at,
                    executor: e.executor,
                    exit_code: e.exit_code,
                    reason: e.reason,
                    no_retry: e.no_retry,
                    results_digest: e.results_digest,
                    queue: Some(e.queue.to_string()),
                });
                to_ack.push(msg);
            }
            Err(e) => {
                tracing::error!(error = %e, subject = %msg.subject, "dropping undecodable event");
                let _ = msg.ack_with(AckKind::Term).await;
            }
        }
    }
    (changes, to_ack, rec)
}
