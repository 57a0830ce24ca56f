//! Task types: container and executable, two tables with a common shape.

use crate::filter::{Filter, Page, push_filters, push_page};
use crate::{Error, Store};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

/// Which task type table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    Container,
    Executable,
}

impl TypeClass {
    pub fn table(self) -> &'static str {
        match self {
            TypeClass::Container => "container_task_types",
            TypeClass::Executable => "executable_task_types",
        }
    }
    /// The instance `kind` column value for this class.
    pub fn kind(self) -> &'static str {
        match self {
            TypeClass::Container => "container",
            TypeClass::Executable => "executable",
        }
    }
    pub fn instance_type_column(self) -> &'static str {
        match self {
            TypeClass::Container => "container_task_type_id",
            TypeClass::Executable => "executable_task_type_id",
        }
    }
    /// The table of whitelist entries of this class of types.
    pub(crate) fn whitelist_table(self) -> &'static str {
        match self {
            TypeClass::Container => "task_whitelist_container_types",
            TypeClass::Executable => "task_whitelist_executable_types",
        }
    }

    pub(crate) fn select(self) -> &'static str {
        match self {
            TypeClass::Container => {
                "SELECT t.id, u.username, t.user_id, t.name, t.description, t.datetime_created, \
                 t.command_to_run, t.environment_variables, t.required_arguments, \
                 t.required_arguments_default_values, t.logs_path, t.results_path, \
                 t.container_image, t.container_type, NULL::text AS json_file_option \
                 FROM container_task_types t LEFT JOIN users u ON u.id = t.user_id WHERE true"
            }
            TypeClass::Executable => {
                "SELECT t.id, u.username, t.user_id, t.name, t.description, t.datetime_created, \
                 t.command_to_run, t.environment_variables, t.required_arguments, \
                 t.required_arguments_default_values, NULL::text AS logs_path, \
                 NULL::text AS results_path, NULL::text AS container_image, \
                 NULL::text AS container_type, t.json_file_option \
                 FROM executable_task_types t LEFT JOIN users u ON u.id = t.user_id WHERE true"
            }
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct TaskTypeRow {
    pub id: i64,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub datetime_created: DateTime<Utc>,
    pub command_to_run: String,
    pub environment_variables: Json<Value>,
    pub required_arguments: Json<Value>,
    pub required_arguments_default_values: Json<Value>,
    pub logs_path: Option<String>,
    pub results_path: Option<String>,
    pub container_image: Option<String>,
    pub container_type: Option<String>,
    pub json_file_option: Option<String>,
}

/// Every writable field of a task type, validated by the caller.
#[derive(Debug, Clone)]
pub struct TaskTypeFields {
    pub name: String,
    pub description: String,
    pub command_to_run: String,
    pub environment_variables: Value,
    pub required_arguments: Value,
    pub required_arguments_default_values: Value,
    pub logs_path: Option<String>,
    pub results_path: Option<String>,
    pub container_image: Option<String>,
    pub container_type: Option<String>,
    pub json_file_option: Option<String>,
}

impl Store {
    pub async fn insert_task_type(
        &self,
        class: TypeClass,
        user_id: i64,
        f: &TaskTypeFields,
    ) -> Result<TaskTypeRow, Error> {
        let id: (i64,) = match class {
            TypeClass::Container => {
                sqlx::query_as(
                    "INSERT INTO container_task_types (name, description, user_id, command_to_run, \
                 environment_variables, required_arguments, required_arguments_default_values, \
                 logs_path, results_path, container_image, container_type) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(&f.name)
                .bind(&f.description)
                .bind(user_id)
                .bind(&f.command_to_run)
                .bind(Json(&f.environment_variables))
                .bind(Json(&f.required_arguments))
                .bind(Json(&f.required_arguments_default_values))
                .bind(&f.logs_path)
                .bind(&f.results_path)
                .bind(&f.container_image)
                .bind(&f.container_type)
                .fetch_one(&self.pool)
                .await?
            }
            TypeClass::Executable => sqlx::query_as(
                "INSERT INTO executable_task_types (name, description, user_id, command_to_run, \
                 environment_variables, required_arguments, required_arguments_default_values, \
                 json_file_option) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(&f.name)
            .bind(&f.description)
            .bind(user_id)
            .bind(&f.command_to_run)
            .bind(Json(&f.environment_variables))
            .bind(Json(&f.required_arguments))
            .bind(Json(&f.required_arguments_default_values))
            .bind(&f.json_file_option)
            .fetch_one(&self.pool)
            .await?,
        };
        self.task_type(class, id.0).await?.ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("task type {} vanished after insert", id.0))
        })
    }

    /// Replaces every writable field (PUT); the owner stays as it was.
    pub async fn update_task_type(
        &self,
        class: TypeClass,
        id: i64,
        f: &TaskTypeFields,
    ) -> Result<(), Error> {
        match class {
            TypeClass::Container => {
                sqlx::query(
                    "UPDATE container_task_types SET name = $2, description = $3, command_to_run = $4, \
                     environment_variables = $5, required_arguments = $6, \
                     required_arguments_default_values = $7, logs_path = $8, results_path = $9, \
                     container_image = $10, container_type = $11 WHERE id = $1",
                )
                .bind(id)
                .bind(&f.name)
                .bind(&f.description)
                .bind(&f.command_to_run)
                .bind(Json(&f.environment_variables))
                .bind(Json(&f.required_arguments))
                .bind(Json(&f.required_arguments_default_values))
                .bind(&f.logs_path)
                .bind(&f.results_path)
                .bind(&f.container_image)
                .bind(&f.container_type)
                .execute(&self.pool)
                .await?
            }
            TypeClass::Executable => {
                sqlx::query(
                    "UPDATE executable_task_types SET name = $2, description = $3, command_to_run = $4, \
                     environment_variables = $5, required_arguments = $6, \
                     required_arguments_default_values = $7, json_file_option = $8 WHERE id = $1",
                )
                .bind(id)
                .bind(&f.name)
                .bind(&f.description)
                .bind(&f.command_to_run)
                .bind(Json(&f.environment_variables))
                .bind(Json(&f.required_arguments))
                .bind(Json(&f.required_arguments_default_values))
                .bind(&f.json_file_option)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }

    pub async fn task_type(&self, class: TypeClass, id: i64) -> Result<Option<TaskTypeRow>, Error> {
        let mut qb = QueryBuilder::<Postgres>::new(class.select());
        qb.push(" AND t.id = ").push_bind(id);
        Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
    }

    pub async fn count_task_types(
        &self,
        class: TypeClass,
        filters: &[Filter],
    ) -> Result<i64, Error> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM (");
        qb.push(class.select());
        push_filters(&mut qb, filters);
        qb.push(") x");
        Ok(qb.build_query_scalar().fetch_one(&self.pool).await?)
    }

    /// Rows in id order, streamed from the database.
    pub fn list_task_types(
        &self,
        class: TypeClass,
        filters: &[Filter],
        page: Page,
    ) -> BoxStream<'static, Result<TaskTypeRow, Error>> {
        let mut qb = QueryBuilder::<Postgres>::new(class.select());
        push_filters(&mut qb, filters);
        qb.push(" ORDER BY t.id");
        push_page(&mut qb, page);
        crate::stream_rows(self.pool.clone(), qb)
    }
}

impl Store {
    /// Whether another task type of the class already has `name`.
    pub async fn task_type_name_taken(
        &self,
        class: TypeClass,
        name: &str,
        except: Option<i64>,
    ) -> Result<bool, Error> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE name = $1 AND id IS DISTINCT FROM $2)",
            class.table()
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(except)
            .fetch_one(&self.pool)
            .await?)
    }
}
