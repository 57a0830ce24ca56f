//! The scheduler owns the life cycle of every instance: it turns submissions into
//! dispatches on the queue's subject, records every state change from the events stream in
//! PostgreSQL (in batches, compare-and-set), and sweeps for instances the bus never saw.

mod dispatch;
mod gauges;
mod lease;
mod lost;
mod record;
mod sweep;
mod terminate;

use async_nats::jetstream;
use lease::Lease;
use saltant_bus::{Bus, BusConfig, Durable, fetch_batch};
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
    /// Seconds between readings of the gauges of `/metrics` (instances by queue and
    /// state, queue depth, consumer lag): one pass over the instances table each.
    pub metrics_every_secs: u64,
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
            metrics_every_secs: 15,
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
    saltant_telemetry::health::starting("scheduler");
    let store = Store::connect_lazy(&store_config)?;
    let bus = Bus::connect(&bus_config, saltant_bus::Service::Scheduler).await?;
    saltant_telemetry::health::started(
        "scheduler",
        [("postgres", store.readiness()), ("nats", bus.readiness())],
    );
    let ctx = Ctx {
        bus,
        store,
        config,
        lease: Lease::default(),
        stop: shutdown,
    };
    let replica = format!(
        "{}-{}",
        saltant_telemetry::hostname(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let tasks = TaskTracker::new();
    tasks.spawn(lease::hold(ctx.clone(), replica));
    tasks.spawn(lost::run(ctx.clone()));
    tasks.spawn(dispatch::run(ctx.clone()));
    tasks.spawn(record::run(ctx.clone()));
    tasks.spawn(terminate::run(ctx.clone()));
    tasks.spawn(sweep::run(ctx.clone()));
    tasks.spawn(gauges::run(ctx.clone()));
    tasks.close();
    tracing::info!("scheduler started");
    tasks.wait().await;
    ctx.bus.close().await;
    ctx.store.pool.close().await;
    tracing::info!("scheduler stopped");
    Ok(())
}

/// What every duty of the scheduler runs with.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub bus: Bus,
    pub store: Store,
    pub config: Config,
    /// Whether this replica holds the singleton duties' lease.
    pub lease: Lease,
    pub stop: CancellationToken,
}

/// Opens (creating if needed) one of the scheduler's durable consumers, retrying until the
/// bus answers; `None` if `stop` fires first.
pub(crate) async fn open_consumer(ctx: &Ctx, durable: Durable) -> Option<Consumer> {
    loop {
        match ctx
            .bus
            .durable_consumer(&durable, Duration::from_secs(30))
            .await
        {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!(consumer = durable.name, error = %format!("{e:#}"), "open consumer");
                if pause(&ctx.stop, Duration::from_secs(1)).await {
                    return None;
                }
            }
        }
    }
}

pub(crate) type Consumer = jetstream::consumer::Consumer<jetstream::consumer::pull::Config>;

/// The next batch of up to `max` messages, waiting `expires` at a time for the first;
/// failed fetches are logged (as `what`) and tried again a second later. `None` once
/// `stop` fires.
pub(crate) async fn next_batch(
    consumer: &Consumer,
    max: usize,
    expires: Duration,
    stop: &CancellationToken,
    what: &'static str,
) -> Option<Vec<jetstream::Message>> {
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => return None,
            b = fetch_batch(consumer, max, expires) => b,
        };
        match batch {
            Ok(m) if m.is_empty() => {}
            Ok(m) => return Some(m),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "{what}");
                if pause(stop, Duration::from_secs(1)).await {
                    return None;
                }
            }
        }
    }
}

/// Waits for the next turn of a singleton duty: `every`, then only if this replica holds
/// the lease. `false` once `stop` fires.
pub(crate) async fn next_turn(every: u64, lease: &Lease, stop: &CancellationToken) -> bool {
    loop {
        if pause(stop, Duration::from_secs(every.max(1))).await {
            return false;
        }
        if lease.held() {
            return true;
        }
    }
}

/// Logs the outcome of a duty that acts on `n` instances: `done` when it did something.
pub(crate) fn report(outcome: anyhow::Result<usize>, done: &str, failed: &str) {
    match outcome {
        Ok(0) => {}
        Ok(n) => tracing::info!(instances = n, "{done}"),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "{failed}"),
    }
}

/// Sleeps `d` unless `stop` fires first; returns true if it fired.
pub(crate) async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
