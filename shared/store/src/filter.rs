//! Filters for list queries, built by the api from query parameters and rendered here as
//! bound SQL: a column is always one of the caller's fixed names, a value is always bound.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

/// One condition on a column. Column names are `&'static str` chosen by code, never text
/// from a request.
#[derive(Debug, Clone)]
pub enum Filter {
    TextEq(&'static str, String),
    TextIn(&'static str, Vec<String>),
    TextContains(&'static str, String),
    TextStartsWith(&'static str, String),
    TextEndsWith(&'static str, String),
    /// PostgreSQL POSIX regular expression (`~`); an invalid pattern is a query error
    /// (SQLSTATE 2201B) that the caller turns into a 400.
    TextRegex(&'static str, String),
    BoolEq(&'static str, bool),
    IdEq(&'static str, i64),
    IdIn(&'static str, Vec<i64>),
    TimeEq(&'static str, DateTime<Utc>),
    TimeLt(&'static str, DateTime<Utc>),
    TimeLte(&'static str, DateTime<Utc>),
    TimeGt(&'static str, DateTime<Utc>),
    TimeGte(&'static str, DateTime<Utc>),
    TimeRange(&'static str, DateTime<Utc>, DateTime<Utc>),
    /// Year of the timestamp in UTC.
    TimeYear(&'static str, i32),
    /// A condition the caller writes in full (fixed SQL, no user text).
    Raw(&'static str),
}

/// What a filter parameter filters on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Case-sensitive string lookups: exact, contains, in, startswith, endswith, regex.
    Text,
    /// Exact string match against fixed choices; a bad value is a 400.
    Choice(&'static [&'static str]),
    Bool,
    /// Ids of rows of a table: exact and in; an id that is not there is a 400.
    Fk(IdTable),
    /// exact, year, range, lt, lte, gt, gte.
    Time,
}

impl Kind {
    /// The lookups a field of this kind takes (`exact` is the bare name).
    pub fn lookups(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &["exact", "contains", "in", "startswith", "endswith", "regex"],
            Kind::Choice(_) => &["exact", "in"],
            Kind::Bool => &["exact"],
            Kind::Fk(_) => &["exact", "in"],
            Kind::Time => &["exact", "year", "range", "lt", "lte", "gt", "gte"],
        }
    }
}

/// One filterable field: its query parameter and the SQL column (of a [`Table`]'s
/// SELECT) it filters.
///
/// [`Table`]: crate::owned::Table
#[derive(Debug, Clone, Copy)]
pub struct FilterField {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: Kind,
}

/// Tables whose ids requests refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTable {
    ContainerTypes,
    ExecutableTypes,
    Whitelists,
    Queues,
}

impl IdTable {
    pub(crate) fn name(self) -> &'static str {
        match self {
            IdTable::ContainerTypes => "container_task_types",
            IdTable::ExecutableTypes => "executable_task_types",
            IdTable::Whitelists => "task_whitelists",
            IdTable::Queues => "task_queues",
        }
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Appends ` AND <condition>` for every filter.
pub fn push_filters(qb: &mut QueryBuilder<Postgres>, filters: &[Filter]) {
    for f in filters {
        qb.push(" AND ");
        match f {
            Filter::TextEq(c, v) => {
                qb.push(*c).push(" = ").push_bind(v.clone());
            }
            Filter::TextIn(c, v) => {
                qb.push(*c).push(" = ANY(").push_bind(v.clone()).push(")");
            }
            Filter::TextContains(c, v) => {
                qb.push(*c)
                    .push(" LIKE ")
                    .push_bind(format!("%{}%", like_escape(v)));
            }
            Filter::TextStartsWith(c, v) => {
                qb.push(*c)
                    .push(" LIKE ")
                    .push_bind(format!("{}%", like_escape(v)));
            }
            Filter::TextEndsWith(c, v) => {
                qb.push(*c)
                    .push(" LIKE ")
                    .push_bind(format!("%{}", like_escape(v)));
            }
            Filter::TextRegex(c, v) => {
                qb.push(*c).push(" ~ ").push_bind(v.clone());
            }
            Filter::BoolEq(c, v) => {
                qb.push(*c).push(" = ").push_bind(*v);
            }
            Filter::IdEq(c, v) => {
                qb.push(*c).push(" = ").push_bind(*v);
            }
            Filter::IdIn(c, v) => {
                qb.push(*c).push(" = ANY(").push_bind(v.clone()).push(")");
            }
            Filter::TimeEq(c, v) => {
                qb.push(*c).push(" = ").push_bind(*v);
            }
            Filter::TimeLt(c, v) => {
                qb.push(*c).push(" < ").push_bind(*v);
            }
            Filter::TimeLte(c, v) => {
                qb.push(*c).push(" <= ").push_bind(*v);
            }
            Filter::TimeGt(c, v) => {
                qb.push(*c).push(" > ").push_bind(*v);
            }
            Filter::TimeGte(c, v) => {
                qb.push(*c).push(" >= ").push_bind(*v);
            }
            Filter::TimeRange(c, a, b) => {
                qb.push(*c)
                    .push(" BETWEEN ")
                    .push_bind(*a)
                    .push(" AND ")
                    .push_bind(*b);
            }
            Filter::TimeYear(c, y) => {
                qb.push("EXTRACT(YEAR FROM ")
                    .push(*c)
                    .push(" AT TIME ZONE 'UTC') = ")
                    .push_bind(*y);
            }
            Filter::Raw(sql) => {
                qb.push(*sql);
            }
        }
    }
}

/// A page of a list: which rows, in the resource's order.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub offset: i64,
    /// `None`: every row from the offset on.
    pub limit: Option<i64>,
}

pub(crate) fn push_page(qb: &mut QueryBuilder<Postgres>, page: Page) {
    if let Some(limit) = page.limit {
        qb.push(" LIMIT ").push_bind(limit);
    }
    if page.offset > 0 {
        qb.push(" OFFSET ").push_bind(page.offset);
    }
}
