//! The api service: saltant's REST API, wire-compatible with the original (see
//! ../shared/saltant-reference.md in the spec), plus saltant's own native endpoints.
//! It validates, inserts one row and publishes one submission per new instance; it never
//! runs work itself.

mod auth;
mod body;
mod error;
mod fields;
mod hosts;
mod io;
mod jwt;
mod observe;
mod openapi;
mod query;
mod repr;
mod resources;
mod routes;
mod serve;
mod sse;
mod suffix;
mod throttle;
mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use saltant_bus::{Bus, BusConfig};
use saltant_store::{Store, StoreConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

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
    /// HS256 key of JSON Web Tokens. Unset: a random key generated once and kept in
    /// PostgreSQL, shared by every api replica.
    pub jwt_secret: Option<String>,
    /// Lifetime of JWT access tokens (the original's example: 3 days).
    pub jwt_access_lifetime_secs: u64,
    /// Lifetime of JWT refresh tokens (the original's example: 245 days).
    pub jwt_refresh_lifetime_secs: u64,
    /// Lifetime of a browser session (Django's default: two weeks).
    pub session_lifetime_secs: u64,
    /// Mark cookies `Secure` (serve over HTTPS).
    pub secure_cookies: bool,
    /// Who may create and change executable task types (code that runs on executors'
    /// machines): `everyone`, as the original, or `superusers` (docs/security.md).
    pub executable_types_by: WhoMay,
    /// Failed logins (`/api/token/`, `/api/auth/login/`) allowed per client address and
    /// per username within a minute; more answer 429.
    pub login_failures_per_minute: u32,
    /// Host names the api answers to (Django's `ALLOWED_HOSTS`): exact names or addresses,
    /// `.example.com` for the domain and its subdomains, `*` for any. A request naming
    /// another host is 400 (its links would point there). The listen address is added.
    pub allowed_hosts: Vec<String>,
    /// Seconds a request's headers may take to arrive; also how long a keep-alive
    /// connection may stay idle.
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without sending anything.
    pub body_timeout_secs: u64,
    /// Connections at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Seconds any one database statement of a request may run; longer is 400.
    pub statement_timeout_secs: u64,
    /// Seconds a streamed list (rows sent as the client reads them) may run.
    pub list_timeout_secs: u64,
    /// Lists (with their count) one user may have running at once; more wait their turn,
    /// so that one user's expensive filters cannot take every database connection.
    pub lists_per_user: u32,
    /// Link to an instance's trace in the operator's tracing UI, `{trace_id}` replaced
    /// (e.g. `http://127.0.0.1:16686/trace/{trace_id}` for Jaeger); none by default.
    pub trace_url: Option<String>,
    /// Networks whose clients may read `/metrics`, `/healthz` and `/readyz` on the api's
    /// port (others get 404): loopback by default. A proxy or NAT in front of the api
    /// makes every client look like it, so widen this only where the api is reached
    /// directly (e.g. a private network with Prometheus); the public must not read queue
    /// names.
    pub telemetry_from: Vec<ipnet::IpNet>,
}

/// Who may do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhoMay {
    Everyone,
    Superusers,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 2 * 1024 * 1024,
            migrate: true,
            jwt_secret: None,
            jwt_access_lifetime_secs: 3 * 24 * 3600,
            jwt_refresh_lifetime_secs: 245 * 24 * 3600,
            session_lifetime_secs: 14 * 24 * 3600,
            secure_cookies: false,
            executable_types_by: WhoMay::Everyone,
            login_failures_per_minute: 10,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 4096,
            statement_timeout_secs: 5,
            list_timeout_secs: 300,
            lists_per_user: 4,
            trace_url: None,
            telemetry_from: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub config: Arc<Config>,
    /// The JWT key, read (or generated) on first use.
    pub jwt_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    /// Cancelled when the api shuts down: live streams end (clients reconnect elsewhere
    /// with `Last-Event-ID`) so that the graceful shutdown does not wait on them.
    pub closing: CancellationToken,
    pub failed_logins: Arc<throttle::FailedLogins>,
    /// Lists running per user (`api.lists_per_user` at once).
    pub list_turns: Arc<throttle::Turns>,
}

impl AppState {
    pub fn new(store: Store, bus: Bus, config: Config, closing: CancellationToken) -> Self {
        AppState {
            store,
            bus,
            config: Arc::new(config.clone()),
            jwt_key: Arc::new(tokio::sync::OnceCell::new()),
            failed_logins: Arc::new(throttle::FailedLogins::new(
                config.login_failures_per_minute,
            )),
            list_turns: Arc::new(throttle::Turns::new(config.lists_per_user)),
            closing,
        }
    }

    pub(crate) async fn jwt_secret(&self) -> Result<Vec<u8>, ApiError> {
        let key = self
            .jwt_key
            .get_or_try_init(|| async {
                // A configured key's length was checked before the api started.
                match &self.config.jwt_secret {
                    Some(s) => Ok::<_, ApiError>(s.as_bytes().to_vec()),
                    None => Ok(self.store.secret("jwt-hs256", 64).await?),
                }
            })
            .await?;
        Ok(key.clone())
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let state_config = state.config.clone();
    let (routes, api, _) = resources::routes().finish();
    // The web pages (`/`, docs/ui.md) beside the API (`/api/…`).
    let routes = routes.merge(ui::routes());
    let doc = openapi::Document(Arc::new(openapi::document(api)));
    let app = routes
        .route_layer(axum::middleware::from_fn(observe::name_route))
        .layer(axum::Extension(doc))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state);
    // The format suffix is taken off before routing, so it wraps the routed app.
    let app = tower::Layer::layer(&axum::middleware::map_request(suffix::strip), app);
    let hosts = Arc::new(hosts::AllowedHosts::new(
        &state_config.allowed_hosts,
        state_config.listen,
    ));
    let mut router = Router::new()
        .fallback_service(app)
        .layer(axum::middleware::from_fn(move |req, next| {
            hosts::check(hosts.clone(), req, next)
        }));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        ));
    }
    // Probes and scrapes are answered outside the host check, to the networks allowed,
    // and are not traced.
    let from = Arc::new(state_config.telemetry_from.clone());
    Router::new()
        .merge(
            saltant_telemetry::health::router().route_layer(axum::middleware::from_fn(
                move |req, next| observe::telemetry_allowed(from.clone(), req, next),
            )),
        )
        .fallback_service(router.layer(axum::middleware::from_fn(observe::observe)))
}

/// On every answer (docs/security.md): no content sniffing, no framing by other sites, no
/// full URLs in `Referer` to other origins.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", "frame-ancestors 'none'"),
    ("referrer-policy", "same-origin"),
];

/// Checked before any handler: a body announced larger than the limit is refused at once,
/// before the client sends it.
async fn guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = state.config.max_body_bytes;
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        let mut r = ApiError::PayloadTooLarge(limit).into_response();
        // The unread body cannot be skipped on this connection.
        r.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return r;
    }
    next.run(req).await
}

/// Serves until `shutdown`, then finishes in-flight requests.
pub async fn run(
    bus_config: BusConfig,
    store_config: StoreConfig,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The binary checks every setting first; a library caller gets the same refusal
    // before anything is touched.
    if config.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
        anyhow::bail!("api.jwt_secret must be at least 32 bytes");
    }
    if config.migrate {
        // Migrations may run long: not under the requests' time-outs.
        let admin = Store::connect_lazy(&store_config)?;
        admin.migrate().await?;
        admin.pool.close().await;
    }
    let store = Store::connect_lazy_limited(
        &store_config,
        Some(saltant_store::Limits {
            statement: Duration::from_secs(config.statement_timeout_secs),
            list: Duration::from_secs(config.list_timeout_secs),
        }),
    )?;
    saltant_telemetry::health::starting("api");
    let bus = Bus::connect(&bus_config, saltant_bus::Service::Api).await?;
    saltant_telemetry::health::started(
        "api",
        [("postgres", store.readiness()), ("nats", bus.readiness())],
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {}: {e}", config.listen))?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "api listening");
    let app = router(AppState::new(
        store.clone(),
        bus.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    serve::serve(listener, app, &config, shutdown).await?;
    if let Err(e) = bus.client.drain().await {
        tracing::warn!(error = %e, "drain nats connection");
    }
    store.pool.close().await;
    tracing::info!("api stopped");
    Ok(())
}
