//! What the owned resources (task types, queues, whitelists) and users share: a table
//! described once — its SELECT, order, key column and the filters the api offers on it —
//! and the generic reads (one, count, page) and writes (insert or replace, link lists).

use crate::filter::{Filter, FilterField, Page, push_filters, push_page};
use crate::{Error, Store};
use futures::stream::BoxStream;
use sqlx::postgres::PgRow;
use sqlx::query_builder::Separated;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

/// A listable table: the filter columns refer to the aliases of `select`.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The table itself (unique names are checked in it).
    pub table: &'static str,
    /// `SELECT … WHERE true`: conditions are appended with ` AND`.
    pub select: &'static str,
    /// The key column (`q.id`).
    pub key: &'static str,
    /// `ORDER BY` of lists.
    pub order: &'static str,
    /// The filter parameters the api accepts, and the column each filters.
    pub filters: &'static [FilterField],
}

impl Store {
    /// The row of `table` with key `id`.
    pub async fn one<T>(&self, table: &Table, id: i64) -> Result<Option<T>, Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let mut qb = QueryBuilder::<Postgres>::new(table.select);
        qb.push(" AND ").push(table.key).push(" = ").push_bind(id);
        Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
    }

    /// Whether a row of `table` other than `except` already has `name`.
    pub async fn name_taken(
        &self,
        table: &Table,
        name: &str,
        except: Option<i64>,
    ) -> Result<bool, Error> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE name = $1 AND id IS DISTINCT FROM $2)",
            table.table
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(except)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Deletes the row of `table` with id `id` (rows that refer to it go too, as the
    /// schema's `ON DELETE CASCADE` says); false if there was none.
    pub async fn delete(&self, table: &Table, id: i64) -> Result<bool, Error> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table.table);
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many rows of `table` pass `filters`.
    pub async fn count(&self, table: &Table, filters: &[Filter]) -> Result<i64, Error> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM (");
        qb.push(table.select);
        push_filters(&mut qb, filters);
        qb.push(") x");
        Ok(qb.build_query_scalar().fetch_one(&self.pool).await?)
    }

    /// A page of the rows passing `filters`, in the table's order, streamed.
    pub fn page<T>(
        &self,
        table: &Table,
        filters: &[Filter],
        page: Page,
    ) -> BoxStream<'static, Result<T, Error>>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static,
    {
        let mut qb = QueryBuilder::<Postgres>::new(table.select);
        push_filters(&mut qb, filters);
        qb.push(" ORDER BY ").push(table.order);
        push_page(&mut qb, page);
        crate::stream_rows(self, qb)
    }
}

/// The values of a row being written, bound in the order of its columns.
pub(crate) type Values<'qb> = Separated<'qb, Postgres, &'static str>;

/// The writable columns of an owned table (its owner is `user_id`, its key `id`).
pub(crate) struct Row<'a> {
    pub table: &'static str,
    pub columns: &'a [&'static str],
}

impl Row<'_> {
    /// Inserts (id `None`, owned by `owner`) or replaces the columns (the owner stays);
    /// `bind` binds one value per column. Returns the id.
    pub async fn save(
        &self,
        conn: &mut PgConnection,
        id: Option<i64>,
        owner: i64,
        bind: impl FnOnce(&mut Values<'_>),
    ) -> Result<i64, Error> {
        let columns = self.columns.join(", ");
        let mut qb = QueryBuilder::<Postgres>::new(match id {
            None => format!("INSERT INTO {} (user_id, {columns}) VALUES (", self.table),
            Some(_) => format!("UPDATE {} SET ({columns}) = ROW(", self.table),
        });
        {
            let mut values = qb.separated(", ");
            if id.is_none() {
                values.push_bind(owner);
            }
            bind(&mut values);
        }
        qb.push(")");
        if let Some(id) = id {
            qb.push(" WHERE id = ").push_bind(id);
        }
        qb.push(" RETURNING id");
        Ok(qb.build_query_scalar().fetch_one(conn).await?)
    }
}

/// A many-to-many list of a row: `table (key, value)`.
pub(crate) struct Links {
    pub table: &'static str,
    pub key: &'static str,
    pub value: &'static str,
}

impl Links {
    /// Makes `ids` the list of row `id` (`replace`: the row existed and had a list).
    pub async fn set(
        &self,
        conn: &mut PgConnection,
        id: i64,
        ids: &[i64],
        replace: bool,
    ) -> Result<(), Error> {
        let Links { table, key, value } = self;
        if replace {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE {key} = $1"
            )))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({key}, {value}) SELECT $1, unnest($2::bigint[]) \
             ON CONFLICT DO NOTHING"
        )))
        .bind(id)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
