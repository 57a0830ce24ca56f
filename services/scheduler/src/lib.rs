//! The scheduler owns the life cycle of every instance: it turns submissions into
//! dispatches on the queue's subject, records every state change from the events stream in
//! PostgreSQL (in batches, compare-and-set), and sweeps for instances the bus never saw.

mod dispatch;
mod lease;
mod lost;
mod record;
mod sweep;
mod terminate;

use async_nats::jetstream;
use saltant_bus::{Bus, BusConfig};
use saltant_store::{Store, StoreConfig};
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Scheduler configuration (`[scheduler]`, `SALTANT_SCHEDULER__…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Most events recorded in one PostgreSQL transaction.
    pub record_batch: usize,
    /// Milliseconds a batch of events waits for more before it is recorded (states show
    /// that much later; an instance's events then share one row update).
    pub record_linger_ms: u64,
    /// Only a batch that found at least this many events waiting lingers (under load);
    /// a lone instance's state is written at once.
    pub record_linger_from: usize,
    /// Most submissions dispatched in one window of acks.
    pub dispatch_batch: usize,
    /// An instance still `created` this many seconds after its creation is submitted
    /// again (NATS was unreachable when the api answered).
    pub resubmit_after_secs: u64,
    /// Seconds between sweeps.
    pub sweep_every_secs: u64,
    /// Attempts in all for instances that do not say (1: failed is final, as the original).
    pub max_attempts: u32,
    /// Seconds before a failed attempt's retry is dispatched.
    pub retry_backoff_secs: u64,
    /// Run time limit for instances that do not set one (none by default).
    pub run_timeout_secs: Option<u64>,
    /// Seconds between checks for running instances whose executor is gone. With the
    /// heartbeat bucket's 15 s expiry, a lost instance is failed (or retried) within
    /// about 15 s + this.
    pub lost_check_every_secs: u64,
}

impl Config {
    pub(crate) fn retry_policy(&self) -> saltant_store::instances::RetryPolicy {
        saltant_store::instances::RetryPolicy {
            default_max_attempts: self.max_attempts.max(1),
            backoff_secs: self.retry_backoff_secs,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            record_batch: 1000,
            record_linger_ms: 50,
            record_linger_from: 16,
            dispatch_batch: 500,
            resubmit_after_secs: 30,
            sweep_every_secs: 10,
            max_attempts: 1,
            retry_backoff_secs: 10,
            run_timeout_secs: None,
            lost_check_every_secs: 5,
        }
    }
}

/// Runs until `shutdown`; in-flight batches finish first.
pub async fn run(
    bus_config: BusConfig,
    store_config: StoreConfig,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::connect_lazy(&store_config)?;
    let bus = Bus::connect(&bus_config, "saltant-scheduler").await?;
    let tasks = TaskTracker::new();
    let replica = format!(
        "{}-{}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "scheduler".into()),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let lease = lease::Lease::default();
    tasks.spawn(lease::hold(
        bus.clone(),
        replica,
        lease.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(lost::run(
        bus.clone(),
        store.clone(),
        config.clone(),
        lease.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(dispatch::run(
        bus.clone(),
        store.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(record::run(
        bus.clone(),
        store.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(terminate::run(
        bus.clone(),
        store.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(sweep::run(
        bus.clone(),
        store.clone(),
        config.clone(),
        lease,
        shutdown.clone(),
    ));
    tasks.close();
    tracing::info!("scheduler started");
    tasks.wait().await;
    if let Err(e) = bus.client.drain().await {
        tracing::warn!(error = %e, "drain nats connection");
    }
    store.pool.close().await;
    tracing::info!("scheduler stopped");
    Ok(())
}

/// Opens (creating if needed) one of the scheduler's durable consumers, retrying until the
/// bus answers; `None` if `stop` fires first.
pub(crate) async fn open_consumer(
    bus: &Bus,
    stream: String,
    name: &str,
    filter: String,
    stop: &CancellationToken,
) -> Option<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>> {
    loop {
        match bus
            .durable_consumer(
                stream.clone(),
                name,
                filter.clone(),
                Duration::from_secs(30),
            )
            .await
        {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!(consumer = name, error = %format!("{e:#}"), "open consumer");
                if pause(stop, Duration::from_secs(1)).await {
                    return None;
                }
            }
        }
    }
}

/// Sleeps `d` unless `stop` fires first; returns true if it fired.
pub(crate) async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
