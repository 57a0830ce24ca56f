//! What the bus tells operators about itself: whether the connection is up (a `/readyz`
//! check) and how far behind each durable consumer is (the scheduler's gauges). See
//! docs/observability.md.

use crate::error::internal;
use crate::{Bus, Error, Names};
use async_nats::jetstream::consumer;
use saltant_core::QueueName;

/// A durable consumer and how far behind it is.
#[derive(Debug, Clone)]
pub struct ConsumerLag {
    /// The consumer's name (`scheduler-events`, `queue-<token>`, …).
    pub name: String,
    /// The queue, for a queue's dispatch consumer.
    pub queue: Option<QueueName>,
    /// Messages it has not received yet.
    pub pending: u64,
    /// Messages received and not acked.
    pub unacked: u64,
}

impl Bus {
    /// A `/readyz` check: the connection to NATS is up.
    pub fn readiness(&self) -> saltant_telemetry::health::Check {
        let client = self.client.clone();
        std::sync::Arc::new(move || {
            let state = client.connection_state();
            Box::pin(async move {
                match state {
                    async_nats::connection::State::Connected => Ok(()),
                    other => Err(format!("nats connection {other}")),
                }
            })
        })
    }

    /// Every durable consumer of the work streams, with how far behind it is: what the
    /// scheduler turns into the queue and consumer gauges of `/metrics`.
    pub async fn consumer_lags(&self) -> Result<Vec<ConsumerLag>, Error> {
        use futures::TryStreamExt as _;
        let streams = [
            self.names.submit_stream(),
            self.names.dispatch_stream(),
            self.names.events_stream(),
            self.names.logs_stream(),
            Names::bucket_stream(&self.names.terminations_bucket()),
        ];
        let mut lags = Vec::new();
        for name in streams {
            let stream = self
                .js
                .get_stream(&name)
                .await
                .map_err(internal("get stream"))?;
            let infos: Vec<consumer::Info> = stream
                .consumers()
                .try_collect()
                .await
                .map_err(internal("list consumers"))?;
            for info in infos {
                if info.config.durable_name.is_none() {
                    continue; // a live follower
                }
                lags.push(ConsumerLag {
                    queue: self.names.queue_of(&info.config.filter_subject),
                    name: info.name,
                    pending: info.num_pending,
                    unacked: info.num_ack_pending as u64,
                });
            }
        }
        Ok(lags)
    }
}
