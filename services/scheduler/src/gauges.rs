//! The scheduler's gauges (singleton duty, under the lease): instances by queue and state,
//! the age of each queue's oldest waiting instance, and every durable consumer's lag, read
//! every `scheduler.metrics_every_secs`. A replica without the lease shows none of them,
//! so a sum over replicas counts each once (docs/observability.md).

use crate::{Ctx, pause};
use saltant_core::State;
use saltant_telemetry::metrics::{ConsumerLabels, QueueLabels, QueueStateLabels, metrics};
use std::time::Duration;

pub(crate) async fn run(ctx: Ctx) {
    let every = Duration::from_secs(ctx.config.metrics_every_secs.max(1));
    loop {
        if ctx.lease.held() {
            if let Err(e) = read(&ctx).await {
                tracing::warn!(error = %format!("{e:#}"), "read gauges");
            }
        } else {
            clear();
        }
        if pause(&ctx.stop, every).await {
            return;
        }
    }
}

fn clear() {
    let m = metrics();
    m.instances.clear();
    m.queue_oldest_waiting.clear();
    m.queue_waiting.clear();
    m.queue_unacked.clear();
    m.consumer_pending.clear();
    m.consumer_unacked.clear();
}

async fn read(ctx: &Ctx) -> anyhow::Result<()> {
    let counts = ctx.store.instance_counts().await?;
    let lags = ctx.bus.consumer_lags().await?;
    // Series of queues or consumers that went away must go too.
    clear();
    let m = metrics();
    for c in counts {
        m.instances
            .get_or_create(&QueueStateLabels {
                queue: c.queue_name.clone(),
                state: c.state.to_string(),
            })
            .set(c.n);
        if matches!(c.state, State::Created | State::Published) {
            let oldest = m.queue_oldest_waiting.get_or_create(&QueueLabels {
                queue: c.queue_name,
            });
            oldest.set(oldest.get().max(c.oldest_secs));
        }
    }
    for lag in lags {
        match lag.queue {
            Some(queue) => {
                let queue = QueueLabels {
                    queue: queue.to_string(),
                };
                m.queue_waiting
                    .get_or_create(&queue)
                    .set(lag.pending as i64);
                m.queue_unacked
                    .get_or_create(&queue)
                    .set(lag.unacked as i64);
            }
            None => {
                let consumer = ConsumerLabels { consumer: lag.name };
                m.consumer_pending
                    .get_or_create(&consumer)
                    .set(lag.pending as i64);
                m.consumer_unacked
                    .get_or_create(&consumer)
                    .set(lag.unacked as i64);
            }
        }
    }
    Ok(())
}
