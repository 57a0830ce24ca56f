//! The api service: saltant's REST API, wire-compatible with the original (see
//! ../shared/saltant-reference.md in the spec), plus saltant's own native endpoints.
//! It validates, inserts one row and publishes one submission per new instance; it never
//! runs work itself.

mod auth;
mod body;
mod error;
mod fields;
mod query;
mod repr;
mod resources;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use saltant_bus::{Bus, BusConfig};
use saltant_store::{Store, StoreConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

/// Api configuration (`[api]`, `SALTANT_API__…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Run database migrations at start-up.
    pub migrate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 2 * 1024 * 1024,
            migrate: true,
        }
    }
}

static MAX_BODY: AtomicUsize = AtomicUsize::new(2 * 1024 * 1024);

pub(crate) fn max_body_bytes() -> usize {
    MAX_BODY.load(Ordering::Relaxed)
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub config: Arc<Config>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    MAX_BODY.store(state.config.max_body_bytes, Ordering::Relaxed);
    resources::routes()
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown`, then finishes in-flight requests.
pub async fn run(
    bus_config: BusConfig,
    store_config: StoreConfig,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::connect_lazy(&store_config)?;
    if config.migrate {
        store.migrate().await?;
    }
    let bus = Bus::connect(&bus_config, "saltant-api").await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {}: {e}", config.listen))?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "api listening");
    let app = router(AppState {
        store: store.clone(),
        bus: bus.clone(),
        config: Arc::new(config),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    if let Err(e) = bus.client.drain().await {
        tracing::warn!(error = %e, "drain nats connection");
    }
    store.pool.close().await;
    tracing::info!("api stopped");
    Ok(())
}
