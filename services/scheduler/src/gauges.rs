//! The scheduler's gauges (singleton duty, under the lease): unfinished instances by queue
//! and state, the age of each queue's oldest waiting instance, and every durable
//! consumer's lag, read every `scheduler.metrics_every_secs`. Series are replaced in place
//! (a scrape never sees them missing) and the ones that went away removed. A replica
//! without the lease, or whose reading failed, shows none of them, so a sum over replicas
//! counts each once and a stale value is never shown (docs/observability.md).

use crate::{Ctx, pause};
use saltant_core::State;
use saltant_telemetry::metrics::{ConsumerLabels, Metrics, QueueLabels, QueueStateLabels, metrics};
use std::collections::HashSet;
use std::time::Duration;

/// The label sets this replica has set, to remove the ones a reading no longer has.
#[derive(Default)]
struct Shown {
    instances: HashSet<QueueStateLabels>,
    queues: HashSet<QueueLabels>,
    oldest: HashSet<QueueLabels>,
    consumers: HashSet<ConsumerLabels>,
}

pub(crate) async fn run(ctx: Ctx) {
    let every = Duration::from_secs(ctx.config.metrics_every_secs.max(1));
    let mut shown = Shown::default();
    loop {
        let next = if ctx.lease.held() {
            match read(&ctx).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "read gauges");
                    Shown::default()
                }
            }
        } else {
            Shown::default()
        };
        remove_gone(metrics(), &shown, &next);
        shown = next;
        if pause(&ctx.stop, every).await {
            return;
        }
    }
}

/// Removes the series `before` had and `now` has not.
fn remove_gone(m: &Metrics, before: &Shown, now: &Shown) {
    for l in before.instances.difference(&now.instances) {
        m.instances.remove(l);
    }
    for l in before.queues.difference(&now.queues) {
        m.queue_waiting.remove(l);
        m.queue_unacked.remove(l);
    }
    for l in before.oldest.difference(&now.oldest) {
        m.queue_oldest_waiting.remove(l);
    }
    for l in before.consumers.difference(&now.consumers) {
        m.consumer_pending.remove(l);
        m.consumer_unacked.remove(l);
    }
}

/// Sets every gauge from a fresh reading; returns the label sets set.
async fn read(ctx: &Ctx) -> anyhow::Result<Shown> {
    let counts = ctx.store.instance_counts().await?;
    let lags = ctx.bus.consumer_lags().await?;
    let m = metrics();
    let mut shown = Shown::default();
    let mut oldest: std::collections::HashMap<QueueLabels, f64> = Default::default();
    for c in counts {
        let labels = QueueStateLabels {
            queue: c.queue_name.clone(),
            state: c.state.to_string(),
        };
        m.instances.get_or_create(&labels).set(c.n);
        shown.instances.insert(labels);
        if matches!(c.state, State::Created | State::Published) {
            let o = oldest
                .entry(QueueLabels {
                    queue: c.queue_name,
                })
                .or_default();
            *o = o.max(c.oldest_secs);
        }
    }
    for (labels, secs) in oldest {
        m.queue_oldest_waiting.get_or_create(&labels).set(secs);
        shown.oldest.insert(labels);
    }
    for lag in lags {
        let (pending, unacked) = (lag.pending as i64, lag.unacked as i64);
        match lag.queue {
            Some(queue) => {
                let labels = QueueLabels {
                    queue: queue.to_string(),
                };
                m.queue_waiting.get_or_create(&labels).set(pending);
                m.queue_unacked.get_or_create(&labels).set(unacked);
                shown.queues.insert(labels);
            }
            None => {
                let labels = ConsumerLabels { consumer: lag.name };
                m.consumer_pending.get_or_create(&labels).set(pending);
                m.consumer_unacked.get_or_create(&labels).set(unacked);
                shown.consumers.insert(labels);
            }
        }
    }
    Ok(shown)
}
