//! Task instances: the insert that the api waits for, reads and lists, and the batched
//! compare-and-set state writes of the scheduler.

use crate::filter::{Filter, Page, push_filters, push_page};
use crate::types::TypeClass;
use crate::{Error, Store};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use saltant_core::{State, TaskSpec};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub uuid: Uuid,
    pub kind: String,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub name: String,
    pub state: String,
    pub datetime_created: DateTime<Utc>,
    pub datetime_finished: Option<DateTime<Utc>>,
    pub arguments: Json<Value>,
    pub task_queue_id: i64,
    pub task_type_id: i64,
    pub queue_name: String,
    pub attempt: i32,
    pub datetime_started: Option<DateTime<Utc>>,
    pub executor: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub trace_id: Option<String>,
    pub terminate_requested: bool,
}

/// The columns of an [`InstanceRow`] (instance `i`, its user `u`).
macro_rules! instance_columns {
    () => {
        "i.uuid, i.kind, u.username, i.user_id, i.name, i.state, \
         i.datetime_created, i.datetime_finished, i.arguments, i.task_queue_id, \
         COALESCE(i.container_task_type_id, i.executable_task_type_id) AS task_type_id, \
         i.queue_name, i.attempt, i.datetime_started, i.executor, i.exit_code, i.reason, \
         i.trace_id, i.terminate_requested"
    };
}

const INSTANCE_COLUMNS: &str = instance_columns!();

const INSTANCE_SELECT: &str = concat!(
    "SELECT ",
    instance_columns!(),
    " FROM task_instances i LEFT JOIN users u ON u.id = i.user_id WHERE true"
);

/// A validated new instance.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub uuid: Uuid,
    pub class: TypeClass,
    pub name: String,
    pub user_id: i64,
    pub queue_id: i64,
    pub queue_name: String,
    pub type_id: i64,
    pub arguments: Map<String, Value>,
    pub spec: TaskSpec,
    pub trace_id: Option<String>,
}

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

/// A running instance, for the lost-executor check.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunningInstance {
    pub uuid: Uuid,
    pub attempt: i32,
    pub executor: Option<String>,
    pub queue_name: String,
    pub datetime_started: Option<DateTime<Utc>>,
}

/// An instance the scheduler should (re)submit: still `created` after a while.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingInstance {
    pub uuid: Uuid,
    pub queue_name: String,
    pub spec: Json<TaskSpec>,
    pub datetime_created: DateTime<Utc>,
}

impl Store {
    /// Inserts an instance and returns it, in one statement: its one commit on the create
    /// path, with no second read that could fail after the commit.
    pub async fn insert_instance(&self, n: &NewInstance) -> Result<InstanceRow, Error> {
        let (ct, et) = match n.class {
            TypeClass::Container => (Some(n.type_id), None),
            TypeClass::Executable => (None, Some(n.type_id)),
        };
        let sql = format!(
            "WITH i AS (INSERT INTO task_instances (uuid, kind, name, user_id, task_queue_id, \
             container_task_type_id, executable_task_type_id, arguments, spec, queue_name, trace_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *) \
             SELECT {INSTANCE_COLUMNS} FROM i LEFT JOIN users u ON u.id = i.user_id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(n.uuid)
            .bind(n.class.kind())
            .bind(&n.name)
            .bind(n.user_id)
            .bind(n.queue_id)
            .bind(ct)
            .bind(et)
            .bind(Json(&n.arguments))
            .bind(Json(&n.spec))
            .bind(&n.queue_name)
            .bind(&n.trace_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The execution snapshot of an instance.
    pub async fn instance_spec(&self, uuid: Uuid) -> Result<Option<TaskSpec>, Error> {
        let row: Option<(Json<TaskSpec>,)> =
            sqlx::query_as("SELECT spec FROM task_instances WHERE uuid = $1")
                .bind(uuid)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(s,)| s.0))
    }

    pub async fn instance(&self, uuid: Uuid) -> Result<Option<InstanceRow>, Error> {
        let mut qb = QueryBuilder::<Postgres>::new(INSTANCE_SELECT);
        qb.push(" AND i.uuid = ").push_bind(uuid);
        Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
    }

    pub async fn count_instances(
        &self,
        class: TypeClass,
        filters: &[Filter],
    ) -> Result<i64, Error> {
        if filters.is_empty() {
            // Kept exact by triggers (migration 0005): no scan of a large table.
            return Ok(sqlx::query_scalar(
                "SELECT COALESCE(sum(n), 0)::bigint FROM task_instance_counts WHERE kind = $1",
            )
            .bind(class.kind())
            .fetch_one(&self.pool)
            .await?);
        }
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT count(*) FROM task_instances i LEFT JOIN users u ON u.id = i.user_id WHERE i.kind = ",
        );
        qb.push_bind(class.kind());
        push_filters(&mut qb, filters);
        Ok(qb.build_query_scalar().fetch_one(&self.pool).await?)
    }

    /// Newest first, streamed.
    pub fn list_instances(
        &self,
        class: TypeClass,
        filters: &[Filter],
        page: Page,
    ) -> BoxStream<'static, Result<InstanceRow, Error>> {
        let mut qb = QueryBuilder::<Postgres>::new(INSTANCE_SELECT);
        qb.push(" AND i.kind = ").push_bind(class.kind());
        push_filters(&mut qb, filters);
        qb.push(" ORDER BY i.datetime_created DESC, i.uuid");
        push_page(&mut qb, page);
        crate::stream_rows(self.pool.clone(), qb)
    }

    /// Records a batch of state changes in one transaction: every change goes to the
    /// history, and each instance moves to the furthest state reported for its current
    /// attempt, only forward (compare-and-set on state rank and attempt). Returns how many
    /// instances changed state.
    pub async fn apply_state_changes(
        &self,
        changes: &[StateChange],
        retry: RetryPolicy,
    ) -> Result<u64, Error> {
        if changes.is_empty() {
            return Ok(0);
        }
        // One row per instance: the highest attempt, then the furthest state; a `running`
        // in the same batch still gives the start time and executor.
        let mut best: HashMap<Uuid, (StateChange, Option<DateTime<Utc>>)> = HashMap::new();
        for c in changes {
            let started = (c.state == State::Running).then_some(c.at);
            match best.get_mut(&c.uuid) {
                None => {
                    best.insert(c.uuid, (c.clone(), started));
                }
                Some((b, s)) => {
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
            }
        }
        let mut uuids = Vec::with_capacity(best.len());
        let mut attempts = Vec::with_capacity(best.len());
        let mut states = Vec::with_capacity(best.len());
        let mut ats = Vec::with_capacity(best.len());
        let mut executors = Vec::with_capacity(best.len());
        let mut codes = Vec::with_capacity(best.len());
        let mut reasons = Vec::with_capacity(best.len());
        let mut starts = Vec::with_capacity(best.len());
        let mut no_retries = Vec::with_capacity(best.len());
        for (c, started) in best.into_values() {
            no_retries.push(c.no_retry);
            uuids.push(c.uuid);
            attempts.push(c.attempt);
            states.push(c.state.as_str());
            ats.push(c.at);
            executors.push(c.executor);
            codes.push(c.exit_code);
            reasons.push(c.reason);
            starts.push(started);
        }
        let mut tx = self.pool.begin().await?;
        // A `failed` of an attempt below the instance's max attempts is not final: the
        // instance goes back to `created` with the next attempt, dispatched after the
        // back-off by the scheduler's sweep.
        let updated = sqlx::query(
            "WITH e AS ( \
               SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], \
                                    $6::int[], $7::text[], $8::timestamptz[], $9::bool[]) \
                 AS e(uuid, attempt, state, at, executor, exit_code, reason, started, no_retry) \
             ), r AS ( \
               SELECT e.*, (e.state = 'failed' AND NOT e.no_retry AND e.attempt < \
                            COALESCE((t.spec->'policy'->>'max_attempts')::int, $10)) AS retry \
               FROM e JOIN task_instances t ON t.uuid = e.uuid \
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
               AND saltant_state_rank(t.state) < saltant_state_rank(r.state)",
        )
        .bind(&uuids)
        .bind(&attempts)
        .bind(&states)
        .bind(&ats)
        .bind(&executors)
        .bind(&codes)
        .bind(&reasons)
        .bind(&starts)
        .bind(&no_retries)
        .bind(retry.default_max_attempts as i32)
        .bind(retry.backoff_secs as f64)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        let h_uuid: Vec<Uuid> = changes.iter().map(|c| c.uuid).collect();
        let h_attempt: Vec<i32> = changes.iter().map(|c| c.attempt).collect();
        let h_state: Vec<&str> = changes.iter().map(|c| c.state.as_str()).collect();
        let h_at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.at).collect();
        let h_exec: Vec<Option<String>> = changes.iter().map(|c| c.executor.clone()).collect();
        let h_code: Vec<Option<i32>> = changes.iter().map(|c| c.exit_code).collect();
        let h_reason: Vec<Option<String>> = changes.iter().map(|c| c.reason.clone()).collect();
        sqlx::query(
            "INSERT INTO task_instance_history (instance_uuid, attempt, state, at, executor, exit_code, reason) \
             SELECT e.* FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], \
                                    $6::int[], $7::text[]) \
                  AS e(uuid, attempt, state, at, executor, exit_code, reason) \
             WHERE EXISTS (SELECT 1 FROM task_instances t WHERE t.uuid = e.uuid) \
             ON CONFLICT (instance_uuid, attempt, state) DO NOTHING",
        )
        .bind(&h_uuid)
        .bind(&h_attempt)
        .bind(&h_state)
        .bind(&h_at)
        .bind(&h_exec)
        .bind(&h_code)
        .bind(&h_reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Instances `created` that are due for (re)dispatch: retries whose back-off has
    /// passed, and first attempts created before `before` that the bus may never have
    /// seen (NATS was down when the api answered). Oldest first.
    pub async fn pending_instances(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingInstance>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, queue_name, spec, datetime_created FROM task_instances \
             WHERE state = 'created' \
               AND CASE WHEN dispatch_after IS NULL THEN datetime_created < $1 \
                        ELSE dispatch_after <= now() END \
             ORDER BY datetime_created LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The state history of an instance, oldest first.
    pub async fn instance_history(&self, uuid: Uuid) -> Result<Vec<HistoryRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT attempt, state, at, executor, exit_code, reason FROM task_instance_history \
             WHERE instance_uuid = $1 ORDER BY id",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct HistoryRow {
    pub attempt: i32,
    pub state: String,
    pub at: DateTime<Utc>,
    pub executor: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

impl Store {
    /// Of `uuids`, those still `created` and due, with the attempt to dispatch.
    pub async fn dispatchable(&self, uuids: &[Uuid]) -> Result<Vec<(Uuid, i32)>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, attempt FROM task_instances WHERE uuid = ANY($1) AND state = 'created' \
               AND (dispatch_after IS NULL OR dispatch_after <= now())",
        )
        .bind(uuids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every running instance (for the lost-executor check).
    pub async fn running_instances(&self) -> Result<Vec<RunningInstance>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, attempt, executor, queue_name, datetime_started FROM task_instances \
             WHERE state = 'running'",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Instances waiting for an executor past their queue time-out.
    pub async fn queue_timeouts(&self, limit: i64) -> Result<Vec<RunningInstance>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, attempt, executor, queue_name, datetime_started FROM task_instances \
             WHERE state IN ('created', 'published') \
               AND spec->'policy' ? 'queue_timeout_secs' \
               AND datetime_created + make_interval(secs => (spec->'policy'->>'queue_timeout_secs')::float8) < now() \
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// What the scheduler needs to end an instance that has not started.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Terminating {
    pub uuid: Uuid,
    pub state: String,
    pub attempt: i32,
    pub queue_name: String,
}

impl Store {
    /// Marks termination as asked for (the first time only counts for the sweep) unless
    /// the instance is already finished. Returns the instance as it is now.
    pub async fn request_termination(&self, uuid: Uuid) -> Result<Option<InstanceRow>, Error> {
        sqlx::query(
            "UPDATE task_instances SET terminate_requested = true, \
               terminate_requested_at = COALESCE(terminate_requested_at, now()) \
             WHERE uuid = $1 AND saltant_state_rank(state) < 3",
        )
        .bind(uuid)
        .execute(&self.pool)
        .await?;
        self.instance(uuid).await
    }

    /// Of `uuids`, those asked to terminate that are not finished, with their state.
    pub async fn terminating(&self, uuids: &[Uuid]) -> Result<Vec<Terminating>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, state, attempt, queue_name FROM task_instances \
             WHERE uuid = ANY($1) AND terminate_requested AND saltant_state_rank(state) < 3",
        )
        .bind(uuids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Instances asked to terminate before `before` and still not finished: the request
    /// may never have reached the bus. Oldest first.
    pub async fn unconfirmed_terminations(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Terminating>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, state, attempt, queue_name FROM task_instances \
             WHERE terminate_requested AND state IN ('created', 'published', 'running') \
               AND terminate_requested_at < $1 \
             ORDER BY terminate_requested_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
