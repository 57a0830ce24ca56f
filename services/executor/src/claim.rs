//! Claims: before an attempt runs, `<queue>.<uuid>.<attempt>` is created in the claims bucket
//! (compare-and-set), so that a redelivered dispatch whose attempt another executor (or
//! this one, in an earlier life) already started never runs twice. A dispatch whose
//! attempt is claimed already is decided by who holds the claim (alive or not, by the
//! executors bucket) and what the events stream last says of the attempt.

use crate::Shared;
use async_nats::jetstream::kv;
use saltant_bus::{Dispatch, Event, Heartbeat};
use saltant_core::State;

/// What to do with a dispatch.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// The attempt is ours: run it.
    Run,
    /// Already started or finished elsewhere (or here): ack without running.
    Skip,
    /// Its claimant is gone and it never finished: report it failed for this reason.
    Fail(String),
    /// A live executor holds it: let the dispatch come back later.
    Later,
    /// The claims bucket or the events stream could not be read (logged): leave the
    /// dispatch for redelivery.
    Unknown,
}

/// The value of a claim: who claimed the attempt, in which life.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Claim {
    executor: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// Who holds an attempt that was claimed before.
#[derive(Debug)]
enum Claimed {
    /// Our own claim in this life, whose answer was lost (NATS restarted).
    Ours,
    /// A live executor.
    Held,
    /// Its claimant is gone (or restarted without it): the attempt is lost.
    Lost(String),
}

/// Claims the attempt of `d` for this executor, or says why it is not to run here.
#[tracing::instrument(name = "claim", skip_all)]
pub(crate) async fn claim(shared: &Shared, d: &Dispatch) -> Verdict {
    let holder = match create(shared, d).await {
        Ok(None) => return Verdict::Run,
        Ok(Some(holder)) => holder,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "claim attempt; leaving the dispatch for redelivery");
            return Verdict::Unknown;
        }
    };
    // Claimed before: what the events stream says of the attempt decides.
    match shared.bus.last_event(&d.queue, d.uuid).await {
        Ok(last) => decide(holder, last.as_ref(), d.attempt),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "read the events stream; leaving the dispatch for redelivery");
            Verdict::Unknown
        }
    }
}

/// Creates the claim; `None` if this call created it, else who holds it.
async fn create(shared: &Shared, d: &Dispatch) -> anyhow::Result<Option<Claimed>> {
    let key = shared.bus.names.claim_key(&d.queue, d.uuid, d.attempt);
    let value = serde_json::to_vec(&mine(shared)).unwrap_or_default();
    let kv = shared.bus.claims_kv().await?;
    match kv.create(&key, value.into()).await {
        Ok(_) => Ok(None),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            Ok(Some(holder(shared, &kv, &key).await?))
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

fn mine(shared: &Shared) -> Claim {
    Claim {
        executor: shared.id.clone(),
        started_at: shared.started_at,
    }
}

/// Who holds the claim `key`.
async fn holder(shared: &Shared, kv: &kv::Store, key: &str) -> anyhow::Result<Claimed> {
    let Some(value) = kv.get(key).await? else {
        // Gone meanwhile (expired): treat as held, the redelivery decides.
        return Ok(Claimed::Held);
    };
    let Ok(claim) = serde_json::from_slice::<Claim>(&value) else {
        return Ok(Claimed::Lost("its claim is unreadable".into()));
    };
    if claim == mine(shared) {
        return Ok(Claimed::Ours);
    }
    let executors = shared.bus.executors_kv().await?;
    let alive = match executors.get(&claim.executor).await? {
        // A heartbeat this version cannot read (a newer executor's, say) is still a live
        // executor: the attempt is left to it, and the redelivery looks again.
        Some(beat) => Heartbeat::decode(&beat).map_or(true, |hb| hb.started_at == claim.started_at),
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

/// The verdict on a claimed `attempt` held by `holder`, `last` being the instance's last
/// event.
fn decide(holder: Claimed, last: Option<&Event>, attempt: u32) -> Verdict {
    let later = last.is_some_and(|e| e.attempt > attempt);
    let this = last.filter(|e| e.attempt == attempt);
    let finished = later || this.is_some_and(|e| e.state.is_final());
    let started = later || this.is_some_and(|e| e.state.rank() >= State::Running.rank());
    match holder {
        // Our claim in this life whose answer was lost: run it unless it started.
        Claimed::Ours if !started => Verdict::Run,
        Claimed::Held if !finished => {
            tracing::info!("attempt claimed by a live executor; the dispatch comes back later");
            Verdict::Later
        }
        Claimed::Lost(reason) if !finished => {
            tracing::warn!(%reason, "attempt already claimed by a lost executor");
            Verdict::Fail(reason)
        }
        _ => {
            tracing::info!(
                "attempt already claimed (a redelivered dispatch); not running it again"
            );
            Verdict::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saltant_core::QueueName;

    fn event(attempt: u32, state: State) -> Event {
        let queue = QueueName::parse("q").expect("valid");
        Event::new(uuid::Uuid::nil(), queue, attempt, state)
    }

    #[test]
    fn claimed_attempts_are_decided_by_holder_and_last_event() {
        let lost = || Claimed::Lost("gone".into());
        let cases = [
            (Claimed::Ours, None, Verdict::Run),
            (
                Claimed::Ours,
                Some(event(2, State::Published)),
                Verdict::Run,
            ),
            (Claimed::Ours, Some(event(2, State::Running)), Verdict::Skip),
            (
                Claimed::Held,
                Some(event(2, State::Running)),
                Verdict::Later,
            ),
            (Claimed::Held, Some(event(2, State::Failed)), Verdict::Skip),
            (
                Claimed::Held,
                Some(event(3, State::Published)),
                Verdict::Skip,
            ),
            (
                lost(),
                Some(event(2, State::Running)),
                Verdict::Fail("gone".into()),
            ),
            (lost(), None, Verdict::Fail("gone".into())),
            (lost(), Some(event(2, State::Successful)), Verdict::Skip),
            (
                lost(),
                Some(event(1, State::Failed)),
                Verdict::Fail("gone".into()),
            ),
        ];
        for (holder, last, expected) in cases {
            let seen = format!("{holder:?} {last:?}");
            assert_eq!(decide(holder, last.as_ref(), 2), expected, "{seen}");
        }
    }
}
