//! Taking work fairly from many queues. One dispatcher per executor hands free slots to the
//! queues known to have work, in turn; no slot ever waits on an empty queue, so an idle
//! queue costs nothing and a loaded one is never starved by idle ones.
//!
//! A queue becomes *ready* when the scheduler signals it (`<p>.ready.<queue>`, after its
//! dispatches are stored) or when a rescan of the dispatch stream's subjects finds
//! messages this executor does not hold (redeliveries, signals missed while disconnected).
//! A ready queue gets a no-wait pull for its share of the free slots; it stays ready while
//! pulls come back full, and leaves the turn when one comes back short. See docs/bus.md.

use crate::{Shared, run};
use async_nats::jetstream::consumer::{Consumer, pull};
use futures::StreamExt;
use saltant_bus::fetch_now;
use saltant_core::QueueName;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A pull answered later than this is given up (the server answers a no-wait pull at once;
/// only a broken connection is this slow).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct QueueState {
    /// In the turn order (`Inner::ready`).
    queued: bool,
    /// A pull is under way.
    fetching: bool,
    /// Bumped by every sign of work; a pull that came back short while it moved was
    /// racing new work, so the queue stays ready.
    signals: u64,
    /// Dispatches of this queue running here (delivered, not yet acked).
    in_flight: u64,
    consumer: Option<Consumer<pull::Config>>,
}

#[derive(Default)]
struct Inner {
    queues: HashMap<QueueName, QueueState>,
    ready: VecDeque<QueueName>,
}

/// Which queues have work, and whose turn it is.
pub(crate) struct Board {
    /// `None`: every queue.
    served: Option<HashSet<QueueName>>,
    inner: Mutex<Inner>,
    changed: Notify,
}

/// A queue's turn: pull for `share` slots.
struct Turn {
    queue: QueueName,
    signals: u64,
    consumer: Option<Consumer<pull::Config>>,
}

impl Board {
    pub fn new(served: Option<HashSet<QueueName>>) -> Board {
        Board {
            served,
            inner: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain maps: still consistent after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serves(&self, queue: &QueueName) -> bool {
        self.served.as_ref().is_none_or(|s| s.contains(queue))
    }

    /// A sign that `queue` has work.
    pub fn mark(&self, queue: QueueName) {
        if !self.serves(&queue) {
            return;
        }
        let mut inner = self.lock();
        let state = inner.queues.entry(queue.clone()).or_default();
        state.signals += 1;
        if !state.queued && !state.fetching {
            state.queued = true;
            inner.ready.push_back(queue);
            drop(inner);
            self.changed.notify_one();
        }
    }

    fn has_ready(&self) -> bool {
        !self.lock().ready.is_empty()
    }

    /// The next ready queue and how many ready queues there were (itself included).
    fn take(&self) -> Option<(Turn, usize)> {
        let mut inner = self.lock();
        let waiting = inner.ready.len();
        let queue = inner.ready.pop_front()?;
        let state = inner.queues.entry(queue.clone()).or_default();
        state.queued = false;
        state.fetching = true;
        let turn = Turn {
            queue,
            signals: state.signals,
            consumer: state.consumer.clone(),
        };
        Some((turn, waiting))
    }

    /// A pull ended: `full` if it brought all it asked for (more may wait).
    fn pulled(&self, turn: &Turn, full: bool, consumer: Option<Consumer<pull::Config>>) {
        let mut inner = self.lock();
        let state = inner.queues.entry(turn.queue.clone()).or_default();
        state.fetching = false;
        state.consumer = consumer;
        if full || state.signals != turn.signals {
            state.queued = true;
            inner.ready.push_back(turn.queue.clone());
            drop(inner);
            self.changed.notify_one();
        }
    }

    fn started(&self, queue: &QueueName, n: u64) {
        self.lock()
            .queues
            .entry(queue.clone())
            .or_default()
            .in_flight += n;
    }

    fn finished(&self, queue: &QueueName) {
        if let Some(state) = self.lock().queues.get_mut(queue) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }

    /// Marks the queues whose dispatch subject holds more messages than run here.
    fn rescanned(&self, counts: HashMap<QueueName, u64>) {
        let more: Vec<QueueName> = {
            let inner = self.lock();
            counts
                .into_iter()
                .filter(|(q, n)| *n > inner.queues.get(q).map_or(0, |s| s.in_flight))
                .map(|(q, _)| q)
                .collect()
        };
        for q in more {
            self.mark(q);
        }
    }
}

/// Serves `served` (every queue if `None`) until `stop`; attempts go to `work`.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    served: Option<HashSet<QueueName>>,
    stop: CancellationToken,
    work: TaskTracker,
) {
    // Termination requests made while this executor was away must be known first.
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = shared.registry.synced.cancelled() => {}
    }
    let board = Arc::new(Board::new(served));
    let helpers = TaskTracker::new();
    helpers.spawn(listen(shared.clone(), board.clone(), stop.clone()));
    helpers.spawn(rescan(shared.clone(), board.clone(), stop.clone()));
    let pulls = TaskTracker::new();
    loop {
        // A ready queue first, then free slots: nothing is held while there is no work.
        while !board.has_ready() {
            tokio::select! {
                _ = stop.cancelled() => return finish(helpers, pulls).await,
                _ = board.changed.notified() => {}
            }
        }
        let first = tokio::select! {
            _ = stop.cancelled() => return finish(helpers, pulls).await,
            p = shared.slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return finish(helpers, pulls).await,
            },
        };
        let mut permits = vec![first];
        while let Ok(p) = shared.slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        // Each ready queue in turn gets its share of the free slots.
        while !permits.is_empty() {
            let Some((turn, waiting)) = board.take() else {
                break;
            };
            let share = permits.len().div_ceil(waiting);
            let mine: Vec<_> = permits.drain(..share).collect();
            pulls.spawn(pull(
                shared.clone(),
                board.clone(),
                turn,
                mine,
                work.clone(),
            ));
        }
    }
}

async fn finish(helpers: TaskTracker, pulls: TaskTracker) {
    helpers.close();
    pulls.close();
    helpers.wait().await;
    pulls.wait().await;
}

/// One no-wait pull of a queue for `permits.len()` attempts; every message delivered runs
/// on a permit of its own.
async fn pull(
    shared: Arc<Shared>,
    board: Arc<Board>,
    turn: Turn,
    mut permits: Vec<OwnedSemaphorePermit>,
    work: TaskTracker,
) {
    let asked = permits.len();
    let consumer = match turn.consumer.clone() {
        Some(c) => Ok(c),
        None => shared.bus.dispatch_consumer(&turn.queue).await,
    };
    let consumer = match consumer {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(queue = %turn.queue, error = %format!("{e:#}"), "open dispatch consumer; the next rescan tries again");
            return board.pulled(&turn, false, None);
        }
    };
    let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch_now(&consumer, asked)).await;
    let messages = match fetched {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            // The consumer may be gone (deleted, or NATS lost its state): open it again.
            tracing::warn!(queue = %turn.queue, error = %format!("{e:#}"), "pull dispatches; the next rescan tries again");
            return board.pulled(&turn, false, None);
        }
        Err(_) => {
            tracing::warn!(queue = %turn.queue, "pull dispatches timed out; the next rescan tries again");
            return board.pulled(&turn, false, Some(consumer));
        }
    };
    let full = messages.len() >= asked;
    board.started(&turn.queue, messages.len() as u64);
    for msg in messages {
        let Some(permit) = permits.pop() else {
            // Cannot happen (max_messages = permits), but never run unslotted work.
            let _ = msg
                .ack_with(async_nats::jetstream::AckKind::Nak(None))
                .await;
            board.finished(&turn.queue);
            continue;
        };
        let (shared, board, queue) = (shared.clone(), board.clone(), turn.queue.clone());
        work.spawn(async move {
            run::run_attempt(shared, msg, permit).await;
            board.finished(&queue);
        });
    }
    board.pulled(&turn, full, Some(consumer));
}

/// Follows the scheduler's ready signals of the served queues.
async fn listen(shared: Arc<Shared>, board: Arc<Board>, stop: CancellationToken) {
    let names = &shared.bus.names;
    let subjects: Vec<String> = match &board.served {
        None => vec![names.ready_all()],
        Some(queues) => queues.iter().map(|q| names.ready(q)).collect(),
    };
    let mut subscriptions = Vec::new();
    for subject in subjects {
        loop {
            match shared.bus.client.subscribe(subject.clone()).await {
                Ok(s) => break subscriptions.push(s),
                Err(e) => {
                    tracing::warn!(%subject, error = %e, "subscribe to ready signals");
                    if run::sleep_or_stop(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }
    let mut signals = futures::stream::select_all(subscriptions);
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = signals.next() => m,
        };
        let Some(msg) = msg else { return };
        if let Some(queue) = names.queue_of(&msg.subject) {
            board.mark(queue);
        }
    }
}

/// Looks at the dispatch stream now and then for work no signal announced.
async fn rescan(shared: Arc<Shared>, board: Arc<Board>, stop: CancellationToken) {
    let every = Duration::from_millis(shared.config.rescan_ms.max(50));
    loop {
        match shared.bus.queues_with_dispatches().await {
            Ok(counts) => board.rescanned(counts),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "rescan dispatch stream"),
        }
        if run::sleep_or_stop(&stop, every).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> QueueName {
        QueueName::parse(name).expect("valid")
    }

    #[test]
    fn ready_queues_take_turns_and_leave_when_drained() {
        let b = Board::new(None);
        b.mark(q("a"));
        b.mark(q("b"));
        b.mark(q("a")); // already ready: one turn
        let (ta, waiting) = b.take().expect("a");
        assert_eq!((ta.queue.as_str(), waiting), ("a", 2));
        let (tb, waiting) = b.take().expect("b");
        assert_eq!((tb.queue.as_str(), waiting), ("b", 1));
        assert!(b.take().is_none(), "a and b are being pulled");
        b.pulled(&ta, true, None); // full: a goes to the back
        b.pulled(&tb, false, None); // short: b leaves
        assert_eq!(b.take().expect("a again").0.queue.as_str(), "a");
        assert!(b.take().is_none());
    }

    #[test]
    fn a_signal_during_a_short_pull_keeps_the_queue_ready() {
        let b = Board::new(None);
        b.mark(q("a"));
        let (t, _) = b.take().expect("a");
        b.mark(q("a")); // new work while the pull was under way
        assert!(b.take().is_none(), "not twice at once");
        b.pulled(&t, false, None);
        assert_eq!(b.take().expect("a stays").0.queue.as_str(), "a");
    }

    #[test]
    fn unserved_queues_and_work_held_here_are_ignored() {
        let b = Board::new(Some([q("mine")].into_iter().collect()));
        b.mark(q("other"));
        assert!(b.take().is_none());
        b.started(&q("mine"), 2);
        b.rescanned([(q("mine"), 2), (q("other"), 5)].into_iter().collect());
        assert!(
            b.take().is_none(),
            "the 2 messages are the ones running here"
        );
        b.rescanned([(q("mine"), 3)].into_iter().collect());
        assert_eq!(b.take().expect("one more").0.queue.as_str(), "mine");
    }
}
