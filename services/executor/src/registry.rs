//! What this executor is running, and which instances were asked to terminate. The
//! terminations bucket is watched with history (so requests made while the executor was
//! away are known when it comes back); a request for a running instance cancels its token,
//! and an instance requested before it starts never starts.

use crate::Shared;
use futures::StreamExt;
use saltant_bus::Termination;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Default)]
struct Inner {
    running: HashMap<Uuid, CancellationToken>,
    requested: HashMap<Uuid, Instant>,
    inserts: u64,
}

pub(crate) struct Registry {
    inner: Mutex<Inner>,
    /// Cancelled once the watch has caught up with the bucket's history: no work is
    /// taken before, so a request made while this executor was away is always known.
    pub synced: CancellationToken,
    /// Requests older than this are forgotten (the bucket forgets them too).
    forget_after: Duration,
}

impl Registry {
    pub fn new(forget_after: Duration) -> Self {
        Registry {
            inner: Mutex::default(),
            synced: CancellationToken::new(),
            forget_after,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain maps behind: still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a starting attempt. The token is cancelled when termination is asked for
    /// (already cancelled if it was asked for before).
    pub fn start(&self, uuid: Uuid) -> CancellationToken {
        let token = CancellationToken::new();
        let mut inner = self.lock();
        if inner.requested.contains_key(&uuid) {
            token.cancel();
        }
        inner.running.insert(uuid, token.clone());
        token
    }

    /// Whether an attempt of `uuid` runs here now.
    pub fn is_running(&self, uuid: Uuid) -> bool {
        self.lock().running.contains_key(&uuid)
    }

    pub fn finish(&self, uuid: Uuid) {
        self.lock().running.remove(&uuid);
    }

    pub fn running(&self) -> Vec<Uuid> {
        self.lock().running.keys().copied().collect()
    }

    /// Records a termination request; cancels the instance if it runs here.
    pub fn request(&self, uuid: Uuid) {
        let mut inner = self.lock();
        inner.requested.insert(uuid, Instant::now());
        inner.inserts += 1;
        if inner.inserts.is_multiple_of(4096) {
            let forget_after = self.forget_after;
            inner.requested.retain(|_, at| at.elapsed() < forget_after);
        }
        if let Some(token) = inner.running.get(&uuid) {
            tracing::info!(instance = %uuid, "termination requested");
            token.cancel();
        }
    }
}

/// Watches the terminations bucket until `stop`, watching again after any failure.
pub(crate) async fn watch(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let watch = async {
            let kv = shared.bus.terminations_kv().await?;
            let watch = kv.watch_with_history(">").await?;
            // An empty bucket delivers nothing: synced at once.
            if kv.status().await?.values() == 0 {
                shared.registry.synced.cancel();
            }
            Ok::<_, anyhow::Error>(watch)
        };
        let mut entries = tokio::select! {
            _ = stop.cancelled() => return,
            w = watch => match w {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "watch terminations");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        loop {
            let entry = tokio::select! {
                _ = stop.cancelled() => return,
                e = entries.next() => e,
            };
            match entry {
                Some(Ok(entry)) => {
                    if entry.delta == 0 {
                        shared.registry.synced.cancel();
                    }
                    if entry.value.is_empty() {
                        continue;
                    }
                    match Termination::decode(&entry.value) {
                        Ok(t) => shared.registry.request(t.uuid),
                        Err(e) => {
                            tracing::warn!(key = %entry.key, error = %e, "ignoring undecodable termination request")
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "terminations watch failed; watching again");
                    break;
                }
                None => break,
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cancel_running_and_future_attempts() {
        let r = Registry::new(Duration::from_secs(60));
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let ta = r.start(a);
        assert!(!ta.is_cancelled());
        r.request(a);
        assert!(ta.is_cancelled(), "running instance is cancelled");
        r.request(b);
        let tb = r.start(b);
        assert!(
            tb.is_cancelled(),
            "requested before start: cancelled at start"
        );
        let c = Uuid::new_v4();
        assert!(!r.start(c).is_cancelled());
        let mut running = r.running();
        running.sort();
        let mut expected = vec![a, b, c];
        expected.sort();
        assert_eq!(running, expected);
        r.finish(a);
        assert_eq!(r.running().len(), 2);
    }
}
