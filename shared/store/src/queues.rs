//! Task queues and task whitelists, with their many-to-many lists.

use crate::filter::{Filter, Page, push_filters, push_page};
use crate::types::{TaskTypeRow, TypeClass};
use crate::{Error, Store};
use futures::stream::BoxStream;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

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

impl Store {
    pub async fn queue(&self, id: i64) -> Result<Option<QueueRow>, Error> {
        let mut qb = QueryBuilder::<Postgres>::new(QUEUE_SELECT);
        qb.push(" AND q.id = ").push_bind(id);
        Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
    }

    pub async fn count_queues(&self, filters: &[Filter]) -> Result<i64, Error> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM (");
        qb.push(QUEUE_SELECT);
        push_filters(&mut qb, filters);
        qb.push(") x");
        Ok(qb.build_query_scalar().fetch_one(&self.pool).await?)
    }

    pub fn list_queues(
        &self,
        filters: &[Filter],
        page: Page,
    ) -> BoxStream<'static, Result<QueueRow, Error>> {
        let mut qb = QueryBuilder::<Postgres>::new(QUEUE_SELECT);
        push_filters(&mut qb, filters);
        qb.push(" ORDER BY q.id");
        push_page(&mut qb, page);
        crate::stream_rows(self.pool.clone(), qb)
    }

    /// Inserts (id `None`) or replaces a queue and its whitelists in one transaction.
    pub async fn save_queue(
        &self,
        id: Option<i64>,
        user_id: i64,
        f: &QueueFields,
    ) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = match id {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO task_queues (name, description, user_id, private, runs_executable_tasks, \
                     runs_docker_container_tasks, runs_singularity_container_tasks, active) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(&f.name)
                .bind(&f.description)
                .bind(user_id)
                .bind(f.private)
                .bind(f.runs_executable_tasks)
                .bind(f.runs_docker_container_tasks)
                .bind(f.runs_singularity_container_tasks)
                .bind(f.active)
                .fetch_one(&mut *tx)
                .await?
            }
            Some(id) => {
                sqlx::query(
                    "UPDATE task_queues SET name = $2, description = $3, private = $4, \
                     runs_executable_tasks = $5, runs_docker_container_tasks = $6, \
                     runs_singularity_container_tasks = $7, active = $8 WHERE id = $1",
                )
                .bind(id)
                .bind(&f.name)
                .bind(&f.description)
                .bind(f.private)
                .bind(f.runs_executable_tasks)
                .bind(f.runs_docker_container_tasks)
                .bind(f.runs_singularity_container_tasks)
                .bind(f.active)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM task_queue_whitelists WHERE queue_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
        };
        sqlx::query(
            "INSERT INTO task_queue_whitelists (queue_id, whitelist_id) \
             SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&f.whitelists)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn whitelist(&self, id: i64) -> Result<Option<WhitelistRow>, Error> {
        let mut qb = QueryBuilder::<Postgres>::new(WHITELIST_SELECT);
        qb.push(" AND l.id = ").push_bind(id);
        Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
    }

    pub async fn count_whitelists(&self, filters: &[Filter]) -> Result<i64, Error> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM (");
        qb.push(WHITELIST_SELECT);
        push_filters(&mut qb, filters);
        qb.push(") x");
        Ok(qb.build_query_scalar().fetch_one(&self.pool).await?)
    }

    pub fn list_whitelists(
        &self,
        filters: &[Filter],
        page: Page,
    ) -> BoxStream<'static, Result<WhitelistRow, Error>> {
        let mut qb = QueryBuilder::<Postgres>::new(WHITELIST_SELECT);
        push_filters(&mut qb, filters);
        qb.push(" ORDER BY l.id");
        push_page(&mut qb, page);
        crate::stream_rows(self.pool.clone(), qb)
    }

    /// Inserts (id `None`) or replaces a whitelist and its type lists in one transaction.
    pub async fn save_whitelist(
        &self,
        id: Option<i64>,
        user_id: i64,
        f: &WhitelistFields,
    ) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = match id {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO task_whitelists (name, description, user_id) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&f.name)
                .bind(&f.description)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?
            }
            Some(id) => {
                sqlx::query("UPDATE task_whitelists SET name = $2, description = $3 WHERE id = $1")
                    .bind(id)
                    .bind(&f.name)
                    .bind(&f.description)
                    .execute(&mut *tx)
                    .await?;
                for table in ["task_whitelist_container_types", "task_whitelist_executable_types"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE whitelist_id = $1")))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                id
            }
        };
        for (table, ids) in [
            ("task_whitelist_container_types", &f.container_types),
            ("task_whitelist_executable_types", &f.executable_types),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (whitelist_id, task_type_id) SELECT $1, unnest($2::bigint[]) \
                 ON CONFLICT DO NOTHING"
            )))
            .bind(id)
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
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

/// Tables whose ids requests refer to.
#[derive(Debug, Clone, Copy)]
pub enum IdTable {
    ContainerTypes,
    ExecutableTypes,
    Whitelists,
    Queues,
}

impl IdTable {
    fn name(self) -> &'static str {
        match self {
            IdTable::ContainerTypes => "container_task_types",
            IdTable::ExecutableTypes => "executable_task_types",
            IdTable::Whitelists => "task_whitelists",
            IdTable::Queues => "task_queues",
        }
    }
}

impl Store {
    pub async fn queue_name_taken(&self, name: &str, except: Option<i64>) -> Result<bool, Error> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM task_queues WHERE name = $1 AND id IS DISTINCT FROM $2)",
        )
        .bind(name)
        .bind(except)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn whitelist_name_taken(
        &self,
        name: &str,
        except: Option<i64>,
    ) -> Result<bool, Error> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM task_whitelists WHERE name = $1 AND id IS DISTINCT FROM $2)")
            .bind(name)
            .bind(except)
            .fetch_one(&self.pool)
            .await?)
    }
}
