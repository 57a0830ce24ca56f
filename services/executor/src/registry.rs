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

    /// Registers a starting attempt of `uuid`; `None` if one runs here already (its
    /// dispatch was redelivered). The attempt stays registered until the guard is dropped.
    pub fn start(&self, uuid: Uuid) -> Option<Attempt<'_>> {
        let token = CancellationToken::new();
        let mut inner = self.lock();
        if inner.running.contains_key(&uuid) {
            return None;
        }
        if inner.requested.contains_key(&uuid) {
            token.cancel();
        }
        inner.running.insert(uuid, token.clone());
        Some(Attempt {
            registry: self,
            uuid,
            cancel: token,
        })
    }

    /// Instances running here.
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

/// An attempt registered as running here; dropping it ends the attempt in the registry.
pub(crate) struct Attempt<'a> {
    registry: &'a Registry,
    uuid: Uuid,
    /// Cancelled when termination is asked for (already cancelled if it was asked for
    /// before the start).
    pub cancel: CancellationToken,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.registry.lock().running.remove(&self.uuid);
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
                        Ok(t) => {
                            let span =
                                tracing::info_span!("terminate", instance = %t.uuid, by = ?t.by);
                            saltant_bus::trace::set_parent_traceparent(&span, t.trace.as_deref());
                            span.in_scope(|| tracing::debug!("termination requested"));
                            shared.registry.request(t.uuid);
                        }
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
        let ta = r.start(a).expect("not running");
        assert!(!ta.cancel.is_cancelled());
        r.request(a);
        assert!(ta.cancel.is_cancelled(), "running instance is cancelled");
        r.request(b);
        let tb = r.start(b).expect("not running");
        assert!(
            tb.cancel.is_cancelled(),
            "requested before start: cancelled at start"
        );
        let c = Uuid::new_v4();
        let tc = r.start(c).expect("not running");
        assert!(!tc.cancel.is_cancelled());
        let mut running = r.running();
        running.sort();
        let mut expected = vec![a, b, c];
        expected.sort();
        assert_eq!(running, expected);
        drop(ta);
        assert_eq!(r.running().len(), 2);
        drop((tb, tc));
    }

    #[test]
    fn an_attempt_runs_once_until_its_guard_is_dropped() {
        let r = Registry::new(Duration::from_secs(60));
        let a = Uuid::new_v4();
        let first = r.start(a).expect("not running");
        assert!(r.start(a).is_none(), "a redelivery while it runs");
        drop(first);
        assert!(r.running().is_empty());
        assert!(r.start(a).is_some(), "registered again after it ended");
    }
}
