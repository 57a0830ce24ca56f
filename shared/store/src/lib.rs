//! saltant's PostgreSQL store: the connection pool, migrations, and every query the
//! services run. Durable records live here; the bus carries work and events.

mod error;
pub mod filter;
pub mod instance_filters;
pub mod instances;
pub mod logs;
pub mod owned;
pub mod queues;
pub mod sessions;
pub mod types;
pub mod users;

pub use error::Error;
pub use filter::{Filter, Page};

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub use sqlx;

/// How to reach PostgreSQL. Part of every service's configuration that needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database`
    pub url: String,
    pub max_connections: u32,
    /// Seconds to wait for a free connection before a request fails with 503.
    pub acquire_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "postgres://postgres@127.0.0.1:5432/saltant".into(),
            max_connections: 16,
            acquire_timeout_secs: 5,
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: PgPool,
    /// How long a streamed list may run (its rows go out as the client reads them); the
    /// pool's own statement time-out, if any, bounds every other statement.
    list_timeout: Option<Duration>,
}

/// Time limits of the statements of a [`Store`] serving requests (the api).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Every statement.
    pub statement: Duration,
    /// A streamed list, which runs as long as its client reads.
    pub list: Duration,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens a pool. Connections are made lazily, so a database that is down at start-up
    /// shows as errors on use (503 in the api) instead of a crash.
    pub fn connect_lazy(config: &StoreConfig) -> Result<Store, Error> {
        Store::connect_lazy_limited(config, None)
    }

    /// [`Store::connect_lazy`], each statement stopped by PostgreSQL after `limits`
    /// (SQLSTATE 57014, [`Error::TimedOut`]).
    pub fn connect_lazy_limited(
        config: &StoreConfig,
        limits: Option<Limits>,
    ) -> Result<Store, Error> {
        let mut options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| Error::Config(format!("database url: {e}")))?
            .application_name("saltant");
        if let Some(l) = limits {
            options = options.options([(
                "statement_timeout",
                format!("{}ms", l.statement.as_millis()),
            )]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
            .connect_lazy_with(options);
        Ok(Store {
            pool,
            list_timeout: limits.map(|l| l.list),
        })
    }

    /// Applies pending migrations (idempotent; concurrent callers are serialised by
    /// sqlx's advisory lock).
    pub async fn migrate(&self) -> Result<(), Error> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("run migrations")))
    }

    /// A `/readyz` check: the database answers.
    pub fn readiness(&self) -> saltant_telemetry::health::Check {
        let store = self.clone();
        std::sync::Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Runs a built query and streams its rows over a connection held for the stream's life,
/// so large lists never sit in memory. The statement runs in a transaction of its own with
/// the store's list time-out. A stream dropped before its end (the client went away, or an
/// error) closes its connection instead of returning it to the pool: no open transaction,
/// unread rows or session setting ever reaches another request.
pub(crate) fn stream_rows<T>(
    store: &Store,
    mut qb: sqlx::QueryBuilder<sqlx::Postgres>,
) -> futures::stream::BoxStream<'static, Result<T, Error>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + 'static,
{
    let (pool, list_timeout) = (store.pool.clone(), store.list_timeout);
    Box::pin(async_stream::try_stream! {
        use futures::StreamExt;
        let mut held = Held { conn: pool.acquire().await?, done: false };
        sqlx::query("BEGIN").execute(&mut *held.conn).await?;
        if let Some(t) = list_timeout {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL statement_timeout = {}",
                t.as_millis()
            )))
            .execute(&mut *held.conn)
            .await?;
        }
        {
            let mut rows = qb.build_query_as::<T>().fetch(&mut *held.conn);
            while let Some(row) = rows.next().await {
                yield row?;
            }
        }
        sqlx::query("COMMIT").execute(&mut *held.conn).await?;
        held.done = true;
    })
}

/// A connection streaming a list: closed, not pooled, unless the list ran to its end.
struct Held {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    done: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}
