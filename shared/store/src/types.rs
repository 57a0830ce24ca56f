//! Task types: container and executable, two tables with a common shape.

use crate::filter::{FilterField, Kind};
use crate::owned::Table;
use crate::{Error, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

/// Which task type table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// The class's table as lists read it.
    pub const fn listing(self) -> &'static Table {
        match self {
            TypeClass::Container => &CONTAINER_TYPES,
            TypeClass::Executable => &EXECUTABLE_TYPES,
        }
    }

    pub(crate) const fn select(self) -> &'static str {
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

const fn filter(name: &'static str, column: &'static str, kind: Kind) -> FilterField {
    FilterField { name, column, kind }
}

const COMMON_FILTERS: [FilterField; 5] = [
    filter("name", "t.name", Kind::Text),
    filter("description", "t.description", Kind::Text),
    filter("user__username", "u.username", Kind::Text),
    filter("command_to_run", "t.command_to_run", Kind::Text),
    filter("datetime_created", "t.datetime_created", Kind::Time),
];

const CONTAINER_FILTERS: [FilterField; 7] = [
    COMMON_FILTERS[0],
    COMMON_FILTERS[1],
    COMMON_FILTERS[2],
    COMMON_FILTERS[3],
    COMMON_FILTERS[4],
    filter("container_image", "t.container_image", Kind::Text),
    filter("container_type", "t.container_type", Kind::Text),
];

const CONTAINER_TYPES: Table = Table {
    table: "container_task_types",
    select: TypeClass::Container.select(),
    key: "t.id",
    order: "t.id",
    filters: &CONTAINER_FILTERS,
};

const EXECUTABLE_TYPES: Table = Table {
    table: "executable_task_types",
    select: TypeClass::Executable.select(),
    key: "t.id",
    order: "t.id",
    filters: &COMMON_FILTERS,
};

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

impl TypeClass {
    /// The writable columns of the class, in the order [`bind_fields`] binds them.
    fn columns(self) -> Vec<&'static str> {
        let mut columns = vec![
            "name",
            "description",
            "command_to_run",
            "environment_variables",
            "required_arguments",
            "required_arguments_default_values",
        ];
        match self {
            TypeClass::Container => columns.extend([
                "logs_path",
                "results_path",
                "container_image",
                "container_type",
            ]),
            TypeClass::Executable => columns.push("json_file_option"),
        }
        columns
    }
}

fn bind_fields(class: TypeClass, f: &TaskTypeFields, values: &mut crate::owned::Values<'_>) {
    values
        .push_bind(f.name.clone())
        .push_bind(f.description.clone())
        .push_bind(f.command_to_run.clone())
        .push_bind(Json(f.environment_variables.clone()))
        .push_bind(Json(f.required_arguments.clone()))
        .push_bind(Json(f.required_arguments_default_values.clone()));
    match class {
        TypeClass::Container => {
            values
                .push_bind(f.logs_path.clone())
                .push_bind(f.results_path.clone())
                .push_bind(f.container_image.clone())
                .push_bind(f.container_type.clone());
        }
        TypeClass::Executable => {
            values.push_bind(f.json_file_option.clone());
        }
    }
}

impl Store {
    /// Inserts (id `None`, owned by `owner`) or replaces every writable field of a task
    /// type (the owner stays as it was); returns its id.
    pub async fn save_task_type(
        &self,
        class: TypeClass,
        id: Option<i64>,
        owner: i64,
        f: &TaskTypeFields,
    ) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await?;
        let columns = class.columns();
        let row = crate::owned::Row {
            table: class.table(),
            columns: &columns,
        };
        let id = row
            .save(&mut tx, id, owner, |v| bind_fields(class, f, v))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn task_type(&self, class: TypeClass, id: i64) -> Result<Option<TaskTypeRow>, Error> {
        self.one(class.listing(), id).await
    }
}
