//! The scheduler's singleton duties (sweeps, lost-executor and queue time-out checks) run
//! in one replica at a time: the holder of the `scheduler` key in the leases bucket. The
//! key is created compare-and-set, renewed every third of its time-to-live, and expires
//! when its holder dies, so another replica takes over within the TTL. Work shared through
//! consumers (submissions, events, terminations) needs no lease.

use crate::{Ctx, pause};
use async_nats::jetstream::kv;
use saltant_bus::{Bus, LEASE_TTL_SECS};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const KEY: &str = "scheduler";

/// Whether this replica holds the lease right now.
#[derive(Clone, Default)]
pub(crate) struct Lease(Arc<AtomicBool>);

impl Lease {
    pub fn held(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub(crate) async fn hold(ctx: Ctx, id: String) {
    let Ctx {
        bus, lease, stop, ..
    } = ctx;
    let every = Duration::from_secs((LEASE_TTL_SECS / 3).max(1));
    let mut revision = None;
    loop {
        revision = match renew(&bus, &id, revision).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "scheduler lease");
                None
            }
        };
        let held = revision.is_some();
        if held != lease.held() {
            tracing::info!(held, replica = %id, "scheduler lease");
        }
        lease.0.store(held, Ordering::Release);
        if pause(&stop, every).await {
            break;
        }
    }
    if let Some(rev) = revision {
        lease.0.store(false, Ordering::Release);
        // Let another replica take over at once instead of after the TTL.
        let released = async {
            bus.leases_kv()
                .await?
                .delete_expect_revision(KEY, Some(rev))
                .await?;
            Ok::<_, anyhow::Error>(())
        };
        if let Err(e) = released.await {
            tracing::warn!(error = %format!("{e:#}"), "release the scheduler lease (it expires)");
        }
    }
}

/// Takes the lease if it is free (`revision` none) or renews it; the new revision if held.
async fn renew(bus: &Bus, id: &str, revision: Option<u64>) -> anyhow::Result<Option<u64>> {
    let kv = bus.leases_kv().await?;
    let Some(rev) = revision else {
        return match kv.create(KEY, id.to_owned().into()).await {
            Ok(rev) => Ok(Some(rev)),
            // Another replica holds it.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e.into()),
        };
    };
    match kv.update(KEY, id.to_owned().into(), rev).await {
        Ok(rev) => Ok(Some(rev)),
        Err(e) => {
            tracing::warn!(error = %e, "lost the scheduler lease");
            Ok(None)
        }
    }
}
