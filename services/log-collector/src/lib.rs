//! The log-collector turns the live logs stream into durable logs: chunks are stored in
//! PostgreSQL in batches (idempotently, keyed by instance, attempt and sequence number) and
//! acked only once stored.

use async_nats::jetstream::AckKind;
use saltant_bus::{Bus, BusConfig, LogChunk, fetch_batch_bytes};
use saltant_store::logs::LogChunk as StoredChunk;
use saltant_store::{Store, StoreConfig};
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Log-collector configuration (`[log_collector]`, `SALTANT_LOG_COLLECTOR__…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Most chunks stored in one statement.
    pub batch: usize,
    /// Most bytes of output in one batch (bounds the collector's memory).
    pub batch_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batch: 1000,
            batch_bytes: 8 * 1024 * 1024,
        }
    }
}

/// A chunk as the store keeps it.
fn stored(c: LogChunk) -> StoredChunk {
    StoredChunk {
        uuid: c.uuid,
        attempt: c.attempt as i32,
        seq: c.seq,
        stream: c.stream.as_str(),
        data: c.data.to_vec(),
    }
}

pub async fn run(
    bus_config: BusConfig,
    store_config: StoreConfig,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::connect_lazy(&store_config)?;
    let bus = Bus::connect(&bus_config, "saltant-log-collector").await?;
    let consumer = bus.log_collector_consumer().await?;
    tracing::info!("log-collector started");
    'outer: loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = fetch_batch_bytes(&consumer, config.batch, config.batch_bytes, Duration::from_millis(500)) => b,
        };
        let messages = match batch {
            Ok(m) if m.is_empty() => continue,
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "fetch log chunks");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut chunks = Vec::with_capacity(messages.len());
        let mut to_ack = Vec::with_capacity(messages.len());
        for msg in messages {
            match LogChunk::decode(&msg.subject, msg.headers.as_ref(), &msg.payload) {
                Ok(c) => {
                    chunks.push(stored(c));
                    to_ack.push(msg);
                }
                Err(e) => {
                    tracing::error!(subject = %msg.subject, error = %e, "dropping malformed log chunk");
                    let _ = msg.ack_with(AckKind::Term).await;
                }
            }
        }
        let mut delay = Duration::from_millis(200);
        while let Err(e) = store.insert_log_chunks(&chunks).await {
            tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "store log chunks");
            tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        for msg in to_ack {
            if let Err(e) = msg.ack().await {
                tracing::debug!(error = %e, "ack log chunk (a redelivery is stored once)");
            }
        }
    }
    bus.close().await;
    store.pool.close().await;
    tracing::info!("log-collector stopped");
    Ok(())
}
