//! Which queues have work: the scheduler's "ready" signals (core NATS, one per queue per
//! dispatched batch) and the dispatch stream's per-subject counts, from which executors
//! learn where to pull without holding a slot on an empty queue. See docs/bus.md,
//! "Taking work from many queues".

use crate::error::internal;
use crate::{Bus, Error};
use async_nats::jetstream::{self, consumer};
use futures::TryStreamExt;
use saltant_core::QueueName;
use std::collections::HashMap;
use std::time::Duration;

impl Bus {
    /// Tells executors that `queue` has dispatches to pull. Best effort: a lost signal
    /// delays the work until the executors' next rescan, it never loses it.
    pub async fn signal_ready(&self, queue: &QueueName) -> Result<(), Error> {
        self.client
            .publish(self.names.ready(queue), bytes::Bytes::new())
            .await
            .map_err(internal("publish ready signal"))
    }

    /// Queues whose dispatch subject holds messages now (waiting, or delivered and not yet
    /// acked), with their counts: one request, whatever the number of queues.
    pub async fn queues_with_dispatches(&self) -> Result<HashMap<QueueName, u64>, Error> {
        let stream = self
            .js
            .get_stream_no_info(self.names.dispatch_stream())
            .await
            .map_err(internal("get dispatch stream"))?;
        let mut subjects = stream
            .info_with_subjects(self.names.dispatch_all())
            .await
            .map_err(internal("dispatch stream subjects"))?;
        let mut out = HashMap::new();
        while let Some((subject, count)) = subjects
            .try_next()
            .await
            .map_err(internal("dispatch stream subjects"))?
        {
            if let Some(queue) = self.names.queue_of(&subject) {
                out.insert(queue, count as u64);
            }
        }
        Ok(out)
    }
}

/// Pulls up to `max` messages, waiting at most `expires` for the first; returns what came
/// (possibly nothing). Errors of single messages are skipped: they redeliver.
pub async fn fetch_batch(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    max: usize,
    expires: Duration,
) -> Result<Vec<jetstream::Message>, Error> {
    fetch_batch_bytes(consumer, max, 0, expires).await
}

/// [`fetch_batch`] bounded by payload bytes too (0: no bound), so that a batch of large
/// messages (log chunks) holds a bounded amount of memory.
pub async fn fetch_batch_bytes(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    max: usize,
    max_bytes: usize,
    expires: Duration,
) -> Result<Vec<jetstream::Message>, Error> {
    let batch = consumer
        .fetch()
        .max_messages(max)
        .max_bytes(max_bytes)
        .expires(expires)
        .messages()
        .await
        .map_err(internal("fetch messages"))?;
    // The client ends the batch itself a few seconds after `expires`.
    Ok(collect(batch, max, None).await)
}

/// How long a pull without expiry waits for its answer. The server answers a no-wait pull
/// at once, but the client sets no timer on it: an answer lost with the connection (the
/// server restarted meanwhile) would leave the fetch, and its caller, waiting forever.
const NO_WAIT_ANSWER: Duration = Duration::from_secs(5);

/// Takes up to `max` messages that are available now, without waiting for more (a pull
/// request with `no_wait` and no expiry): an empty queue answers at once, and no request
/// is left waiting on the server for an executor that may die.
pub async fn fetch_now(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    max: usize,
) -> Result<Vec<jetstream::Message>, Error> {
    let batch = consumer
        .fetch()
        .max_messages(max)
        .messages()
        .await
        .map_err(internal("fetch messages"))?;
    let deadline = tokio::time::Instant::now() + NO_WAIT_ANSWER;
    Ok(collect(batch, max, Some(deadline)).await)
}

/// The messages of a batch until it ends, fails, or `deadline` passes (then what came is
/// kept: those messages are delivered and are acked as usual).
async fn collect(
    mut batch: consumer::pull::Batch,
    max: usize,
    deadline: Option<tokio::time::Instant>,
) -> Vec<jetstream::Message> {
    use futures::StreamExt;
    let mut out = Vec::with_capacity(max.min(1024));
    loop {
        let next = match deadline {
            None => batch.next().await,
            Some(d) => match tokio::time::timeout_at(d, batch.next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(
                        received = out.len(),
                        "no end of a no-wait pull's answer; ending it"
                    );
                    break;
                }
            },
        };
        match next {
            Some(Ok(m)) => out.push(m),
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "fetch ended");
                break;
            }
        }
    }
    out
}
