//! The log-collector turns the live logs stream into durable logs: chunks (and each
//! attempt's end of output) are stored in PostgreSQL in batches, idempotently (keyed by
//! instance, attempt and sequence number), and acked only once stored. Then live tails of
//! those instances are woken (`stored.<uuid>`). Output of instances finished longer than
//! the retention ago is deleted. See docs/logs.md.

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use saltant_bus::{Bus, BusConfig, LogMessage, trace};
use saltant_store::logs::{LogChunk as StoredChunk, LogEnd as StoredEnd};
use saltant_store::{Store, StoreConfig};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Log-collector configuration (`[log_collector]`, `SALTANT_LOG_COLLECTOR__…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Most chunks stored in one statement.
    pub batch: usize,
    /// Most bytes of output pulled at once (bounds the collector's memory).
    pub batch_bytes: usize,
    /// Seconds the output of a finished instance is kept; 0 keeps it for ever.
    pub retention_secs: u64,
    /// Seconds between two passes deleting expired output.
    pub retention_every_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batch: 1000,
            batch_bytes: 8 * 1024 * 1024,
            retention_secs: 0,
            retention_every_secs: 3600,
        }
    }
}

pub async fn run(
    bus_config: BusConfig,
    store_config: StoreConfig,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    saltant_telemetry::health::starting("log-collector");
    let store = Store::connect_lazy(&store_config)?;
    let bus = Bus::connect(&bus_config, saltant_bus::Service::LogCollector).await?;
    let consumer = bus.log_collector_consumer().await?;
    saltant_telemetry::health::started(
        "log-collector",
        [("postgres", store.readiness()), ("nats", bus.readiness())],
    );
    tracing::info!("log-collector started");
    let retention = tokio::spawn(expire(store.clone(), config.clone(), shutdown.clone()));
    while !shutdown.is_cancelled() {
        // Pulls ahead (at most `batch` messages, `batch_bytes` bytes per pull) and takes
        // what has arrived: a quiet instance's line is stored at once, a busy one's in
        // batches.
        let messages = consumer
            .stream()
            .max_messages_per_batch(config.batch)
            .max_bytes_per_batch(config.batch_bytes)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(m) => m.ready_chunks(config.batch),
            Err(e) => {
                tracing::warn!(error = %e, "pull log chunks");
                if pause(&shutdown, Duration::from_secs(1)).await {
                    break;
                }
                continue;
            }
        };
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                b = messages.next() => b,
            };
            let Some(batch) = batch else {
                tracing::debug!("log chunk pulls ended; pulling again");
                break;
            };
            let mut got = Vec::with_capacity(batch.len());
            for m in batch {
                match m {
                    Ok(m) => got.push(m),
                    Err(e) => tracing::debug!(error = %e, "pull log chunks"),
                }
            }
            if !store_batch(&store, &bus, got, &shutdown).await {
                break;
            }
        }
    }
    retention.abort();
    bus.close().await;
    store.pool.close().await;
    tracing::info!("log-collector stopped");
    Ok(())
}

/// Stores a batch (retrying until PostgreSQL takes it), acks it and wakes the tails of its
/// instances. `false` when shutdown came first (the batch is then redelivered).
async fn store_batch(
    store: &Store,
    bus: &Bus,
    messages: Vec<jetstream::Message>,
    shutdown: &CancellationToken,
) -> bool {
    let mut chunks = Vec::with_capacity(messages.len());
    let mut ends = Vec::new();
    let mut to_ack = Vec::with_capacity(messages.len());
    // One span per instance of the batch, in its trace (the first message's context),
    // open until the batch is stored.
    let mut spans: HashMap<Uuid, tracing::Span> = HashMap::new();
    for msg in messages {
        let decoded = LogMessage::decode(&msg.subject, msg.headers.as_ref(), &msg.payload);
        if let Ok(m) = &decoded {
            let (uuid, attempt) = match m {
                LogMessage::Chunk(c) => (c.uuid, c.attempt),
                LogMessage::End(e) => (e.uuid, e.attempt),
            };
            spans.entry(uuid).or_insert_with(|| {
                let span = tracing::info_span!("store output", instance = %uuid, attempt);
                trace::set_parent(&span, msg.headers.as_ref());
                span
            });
        }
        match decoded {
            Ok(LogMessage::Chunk(c)) => {
                chunks.push(StoredChunk {
                    uuid: c.uuid,
                    attempt: c.attempt as i32,
                    seq: c.seq,
                    stream: c.stream.as_str(),
                    data: c.data.to_vec(),
                });
                to_ack.push(msg);
            }
            Ok(LogMessage::End(e)) => {
                ends.push(StoredEnd {
                    uuid: e.uuid,
                    attempt: e.attempt as i32,
                    chunks: e.chunks,
                    dropped_stdout: e.dropped_stdout,
                    dropped_stderr: e.dropped_stderr,
                    lost: e.lost,
                });
                to_ack.push(msg);
            }
            Err(e) => {
                tracing::error!(subject = %msg.subject, error = %e, "dropping malformed log message");
                let _ = msg.ack_with(AckKind::Term).await;
            }
        }
    }
    let mut delay = Duration::from_millis(200);
    while let Err(e) = store.insert_logs(&chunks, &ends).await {
        tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "store log chunks");
        for msg in &to_ack {
            let _ = msg.ack_with(AckKind::Progress).await;
        }
        if pause(shutdown, delay).await {
            return false;
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    drop(spans);
    let m = saltant_telemetry::metrics::metrics();
    m.log_stored_chunks.inc_by(chunks.len() as u64);
    m.log_stored_bytes
        .inc_by(chunks.iter().map(|c| c.data.len() as u64).sum());
    let now = time::OffsetDateTime::now_utc();
    for msg in to_ack {
        if let Ok(info) = msg.info() {
            m.log_store_lag
                .observe((now - info.published).as_seconds_f64().max(0.0));
        }
        if let Err(e) = msg.ack().await {
            tracing::debug!(error = %e, "ack log chunk (a redelivery is stored once)");
        }
    }
    let touched: BTreeSet<Uuid> = chunks
        .iter()
        .map(|c| c.uuid)
        .chain(ends.iter().map(|e| e.uuid))
        .collect();
    bus.signal_stored(touched).await;
    true
}

/// Deletes the output of instances finished more than `retention_secs` ago, 100 instances
/// per statement, every `retention_every_secs`. Each instance is looked at once in the
/// life of the process: a pass goes on from where the last one stopped.
async fn expire(store: Store, config: Config, shutdown: CancellationToken) {
    if config.retention_secs == 0 {
        return;
    }
    let age = Duration::from_secs(config.retention_secs);
    let every = Duration::from_secs(config.retention_every_secs.max(1));
    let mut cursor = None;
    loop {
        loop {
            match store.delete_expired_logs(age, 100, cursor).await {
                Ok((n, next)) => {
                    cursor = next;
                    tracing::debug!(instances = n, "retention pass");
                    if n < 100 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "delete expired output");
                    break;
                }
            }
        }
        if pause(&shutdown, every).await {
            return;
        }
    }
}

/// Sleeps `d`; `true` if shutdown came first.
async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
