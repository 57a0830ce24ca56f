//! The life of one attempt: registered, checked, claimed (`claim`), `running` event, run
//! in its runtime (`runtime`) under its time limit, results uploaded, slot freed, final
//! event, ack. The attempt leaves the registry when its guard drops, however it ends.

use crate::claim::{self, Verdict};
use crate::runtime::{self, Outcome};
use crate::{Shared, results};
use async_nats::jetstream::{self, AckKind};
use saltant_bus::{Dispatch, Event, trace};
use saltant_core::State;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Returns true if `stop` fired.
pub(crate) async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Runs the attempt `msg` dispatches on `slot`, in a span of its own that continues the
/// dispatch's trace.
pub(crate) async fn run_attempt(
    shared: Arc<Shared>,
    msg: jetstream::Message,
    slot: OwnedSemaphorePermit,
) {
    let dispatch = match Dispatch::decode(&msg.payload) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, subject = %msg.subject, "dropping undecodable dispatch");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        }
    };
    let span = tracing::info_span!("run instance", instance = %dispatch.uuid, attempt = dispatch.attempt, queue = %dispatch.queue, executor = %shared.id, otel.status_code = tracing::field::Empty);
    trace::set_parent(&span, msg.headers.as_ref());
    attempt(shared, msg, dispatch, slot).instrument(span).await;
}

async fn attempt(
    shared: Arc<Shared>,
    msg: jetstream::Message,
    d: Dispatch,
    slot: OwnedSemaphorePermit,
) {
    let Some(registered) = shared.registry.start(d.uuid) else {
        // Our own attempt, redelivered while it runs: the running copy acks it.
        tracing::debug!("dispatch redelivered while running here");
        return;
    };
    if let Some(event) = not_startable(&shared, &d, &registered.cancel) {
        return skip(&shared, &msg, Some(event)).await;
    }
    match claim::claim(&shared, &d).await {
        Verdict::Run => {}
        Verdict::Skip => return skip(&shared, &msg, None).await,
        Verdict::Fail(reason) => {
            // Reported by this executor, under its own name: the broker and the scheduler
            // accept an executor's events only under the name it publishes as.
            let mut e = event(&shared, &d, State::Failed);
            e.reason = Some(reason);
            return skip(&shared, &msg, Some(e)).await;
        }
        Verdict::Later => {
            let wait = Duration::from_secs(shared.bus.config.dispatch_ack_wait_secs.max(1));
            let _ = msg.ack_with(AckKind::Nak(Some(wait))).await;
            return;
        }
        Verdict::Unknown => return,
    }
    let (finished, running) = execute(&shared, &msg, &d, &registered.cancel, slot).await;
    report(&shared, &msg, &d, finished, running).await;
}

/// An event of `d` from this executor.
fn event(shared: &Shared, d: &Dispatch, state: State) -> Event {
    let mut e = Event::new(d.uuid, d.queue.clone(), d.attempt, state);
    e.executor = Some(shared.id.clone());
    e
}

/// The event ending an attempt that must not start: termination requested before its
/// start, or its queue time-out passed.
fn not_startable(shared: &Shared, d: &Dispatch, cancel: &CancellationToken) -> Option<Event> {
    let (state, reason) = if cancel.is_cancelled() {
        // Asked to terminate before it started: it never starts.
        tracing::info!("termination was requested before start; not running");
        (State::Terminated, "terminated before it started")
    } else if d.start_by.is_some_and(|t| chrono::Utc::now() > t) {
        tracing::info!("queue time-out passed before start; not running");
        (State::Failed, "not started within its queue time-out")
    } else {
        return None;
    };
    let mut e = event(shared, d, state);
    e.reason = Some(reason.to_owned());
    e.no_retry = state == State::Failed;
    Some(e)
}

/// Ends an attempt that is not run here: publishes `event` (if any) and acks the dispatch.
async fn skip(shared: &Shared, msg: &jetstream::Message, event: Option<Event>) {
    if let Some(e) = event
        && let Err(err) = publish_event(shared, &e).await
    {
        tracing::warn!(error = %format!("{err:#}"), "publish event; leaving the dispatch for redelivery");
        return;
    }
    let _ = msg.ack().await;
}

/// Runs the claimed attempt: `running` goes out (the handle says when it is stored), the
/// task runs under its time limit with the dispatch kept alive, its files are uploaded,
/// and its slot goes to the next one while the outcome is reported.
async fn execute(
    shared: &Arc<Shared>,
    msg: &jetstream::Message,
    d: &Dispatch,
    cancel: &CancellationToken,
    slot: OwnedSemaphorePermit,
) -> (Finished, JoinHandle<anyhow::Result<()>>) {
    // `running` goes out while the task starts: the claim already makes the attempt ours,
    // and the final event is published only once `running` is stored, so their order holds.
    let running = {
        let (shared, running) = (shared.clone(), event(shared, d, State::Running));
        tokio::spawn(
            async move { publish_event(&shared, &running).await }
                .instrument(tracing::Span::current()),
        )
    };
    observe_start(shared, d);
    let started = std::time::Instant::now();
    let work = async {
        let run = runtime::run(shared, d, cancel);
        let outcome = time_limited(d.run_timeout_secs, cancel, run).await;
        let results = results::upload(shared, d).await;
        Finished { outcome, results }
    };
    // Keep the dispatch alive while the attempt runs, however long.
    let every = Duration::from_secs((shared.bus.config.dispatch_ack_wait_secs / 3).max(1));
    let finished = tokio::select! {
        finished = work => finished,
        never = keep_alive(msg, every) => match never {},
    };
    // The task is over: its slot goes to the next one while the outcome is reported.
    drop(slot);
    shared.observe_slots();
    saltant_telemetry::metrics::metrics()
        .run_duration
        .get_or_create(&saltant_telemetry::metrics::QueueStateLabels {
            queue: d.queue.to_string(),
            state: finished.outcome.state.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    if finished.outcome.state != State::Successful {
        tracing::Span::current().record("otel.status_code", "ERROR");
    }
    (finished, running)
}

/// The attempt starts: the start-latency metric (from the instance's creation) and the
/// slots gauge move.
fn observe_start(shared: &Shared, d: &Dispatch) {
    shared.observe_slots();
    if let Some(created) = d.created_at {
        let waited = (chrono::Utc::now() - created).to_std().unwrap_or_default();
        saltant_telemetry::metrics::metrics()
            .start_latency
            .get_or_create(&saltant_telemetry::metrics::QueueLabels {
                queue: d.queue.to_string(),
            })
            .observe(waited.as_secs_f64());
    }
}

/// How an attempt that ran ended, and the digest of the results manifest it stored.
struct Finished {
    outcome: Outcome,
    results: Option<String>,
}

/// Runs `run` under the time limit `secs`: once it passes, the attempt is cancelled like a
/// termination, and reported as a failure.
async fn time_limited(
    secs: Option<u64>,
    cancel: &CancellationToken,
    run: impl Future<Output = Outcome>,
) -> Outcome {
    let Some(secs) = secs else {
        return run.await;
    };
    tokio::pin!(run);
    tokio::select! {
        outcome = &mut run => outcome,
        () = tokio::time::sleep(Duration::from_secs(secs)) => {
            cancel.cancel();
            let outcome = run.await;
            if outcome.state != State::Terminated {
                return outcome;
            }
            Outcome {
                state: State::Failed,
                exit_code: outcome.exit_code,
                reason: Some(format!("timed out after {secs} s")),
            }
        }
    }
}

/// Tells the server every `every` that the dispatch is still being worked on; never ends.
async fn keep_alive(msg: &jetstream::Message, every: Duration) -> Infallible {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = msg.ack_with(AckKind::Progress).await {
            tracing::warn!(error = %e, "report progress");
        }
    }
}

/// Publishes the final event once `running` is stored, retrying until it is stored too
/// (or until shutdown kills the attempt: the dispatch then redelivers); then acks.
async fn report(
    shared: &Shared,
    msg: &jetstream::Message,
    d: &Dispatch,
    Finished { outcome, results }: Finished,
    running: JoinHandle<anyhow::Result<()>>,
) {
    if let Ok(Err(e)) = running.await {
        // Running anyway: a redelivery would only be skipped. The final event, retried
        // until stored, records the outcome.
        tracing::warn!(error = %format!("{e:#}"), "publish running event");
    }
    let mut fin = event(shared, d, outcome.state);
    fin.exit_code = outcome.exit_code;
    fin.reason = outcome.reason;
    fin.results_digest = results;
    tracing::info!(state = %fin.state, exit_code = ?fin.exit_code, reason = ?fin.reason, "attempt finished");
    // The final event must be stored before the dispatch is acked.
    let mut delay = Duration::from_millis(100);
    while let Err(e) = publish_event(shared, &fin).await {
        tracing::warn!(error = %format!("{e:#}"), "publish final event; retrying");
        if shared.kill_all.is_cancelled() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    // Not awaited: the final event is stored, so a lost ack only redelivers the dispatch,
    // whose attempt is claimed and finished (skipped).
    if let Err(e) = msg.ack().await {
        tracing::warn!(error = %e, "ack dispatch (the final event is stored; a redelivery will be skipped)");
    }
}

/// Publishes `event` with the current trace and waits until the server stores it.
pub(crate) async fn publish_event(shared: &Shared, event: &Event) -> anyhow::Result<()> {
    shared.bus.publish_event(event).await?.await?;
    Ok(())
}
