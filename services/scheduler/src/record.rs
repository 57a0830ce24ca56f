//! Events → PostgreSQL: every state change on the events stream is recorded in batches (one
//! transaction per batch), compare-and-set on attempt and state rank, then acked.

use crate::{Config, open_consumer, pause};
use async_nats::jetstream::AckKind;
use saltant_bus::{Bus, Event, RECORDED_HEADER, fetch_batch, fetch_now};
use saltant_store::Store;
use saltant_store::instances::StateChange;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(bus: Bus, store: Store, config: Config, stop: CancellationToken) {
    let Some(consumer) = open_consumer(
        &bus,
        bus.names.events_stream(),
        bus.names.scheduler_events_consumer(),
        bus.names.events_all(),
        &stop,
    )
    .await
    else {
        return;
    };
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => return,
            b = fetch_batch(&consumer, config.record_batch, Duration::from_millis(500)) => b,
        };
        let mut messages = match batch {
            Ok(m) if m.is_empty() => continue,
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "fetch events");
                if pause(&stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        // Under load, linger a little for more: an instance's `published`, `running` and
        // final events then often land in one batch and cost one row update instead of
        // three. A few events (a quiet system) are written at once.
        let linger = messages.len() >= config.record_linger_from;
        let linger_until =
            tokio::time::Instant::now() + Duration::from_millis(config.record_linger_ms);
        while linger && messages.len() < config.record_batch && config.record_linger_ms > 0 {
            let left = linger_until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_millis(10))).await;
            match fetch_now(&consumer, config.record_batch - messages.len()).await {
                Ok(more) => messages.extend(more),
                Err(_) => break,
            }
        }
        let mut changes = Vec::with_capacity(messages.len());
        let mut to_ack = Vec::with_capacity(messages.len());
        for msg in messages {
            let recorded = msg
                .headers
                .as_ref()
                .is_some_and(|h| h.get(RECORDED_HEADER).is_some());
            if recorded {
                // Written by the api's status endpoint before it was published.
                to_ack.push(msg);
                continue;
            }
            match Event::decode(&msg.payload) {
                Ok(e) => {
                    changes.push(StateChange {
                        uuid: e.uuid,
                        attempt: e.attempt as i32,
                        state: e.state,
                        at: e.at,
                        executor: e.executor,
                        exit_code: e.exit_code,
                        reason: e.reason,
                        no_retry: e.no_retry,
                    });
                    to_ack.push(msg);
                }
                Err(e) => {
                    tracing::error!(error = %e, subject = %msg.subject, "dropping undecodable event");
                    let _ = msg.ack_with(AckKind::Term).await;
                }
            }
        }
        // Retry the same batch until PostgreSQL takes it: events are acked only once stored.
        let mut delay = Duration::from_millis(200);
        loop {
            match store
                .apply_state_changes(&changes, config.retry_policy())
                .await
            {
                Ok(n) => {
                    tracing::debug!(events = changes.len(), changed = n, "recorded events");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "record events");
                    for msg in &to_ack {
                        let _ = msg.ack_with(AckKind::Progress).await;
                    }
                    if pause(&stop, delay).await {
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
