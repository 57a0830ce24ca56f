//! What the scheduler's duties read: instances due for (re)submission, due for dispatch,
//! running (lost-executor check), waiting past their queue time-out, and asked to
//! terminate.

use crate::instances::InstanceRow;
use crate::{Error, Store};
use chrono::{DateTime, Utc};
use saltant_core::{QueueName, State, TaskSpec};
use sqlx::types::Json;
use uuid::Uuid;

/// A running instance, for the lost-executor check.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunningInstance {
    pub uuid: Uuid,
    pub attempt: i32,
    pub executor: Option<String>,
    pub queue_name: QueueName,
    pub datetime_started: Option<DateTime<Utc>>,
    /// The instance's trace (see [`super::NewInstance::trace_parent`]).
    pub trace_parent: Option<String>,
}

/// An instance the scheduler should (re)submit: still `created` after a while.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingInstance {
    pub uuid: Uuid,
    pub attempt: i32,
    pub queue_name: QueueName,
    pub spec: Json<TaskSpec>,
    pub datetime_created: DateTime<Utc>,
    pub trace_parent: Option<String>,
}

/// What the scheduler needs to end an instance that has not started.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Terminating {
    pub uuid: Uuid,
    pub state: State,
    pub attempt: i32,
    pub queue_name: QueueName,
    pub trace_parent: Option<String>,
}

impl Store {
    /// Instances `created` that are due for (re)dispatch: retries whose back-off has
    /// passed, and first attempts created before `before` that the bus may never have
    /// seen (NATS was down when the api answered). Oldest first.
    pub async fn pending_instances(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingInstance>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, attempt, queue_name, spec, datetime_created, trace_parent FROM task_instances \
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
            "SELECT uuid, attempt, executor, queue_name, datetime_started, trace_parent \
             FROM task_instances \
             WHERE state = 'running'",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Instances waiting for an executor past their queue time-out.
    pub async fn queue_timeouts(&self, limit: i64) -> Result<Vec<RunningInstance>, Error> {
        Ok(sqlx::query_as(
            "SELECT uuid, attempt, executor, queue_name, datetime_started, trace_parent \
             FROM task_instances \
             WHERE state IN ('created', 'published') \
               AND spec->'policy' ? 'queue_timeout_secs' \
               AND datetime_created + make_interval(secs => (spec->'policy'->>'queue_timeout_secs')::float8) < now() \
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

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
            "SELECT uuid, state, attempt, queue_name, trace_parent FROM task_instances \
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
            "SELECT uuid, state, attempt, queue_name, trace_parent FROM task_instances \
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

/// Instances of a queue in one state, for the scheduler's gauges.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueStateCount {
    pub queue_name: String,
    pub state: State,
    pub n: i64,
    /// Seconds since the oldest of them was created.
    pub oldest_secs: f64,
}

impl Store {
    /// How many unfinished instances each queue has in each state, and the age of the
    /// oldest (the scheduler's gauges, every `scheduler.metrics_every_secs`): read through
    /// the partial index of unfinished instances, so finished ones cost nothing.
    pub async fn instance_counts(&self) -> Result<Vec<QueueStateCount>, Error> {
        Ok(sqlx::query_as(
            "SELECT queue_name, state, count(*) AS n, \
               COALESCE(extract(epoch FROM now() - min(datetime_created)), 0)::float8 AS oldest_secs \
             FROM task_instances WHERE state IN ('created', 'published', 'running') \
             GROUP BY queue_name, state",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
