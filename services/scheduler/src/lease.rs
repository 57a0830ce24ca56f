//! The scheduler's singleton duties (sweeps, lost-executor and queue time-out checks) run
//! in one replica at a time: the holder of the `scheduler` key in the leases bucket. The
//! key is created compare-and-set, renewed every third of its time-to-live, and expires
//! when its holder dies, so another replica takes over within the TTL. Work shared through
//! consumers (submissions, events, terminations) needs no lease.

use saltant_bus::{Bus, LEASE_TTL_SECS};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const KEY: &str = "scheduler";

/// Whether this replica holds the lease right now.
#[derive(Clone, Default)]
pub(crate) struct Lease(Arc<AtomicBool>);

impl Lease {
    pub fn held(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub(crate) async fn hold(bus: Bus, id: String, lease: Lease, stop: CancellationToken) {
    let every = Duration::from_secs((LEASE_TTL_SECS / 3).max(1));
    let mut revision = None;
    loop {
        let step = async {
            let kv = bus.leases_kv().await?;
            revision = match revision {
                None => kv.create(KEY, id.clone().into()).await.ok(),
                Some(rev) => match kv.update(KEY, id.clone().into(), rev).await {
                    Ok(rev) => Some(rev),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the scheduler lease");
                        None
                    }
                },
            };
            Ok::<_, anyhow::Error>(())
        };
        if let Err(e) = step.await {
            tracing::warn!(error = %format!("{e:#}"), "scheduler lease");
            revision = None;
        }
        let held = revision.is_some();
        if held != lease.held() {
            tracing::info!(held, replica = %id, "scheduler lease");
        }
        lease.0.store(held, Ordering::Release);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if let Some(rev) = revision {
        lease.0.store(false, Ordering::Release);
        // Let another replica take over at once instead of after the TTL.
        if let Ok(kv) = bus.leases_kv().await {
            let _ = kv.delete_expect_revision(KEY, Some(rev)).await;
        }
    }
}
