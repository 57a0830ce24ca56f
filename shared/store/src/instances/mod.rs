//! Task instances: the insert that the api waits for, reads and lists; the recording of
//! state changes ([`record`]) and what the scheduler's duties read ([`duties`]).

mod duties;
mod pages;
mod record;

pub use duties::{PendingInstance, RunningInstance, Terminating};
pub use pages::{DayStateCount, HistoryRow};
pub use record::{RetryPolicy, StateChange};

use crate::filter::{Filter, Page, push_filters, push_page};
use crate::types::TypeClass;
use crate::{Error, Store};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use saltant_core::{QueueName, State, TaskSpec};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub uuid: Uuid,
    pub kind: TypeClass,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub name: String,
    pub state: State,
    pub datetime_created: DateTime<Utc>,
    pub datetime_finished: Option<DateTime<Utc>>,
    pub arguments: Json<Value>,
    pub task_queue_id: i64,
    pub task_type_id: i64,
    pub queue_name: QueueName,
    pub attempt: i32,
    pub datetime_started: Option<DateTime<Utc>>,
    pub executor: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub trace_id: Option<String>,
    pub trace_parent: Option<String>,
    pub terminate_requested: bool,
}

impl TypeClass {
    /// The class of an instance's `kind` column value.
    fn from_kind(kind: &str) -> Result<TypeClass, String> {
        [TypeClass::Container, TypeClass::Executable]
            .into_iter()
            .find(|c| c.kind() == kind)
            .ok_or_else(|| "not an instance kind".to_owned())
    }
}

saltant_core::pg_text!(TypeClass, |c| c.kind(), TypeClass::from_kind);

/// The columns of an [`InstanceRow`] (instance `i`, its user `u`).
macro_rules! instance_columns {
    () => {
        "i.uuid, i.kind, u.username, i.user_id, i.name, i.state, \
         i.datetime_created, i.datetime_finished, i.arguments, i.task_queue_id, \
         COALESCE(i.container_task_type_id, i.executable_task_type_id) AS task_type_id, \
         i.queue_name, i.attempt, i.datetime_started, i.executor, i.exit_code, i.reason, \
         i.trace_id, i.trace_parent, i.terminate_requested"
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
    pub queue_name: QueueName,
    pub type_id: i64,
    pub arguments: Map<String, Value>,
    pub spec: TaskSpec,
    /// The W3C `traceparent` of the span creating it: the instance's trace continues from
    /// there, whatever later sends work on its behalf (docs/observability.md).
    pub trace_parent: Option<String>,
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
             container_task_type_id, executable_task_type_id, arguments, spec, queue_name, trace_id, \
             trace_parent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, split_part($11, '-', 2), $11) \
             RETURNING *) \
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
            .bind(&n.trace_parent)
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
        crate::stream_rows(self, qb)
    }
}
