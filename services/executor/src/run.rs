//! The life of one attempt: claim, `running` event, run, output, final event, ack.

use crate::{Shared, docker, host, results, singularity};
use async_nats::jetstream::{self, AckKind};
use saltant_bus::{Dispatch, Event, trace};
use saltant_core::{State, TaskKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Returns true if `stop` fired.
pub(crate) async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// The outcome of running an attempt.
pub(crate) struct Outcome {
    pub state: State,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

pub(crate) async fn run_attempt(
    shared: Arc<Shared>,
    msg: jetstream::Message,
    permit: OwnedSemaphorePermit,
) {
    let dispatch = match Dispatch::decode(&msg.payload) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, subject = %msg.subject, "dropping undecodable dispatch");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        }
    };
    let span = tracing::info_span!("run instance", instance = %dispatch.uuid, attempt = dispatch.attempt, queue = %dispatch.queue, executor = %shared.id);
    trace::set_parent(&span, msg.headers.as_ref());
    attempt(shared, msg, dispatch, permit)
        .instrument(span)
        .await;
}

/// Ends an attempt that is not run here: publishes `event` (if any) and acks the dispatch.
async fn skip(shared: &Shared, msg: &jetstream::Message, d: &Dispatch, event: Option<Event>) {
    if let Some(e) = event
        && let Err(err) = publish_event(shared, &e).await
    {
        tracing::warn!(error = %format!("{err:#}"), "publish event; leaving the dispatch for redelivery");
        shared.registry.finish(d.uuid);
        return;
    }
    let _ = msg.ack().await;
    shared.registry.finish(d.uuid);
}

/// The value of a claim: who claimed the attempt, in which life.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Claim {
    executor: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// What to do with a dispatch whose attempt is claimed already.
enum Claimed {
    /// Our own claim in this life, whose answer was lost (NATS restarted): run it.
    Ours,
    /// A live executor holds it: let the message come back later.
    Held,
    /// Its claimant is gone (or restarted without it): the attempt is lost.
    Lost(String),
}

async fn claimed(
    shared: &Shared,
    kv: &async_nats::jetstream::kv::Store,
    key: &str,
) -> anyhow::Result<Claimed> {
    let me = Claim {
        executor: shared.id.clone(),
        started_at: shared.started_at,
    };
    let Some(value) = kv.get(key).await? else {
        // Gone meanwhile (expired): treat as held, the redelivery decides.
        return Ok(Claimed::Held);
    };
    let Ok(claim) = serde_json::from_slice::<Claim>(&value) else {
        return Ok(Claimed::Lost("its claim is unreadable".into()));
    };
    if claim == me {
        return Ok(Claimed::Ours);
    }
    let alive = match shared
        .bus
        .executors_kv()
        .await?
        .get(&claim.executor)
        .await?
    {
        Some(beat) => {
            saltant_bus::Heartbeat::decode(&beat).is_ok_and(|hb| hb.started_at == claim.started_at)
        }
        None => false,
    };
    Ok(if alive {
        Claimed::Held
    } else {
        Claimed::Lost(format!(
            "executor {} was lost while it held the attempt",
            claim.executor
        ))
    })
}

async fn attempt(
    shared: Arc<Shared>,
    msg: jetstream::Message,
    d: Dispatch,
    slot: OwnedSemaphorePermit,
) {
    if shared.registry.is_running(d.uuid) {
        // Our own attempt, redelivered while it runs: the running copy acks it.
        tracing::debug!("dispatch redelivered while running here");
        return;
    }
    let cancel = shared.registry.start(d.uuid);
    let ended = |state, reason: &str| {
        let mut e = Event::new(d.uuid, d.queue.clone(), d.attempt, state);
        e.executor = Some(shared.id.clone());
        e.reason = Some(reason.to_owned());
        e
    };
    if cancel.is_cancelled() {
        // Asked to terminate before it started: it never starts.
        tracing::info!("termination was requested before start; not running");
        let e = ended(State::Terminated, "terminated before it started");
        return skip(&shared, &msg, &d, Some(e)).await;
    }
    if d.start_by.is_some_and(|t| chrono::Utc::now() > t) {
        tracing::info!("queue time-out passed before start; not running");
        let mut e = ended(State::Failed, "not started within its queue time-out");
        e.no_retry = true;
        return skip(&shared, &msg, &d, Some(e)).await;
    }
    // Claim the attempt (compare-and-set): a redelivered dispatch whose attempt another
    // executor (or this one, in an earlier life) already started never runs twice.
    let key = format!("{}.{}", d.uuid, d.attempt);
    let value = serde_json::to_vec(&Claim {
        executor: shared.id.clone(),
        started_at: shared.started_at,
    })
    .unwrap_or_default();
    let claim = async {
        let kv = shared.bus.claims_kv().await?;
        // (verdict, whether this very call created the claim)
        match kv.create(&key, value.into()).await {
            Ok(_) => Ok((Claimed::Ours, true)),
            Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
                Ok((claimed(&shared, &kv, &key).await?, false))
            }
            Err(e) => Err(anyhow::Error::new(e)),
        }
    };
    match claim.await {
        Ok((Claimed::Ours, true)) => {}
        Ok((verdict, _)) => {
            // Claimed before: what the events stream says of the attempt decides.
            let last = match shared.bus.last_event(&d.queue, d.uuid).await {
                Ok(last) => last,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "read the events stream; leaving the dispatch for redelivery");
                    shared.registry.finish(d.uuid);
                    return;
                }
            };
            let later = last.as_ref().is_some_and(|e| e.attempt > d.attempt);
            let this = last.as_ref().filter(|e| e.attempt == d.attempt);
            let finished = later || this.is_some_and(|e| e.state.is_final());
            let started = later || this.is_some_and(|e| e.state.rank() >= State::Running.rank());
            match verdict {
                // Our claim in this life whose answer was lost: run it unless it started.
                Claimed::Ours if !started => {}
                Claimed::Held if !finished => {
                    tracing::info!(
                        "attempt claimed by a live executor; the dispatch comes back later"
                    );
                    let wait = Duration::from_secs(shared.bus.config.dispatch_ack_wait_secs.max(1));
                    let _ = msg.ack_with(AckKind::Nak(Some(wait))).await;
                    shared.registry.finish(d.uuid);
                    return;
                }
                Claimed::Lost(reason) if !finished => {
                    tracing::warn!(%reason, "attempt already claimed by a lost executor");
                    let mut e = Event::new(d.uuid, d.queue.clone(), d.attempt, State::Failed);
                    e.reason = Some(reason);
                    return skip(&shared, &msg, &d, Some(e)).await;
                }
                _ => {
                    tracing::info!(
                        "attempt already claimed (a redelivered dispatch); not running it again"
                    );
                    return skip(&shared, &msg, &d, None).await;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "claim attempt; leaving the dispatch for redelivery");
            shared.registry.finish(d.uuid);
            return;
        }
    }
    // `running` goes out while the task starts: the claim already makes the attempt ours,
    // and the final event is published only once `running` is stored, so their order holds.
    let mut running = Event::new(d.uuid, d.queue.clone(), d.attempt, State::Running);
    running.executor = Some(shared.id.clone());
    let running = {
        let shared = shared.clone();
        tokio::spawn(
            async move { publish_event(&shared, &running).await }
                .instrument(tracing::Span::current()),
        )
    };

    // The run time limit cancels like a termination, and is reported as a failure.
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timer = d.run_timeout_secs.map(|secs| {
        let cancel = cancel.clone();
        let timed_out = timed_out.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
            cancel.cancel();
        })
    });

    // Keep the dispatch alive while the attempt runs, however long.
    let progress_every = Duration::from_secs((shared.bus.config.dispatch_ack_wait_secs / 3).max(1));
    let keepalive = CancellationToken::new();
    let ka = keepalive.clone();
    let ack_msg = msg.clone();
    let keepalive_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(progress_every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = ka.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = ack_msg.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %e, "report progress");
                    }
                }
            }
        }
    });

    let outcome = match d.spec.kind {
        TaskKind::Executable => host::run(&shared, &d, &cancel).await,
        TaskKind::Docker => docker::run(&shared, &d, &cancel).await,
        TaskKind::Singularity => singularity::run(&shared, &d, &cancel).await,
    };
    if let Some(t) = timer {
        t.abort();
    }
    let outcome = if timed_out.load(std::sync::atomic::Ordering::SeqCst)
        && outcome.state == State::Terminated
    {
        Outcome {
            state: State::Failed,
            exit_code: outcome.exit_code,
            reason: Some(format!(
                "timed out after {} s",
                d.run_timeout_secs.unwrap_or_default()
            )),
        }
    } else {
        outcome
    };
    results::upload(&shared, &d).await;
    // The task is over: its slot goes to the next one while the outcome is reported.
    drop(slot);
    keepalive.cancel();
    let _ = keepalive_task.await;

    if let Ok(Err(e)) = running.await {
        // Running anyway: a redelivery would only be skipped. The final event, retried
        // until stored, records the outcome.
        tracing::warn!(error = %format!("{e:#}"), "publish running event");
    }
    let mut fin = Event::new(d.uuid, d.queue.clone(), d.attempt, outcome.state);
    fin.executor = Some(shared.id.clone());
    fin.exit_code = outcome.exit_code;
    fin.reason = outcome.reason;
    tracing::info!(state = %fin.state, exit_code = ?fin.exit_code, reason = ?fin.reason, "attempt finished");
    // The final event must be stored before the dispatch is acked; retry until it is (or
    // until shutdown kills us, in which case the dispatch redelivers).
    let mut delay = Duration::from_millis(100);
    loop {
        match publish_event(&shared, &fin).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "publish final event; retrying");
                if shared.kill_all.is_cancelled() {
                    shared.registry.finish(d.uuid);
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    // Not awaited: the final event is stored, so a lost ack only redelivers the dispatch,
    // whose attempt is claimed and finished (skipped).
    if let Err(e) = msg.ack().await {
        tracing::warn!(error = %e, "ack dispatch (the final event is stored; a redelivery will be skipped)");
    }
    shared.registry.finish(d.uuid);
}

pub(crate) async fn publish_event(shared: &Shared, event: &Event) -> anyhow::Result<()> {
    shared.bus.publish_event(event).await?.await?;
    Ok(())
}
