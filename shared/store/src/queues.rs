//! Task queues and task whitelists, with their many-to-many lists.

pub use crate::filter::IdTable;
use crate::filter::{FilterField, Kind};
use crate::owned::{Links, Row, Table};
use crate::types::{TaskTypeRow, TypeClass};
use crate::{Error, Store};
use sqlx::types::Json;

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct QueueRow {
    pub id: i64,
    pub username: Option<String>,
    pub user_id: i64,
    pub name: String,
    pub description: String,
    pub private: bool,
    pub runs_executable_tasks: bool,
    pub runs_docker_container_tasks: bool,
    pub runs_singularity_container_tasks: bool,
    pub active: bool,
    pub whitelists: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct QueueFields {
    pub name: String,
    pub description: String,
    pub private: bool,
    pub runs_executable_tasks: bool,
    pub runs_docker_container_tasks: bool,
    pub runs_singularity_container_tasks: bool,
    pub active: bool,
    pub whitelists: Vec<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WhitelistRow {
    pub id: i64,
    pub username: Option<String>,
    pub user_id: i64,
    pub name: String,
    pub description: String,
    pub whitelisted_container_task_types: Vec<i64>,
    pub whitelisted_executable_task_types: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct WhitelistFields {
    pub name: String,
    pub description: String,
    pub container_types: Vec<i64>,
    pub executable_types: Vec<i64>,
}

const QUEUE_SELECT: &str = "SELECT q.id, u.username, q.user_id, q.name, q.description, q.private, \
     q.runs_executable_tasks, q.runs_docker_container_tasks, q.runs_singularity_container_tasks, \
     q.active, ARRAY(SELECT whitelist_id FROM task_queue_whitelists w WHERE w.queue_id = q.id \
     ORDER BY whitelist_id) AS whitelists \
     FROM task_queues q LEFT JOIN users u ON u.id = q.user_id WHERE true";

const WHITELIST_SELECT: &str = "SELECT l.id, u.username, l.user_id, l.name, l.description, \
     ARRAY(SELECT task_type_id FROM task_whitelist_container_types c WHERE c.whitelist_id = l.id \
     ORDER BY task_type_id) AS whitelisted_container_task_types, \
     ARRAY(SELECT task_type_id FROM task_whitelist_executable_types e WHERE e.whitelist_id = l.id \
     ORDER BY task_type_id) AS whitelisted_executable_task_types \
     FROM task_whitelists l LEFT JOIN users u ON u.id = l.user_id WHERE true";

const fn text(name: &'static str, column: &'static str) -> FilterField {
    FilterField {
        name,
        column,
        kind: Kind::Text,
    }
}

const fn boolean(name: &'static str, column: &'static str) -> FilterField {
    FilterField {
        name,
        column,
        kind: Kind::Bool,
    }
}

/// Task queues, by id.
pub const QUEUES: Table = Table {
    table: "task_queues",
    select: QUEUE_SELECT,
    key: "q.id",
    order: "q.id",
    filters: &[
        text("name", "q.name"),
        text("description", "q.description"),
        text("user__username", "u.username"),
        boolean("private", "q.private"),
        boolean("runs_executable_tasks", "q.runs_executable_tasks"),
        boolean(
            "runs_docker_container_tasks",
            "q.runs_docker_container_tasks",
        ),
        boolean(
            "runs_singularity_container_tasks",
            "q.runs_singularity_container_tasks",
        ),
        boolean("active", "q.active"),
    ],
};

/// Task whitelists, by id.
pub const WHITELISTS: Table = Table {
    table: "task_whitelists",
    select: WHITELIST_SELECT,
    key: "l.id",
    order: "l.id",
    filters: &[
        text("name", "l.name"),
        text("description", "l.description"),
        text("user__username", "u.username"),
    ],
};

const QUEUE_ROW: Row = Row {
    table: "task_queues",
    columns: &[
        "name",
        "description",
        "private",
        "runs_executable_tasks",
        "runs_docker_container_tasks",
        "runs_singularity_container_tasks",
        "active",
    ],
};

const QUEUE_WHITELISTS: Links = Links {
    table: "task_queue_whitelists",
    key: "queue_id",
    value: "whitelist_id",
};

const WHITELIST_ROW: Row = Row {
    table: "task_whitelists",
    columns: &["name", "description"],
};

const WHITELIST_TYPES: [Links; 2] = [
    Links {
        table: "task_whitelist_container_types",
        key: "whitelist_id",
        value: "task_type_id",
    },
    Links {
        table: "task_whitelist_executable_types",
        key: "whitelist_id",
        value: "task_type_id",
    },
];

impl Store {
    /// Ids of the private queues `user_id` does not own: their events are not theirs to
    /// see (docs/events.md).
    pub async fn private_queues_of_others(&self, user_id: i64) -> Result<Vec<i64>, Error> {
        Ok(
            sqlx::query_scalar("SELECT id FROM task_queues WHERE private AND user_id <> $1")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The queue an instance was created on.
    pub async fn queue_of_instance(&self, uuid: uuid::Uuid) -> Result<Option<i64>, Error> {
        Ok(
            sqlx::query_scalar("SELECT task_queue_id FROM task_instances WHERE uuid = $1")
                .bind(uuid)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn queue(&self, id: i64) -> Result<Option<QueueRow>, Error> {
        self.one(&QUEUES, id).await
    }

    /// Inserts (id `None`) or replaces a queue and its whitelists in one transaction.
    pub async fn save_queue(
        &self,
        id: Option<i64>,
        owner: i64,
        f: &QueueFields,
    ) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await?;
        let saved = QUEUE_ROW
            .save(&mut tx, id, owner, |v| {
                v.push_bind(f.name.clone())
                    .push_bind(f.description.clone())
                    .push_bind(f.private)
                    .push_bind(f.runs_executable_tasks)
                    .push_bind(f.runs_docker_container_tasks)
                    .push_bind(f.runs_singularity_container_tasks)
                    .push_bind(f.active);
            })
            .await?;
        QUEUE_WHITELISTS
            .set(&mut tx, saved, &f.whitelists, id.is_some())
            .await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Inserts (id `None`) or replaces a whitelist and its type lists in one transaction.
    pub async fn save_whitelist(
        &self,
        id: Option<i64>,
        owner: i64,
        f: &WhitelistFields,
    ) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await?;
        let saved = WHITELIST_ROW
            .save(&mut tx, id, owner, |v| {
                v.push_bind(f.name.clone()).push_bind(f.description.clone());
            })
            .await?;
        for (links, ids) in WHITELIST_TYPES
            .iter()
            .zip([&f.container_types, &f.executable_types])
        {
            links.set(&mut tx, saved, ids, id.is_some()).await?;
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// Ids among `ids` that do not exist in `table` (for "Invalid pk" errors).
    pub async fn missing_ids(&self, table: IdTable, ids: &[i64]) -> Result<Vec<i64>, Error> {
        let sql = format!(
            "SELECT i FROM unnest($1::bigint[]) WITH ORDINALITY AS x(i, n) \
             WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE t.id = x.i) ORDER BY n",
            table.name()
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Whether one of the queue's whitelists lists the task type.
    /// What admitting an instance needs, in one statement: the task type, the queue, and
    /// whether the queue whitelists the type.
    pub async fn admission(
        &self,
        class: TypeClass,
        type_id: i64,
        queue_id: i64,
    ) -> Result<(Option<TaskTypeRow>, Option<QueueRow>, bool), Error> {
        let sql = format!(
            "WITH t AS ({types} AND t.id = $1), q AS ({QUEUE_SELECT} AND q.id = $2) \
             SELECT (SELECT to_jsonb(t) FROM t) AS ty, (SELECT to_jsonb(q) FROM q) AS queue, \
             EXISTS (SELECT 1 FROM task_queue_whitelists qw JOIN {table} w \
                     ON w.whitelist_id = qw.whitelist_id \
                     WHERE qw.queue_id = $2 AND w.task_type_id = $1) AS whitelisted",
            types = class.select(),
            table = class.whitelist_table(),
        );
        let (ty, queue, whitelisted): (Option<Json<TaskTypeRow>>, Option<Json<QueueRow>>, bool) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(type_id)
                .bind(queue_id)
                .fetch_one(&self.pool)
                .await?;
        Ok((ty.map(|t| t.0), queue.map(|q| q.0), whitelisted))
    }
}
