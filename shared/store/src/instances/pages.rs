//! What the web pages read of instances beyond the API's lists: instances per day and
//! state (the dashboard's chart), one instance's state history, task type names, and
//! renaming.

use crate::types::TypeClass;
use crate::{Error, Store};
use chrono::{DateTime, NaiveDate, Utc};
use saltant_core::State;
use uuid::Uuid;

/// Instances created on one day (UTC) that are now in one state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DayStateCount {
    pub day: NaiveDate,
    pub state: State,
    pub n: i64,
}

/// One recorded state change of an instance.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub attempt: i32,
    pub state: State,
    pub at: DateTime<Utc>,
    pub executor: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

impl Store {
    /// The names of the task types of `class` among `ids` (the pages show an instance's type
    /// by name; its row holds the id): one primary-key lookup per id.
    pub async fn task_type_names(
        &self,
        class: TypeClass,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The table name is one of two constants.
        let sql = format!("SELECT id, name FROM {} WHERE id = ANY($1)", class.table());
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Instances created since `since`, counted per creation day (UTC) and current state:
    /// an index-only scan of `task_instances_created_state` (migration 0008).
    pub async fn instances_per_day(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayStateCount>, Error> {
        Ok(sqlx::query_as(
            "SELECT (datetime_created AT TIME ZONE 'UTC')::date AS day, state, count(*) AS n \
             FROM task_instances WHERE datetime_created >= $1 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The state changes recorded for an instance, in the order they were recorded.
    pub async fn instance_history(&self, uuid: Uuid) -> Result<Vec<HistoryRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT attempt, state, at, executor, exit_code, reason FROM task_instance_history \
             WHERE instance_uuid = $1 ORDER BY id",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets an instance's name; false if there is no such instance.
    pub async fn rename_instance(&self, uuid: Uuid, name: &str) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE task_instances SET name = $2 WHERE uuid = $1")
            .bind(uuid)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
