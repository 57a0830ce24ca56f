//! Recording state changes: the scheduler's batched compare-and-set writes (and the status
//! endpoint's single ones), with the history of every change.

use crate::{Error, Store};
use chrono::{DateTime, Utc};
use saltant_core::State;
use std::collections::HashMap;
use uuid::Uuid;

/// One state change to record, as reported on the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub uuid: Uuid,
    pub attempt: i32,
    pub state: State,
    pub at: DateTime<Utc>,
    pub executor: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// A `failed` that is final whatever the retry policy.
    pub no_retry: bool,
    /// The digest of the attempt's results manifest (a final event of an attempt that
    /// stored files); kept in the history only.
    pub results_digest: Option<String>,
    /// The queue the reporter names (an event's): the change is refused unless it is the
    /// instance's. `None`: a reporter that read the instance itself (the status endpoint).
    pub queue: Option<String>,
}

/// How failed attempts are retried: an instance's own `max_attempts` (in its spec's
/// policy) or `default_max_attempts`, the next attempt dispatched after `backoff_secs`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub default_max_attempts: u32,
    pub backoff_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            default_max_attempts: 1,
            backoff_secs: 10,
        }
    }
}

/// State changes column by column, as `unnest` takes them.
#[derive(Default)]
struct Columns {
    uuid: Vec<Uuid>,
    attempt: Vec<i32>,
    state: Vec<State>,
    at: Vec<DateTime<Utc>>,
    executor: Vec<Option<String>>,
    exit_code: Vec<Option<i32>>,
    reason: Vec<Option<String>>,
    /// When the attempt started, if the batch says (a `running` of the same attempt).
    started: Vec<Option<DateTime<Utc>>>,
    no_retry: Vec<bool>,
    results_digest: Vec<Option<String>>,
    queue: Vec<Option<String>>,
}

impl<'a> FromIterator<(&'a StateChange, Option<DateTime<Utc>>)> for Columns {
    fn from_iter<I: IntoIterator<Item = (&'a StateChange, Option<DateTime<Utc>>)>>(
        changes: I,
    ) -> Self {
        let mut c = Columns::default();
        for (change, started) in changes {
            c.uuid.push(change.uuid);
            c.attempt.push(change.attempt);
            c.state.push(change.state);
            c.at.push(change.at);
            c.executor.push(change.executor.clone());
            c.exit_code.push(change.exit_code);
            c.reason.push(change.reason.clone());
            c.started.push(started);
            c.no_retry.push(change.no_retry);
            c.results_digest.push(change.results_digest.clone());
            c.queue.push(change.queue.clone());
        }
        c
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl Columns {
    /// Binds the columns every statement takes: `$1` to `$7`.
    fn bind<'q>(&'q self, q: Query<'q>) -> Query<'q> {
        q.bind(&self.uuid)
            .bind(&self.attempt)
            .bind(&self.state)
            .bind(&self.at)
            .bind(&self.executor)
            .bind(&self.exit_code)
            .bind(&self.reason)
    }
}

/// One change per instance: the highest attempt, then the furthest state; a `running` of
/// that attempt in the same batch still gives the start time and the executor.
fn furthest(changes: &[StateChange]) -> Vec<(StateChange, Option<DateTime<Utc>>)> {
    let mut best: HashMap<Uuid, (StateChange, Option<DateTime<Utc>>)> = HashMap::new();
    for c in changes {
        let started = (c.state == State::Running).then_some(c.at);
        let Some((b, s)) = best.get_mut(&c.uuid) else {
            best.insert(c.uuid, (c.clone(), started));
            continue;
        };
        if c.attempt == b.attempt && started.is_some() {
            *s = started;
        }
        if (c.attempt, c.state.rank()) > (b.attempt, b.state.rank()) {
            let keep_start = if c.attempt == b.attempt { *s } else { None };
            let executor = c.executor.clone().or_else(|| b.executor.clone());
            *b = c.clone();
            b.executor = executor;
            *s = started.or(keep_start);
        }
    }
    best.into_values().collect()
}

/// Moves each instance to its change's state if that is further on for its current
/// attempt. A `failed` of an attempt below the instance's max attempts is not final: the
/// instance goes back to `created` with the next attempt, dispatched after the back-off by
/// the scheduler's sweep. A change naming another queue than the instance's is not
/// applied (an executor may publish events only on its own queues, so this is how one
/// queue's executor is kept from another queue's instances).
const UPDATE: &str = "WITH e AS ( \
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], \
                            $6::int[], $7::text[], $8::timestamptz[], $9::bool[], $12::text[]) \
         AS e(uuid, attempt, state, at, executor, exit_code, reason, started, no_retry, queue) \
     ), r AS ( \
       SELECT e.*, (e.state = 'failed' AND NOT e.no_retry AND e.attempt < \
                    COALESCE((t.spec->'policy'->>'max_attempts')::int, $10)) AS retry \
       FROM e JOIN task_instances t ON t.uuid = e.uuid \
       WHERE e.queue IS NULL OR e.queue = t.queue_name \
     ) \
     UPDATE task_instances t SET \
       state = CASE WHEN r.retry THEN 'created' ELSE r.state END, \
       attempt = CASE WHEN r.retry THEN t.attempt + 1 ELSE t.attempt END, \
       dispatch_after = CASE WHEN r.retry THEN now() + make_interval(secs => $11) \
                             ELSE t.dispatch_after END, \
       datetime_finished = CASE WHEN NOT r.retry AND saltant_state_rank(r.state) = 3 \
                                THEN COALESCE(t.datetime_finished, r.at) END, \
       datetime_started = CASE WHEN r.retry THEN NULL \
                               ELSE COALESCE(r.started, t.datetime_started) END, \
       executor = CASE WHEN r.retry THEN NULL ELSE COALESCE(r.executor, t.executor) END, \
       exit_code = COALESCE(r.exit_code, t.exit_code), \
       reason = COALESCE(r.reason, t.reason) \
     FROM r \
     WHERE t.uuid = r.uuid AND t.attempt = r.attempt \
       AND saltant_state_rank(t.state) < saltant_state_rank(r.state)";

/// Every change of the batch goes to the history, once per instance, attempt and state;
/// returns the changes new to it (`new`) and those refused for naming another queue.
const HISTORY: &str = "WITH e AS ( \
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], \
                            $6::int[], $7::text[], $8::text[], $9::text[]) \
          AS e(uuid, attempt, state, at, executor, exit_code, reason, results_digest, queue) \
     ), added AS ( \
       INSERT INTO task_instance_history \
         (instance_uuid, attempt, state, at, executor, exit_code, reason, results_digest) \
       SELECT e.uuid, e.attempt, e.state, e.at, e.executor, e.exit_code, e.reason, \
              e.results_digest \
       FROM e JOIN task_instances t ON t.uuid = e.uuid \
       WHERE e.queue IS NULL OR e.queue = t.queue_name \
       ON CONFLICT (instance_uuid, attempt, state) DO NOTHING \
       RETURNING instance_uuid, state \
     ) \
     SELECT instance_uuid, state, true AS new FROM added \
     UNION ALL \
     SELECT e.uuid, e.state, false FROM e JOIN task_instances t ON t.uuid = e.uuid \
     WHERE e.queue IS NOT NULL AND e.queue <> t.queue_name";

/// What a batch of state changes did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Instances that changed state.
    pub changed: u64,
    /// The changes new to the history (a repeat of an instance's attempt and state, from
    /// a redelivery or a second reporter, is not): what the scheduler counts.
    pub new: Vec<(Uuid, State)>,
    /// Changes not recorded because they named another queue than their instance's.
    pub refused: Vec<(Uuid, State)>,
}

impl Store {
    /// Records a batch of state changes in one transaction: every change goes to the
    /// history, and each instance moves to the furthest state reported for its current
    /// attempt, only forward (compare-and-set on state rank and attempt).
    pub async fn apply_state_changes(
        &self,
        changes: &[StateChange],
        retry: RetryPolicy,
    ) -> Result<Applied, Error> {
        if changes.is_empty() {
            return Ok(Applied::default());
        }
        let best = furthest(changes);
        let e: Columns = best.iter().map(|(c, started)| (c, *started)).collect();
        let mut tx = self.pool.begin().await?;
        let updated = e
            .bind(sqlx::query(UPDATE))
            .bind(&e.started)
            .bind(&e.no_retry)
            .bind(retry.default_max_attempts as i32)
            .bind(retry.backoff_secs as f64)
            .bind(&e.queue)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let h: Columns = changes.iter().map(|c| (c, None)).collect();
        let rows = h
            .bind(sqlx::query(HISTORY))
            .bind(&h.results_digest)
            .bind(&h.queue)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                use sqlx::Row as _;
                Ok((
                    row.try_get("instance_uuid")?,
                    row.try_get("state")?,
                    row.try_get("new")?,
                ))
            })
            .collect::<Result<Vec<(Uuid, State, bool)>, sqlx::Error>>()?;
        tx.commit().await?;
        let (new, refused): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, _, new)| *new);
        let pairs = |v: Vec<(Uuid, State, bool)>| v.into_iter().map(|(u, s, _)| (u, s)).collect();
        Ok(Applied {
            changed: updated,
            new: pairs(new),
            refused: pairs(refused),
        })
    }

    /// The results digest of an instance's finished attempt: the one recorded with its
    /// change to `state` (the instance's) if that named one, else one a final event of the
    /// attempt's own `executor` named (it finished after another reporter ended the
    /// attempt: the lost-executor check, the status endpoint). `None`: no final change of
    /// the attempt is recorded; `Some(None)`: none named files.
    pub async fn results_digest(
        &self,
        uuid: Uuid,
        attempt: i32,
        state: State,
        executor: Option<&str>,
    ) -> Result<Option<Option<String>>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT results_digest FROM task_instance_history \
             WHERE instance_uuid = $1 AND attempt = $2 \
               AND (state = $3 OR (executor = $4 AND results_digest IS NOT NULL \
                                   AND saltant_state_rank(state) = 3)) \
             ORDER BY results_digest IS NOT NULL DESC, state = $3 DESC, id \
             LIMIT 1",
        )
        .bind(uuid)
        .bind(attempt)
        .bind(state)
        .bind(executor)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(uuid: Uuid, attempt: i32, state: State, secs: i64) -> StateChange {
        StateChange {
            uuid,
            attempt,
            state,
            at: DateTime::from_timestamp(secs, 0).expect("valid time"),
            executor: (state == State::Running).then(|| "e1".to_owned()),
            exit_code: None,
            reason: None,
            no_retry: false,
            results_digest: None,
            queue: None,
        }
    }

    #[test]
    fn a_batch_keeps_the_furthest_change_of_the_latest_attempt() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut out = furthest(&[
            change(a, 1, State::Running, 2),
            change(a, 1, State::Published, 1),
            change(a, 1, State::Successful, 3),
            change(b, 1, State::Failed, 5),
            change(b, 2, State::Published, 6),
        ]);
        out.sort_by_key(|(c, _)| c.uuid == b);
        let (ca, started_a) = &out[0];
        assert_eq!((ca.state, ca.attempt), (State::Successful, 1));
        // The start time and executor of the batch's `running` are kept.
        assert_eq!(started_a.map(|t| t.timestamp()), Some(2));
        assert_eq!(ca.executor.as_deref(), Some("e1"));
        let (cb, started_b) = &out[1];
        assert_eq!((cb.state, cb.attempt), (State::Published, 2));
        assert_eq!(*started_b, None);
    }
}
