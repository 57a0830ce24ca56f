//! Health and the telemetry endpoints: the readiness checks services register, and the
//! router of `/metrics`, `/healthz` and `/readyz` (served by the api on its own port, by
//! the other services on `telemetry.listen`; `saltant all` has one of each). See
//! docs/observability.md, "Health".

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A readiness check: `Ok` when the dependency answers, else what is wrong.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

fn checks() -> &'static Mutex<Vec<(String, Check)>> {
    static CHECKS: OnceLock<Mutex<Vec<(String, Check)>>> = OnceLock::new();
    CHECKS.get_or_init(Mutex::default)
}

/// Adds (or replaces) a check of `/readyz`.
fn register_check(name: impl Into<String>, check: Check) {
    let name = name.into();
    let mut all = checks().lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(n, _)| *n != name);
    all.push((name, check));
}

/// Marks a service as starting: `/readyz` is 503 until the service registers its checks.
pub fn starting(service: &str) {
    let service = service.to_owned();
    let message = format!("{service} is starting");
    register_check(
        format!("{service}.started"),
        Arc::new(move || {
            let m = message.clone();
            Box::pin(async move { Err(m) })
        }),
    );
}

/// Marks a service as started (connected, its topology ensured) and adds its checks as
/// `<service>.<name>` (e.g. `scheduler.postgres`).
pub fn started<'a>(service: &str, checks: impl IntoIterator<Item = (&'a str, Check)>) {
    for (name, check) in checks {
        register_check(format!("{service}.{name}"), check);
    }
    register_check(
        format!("{service}.started"),
        Arc::new(|| Box::pin(async { Ok(()) })),
    );
}

/// Runs every check (each within 2 s, all at once): whether all passed, and each result.
pub async fn readiness() -> (bool, Vec<(String, Result<(), String>)>) {
    let all: Vec<(String, Check)> = checks().lock().unwrap_or_else(|p| p.into_inner()).clone();
    let results = futures::future::join_all(all.into_iter().map(|(name, check)| async move {
        let r = match tokio::time::timeout(Duration::from_secs(2), check()).await {
            Ok(r) => r,
            Err(_) => Err("no answer within 2 s".to_owned()),
        };
        (name, r)
    }))
    .await;
    (results.iter().all(|(_, r)| r.is_ok()), results)
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    crate::metrics::metrics().encode(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

async fn readyz() -> axum::response::Response {
    let (ready, results) = readiness().await;
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => "ok".to_owned(),
                Err(e) => e,
            };
            (name, serde_json::Value::String(v))
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ready, "checks": checks });
    (status, axum::Json(body)).into_response()
}

/// Binds `telemetry.listen` (at start-up, so a taken port stops the service at once).
pub async fn bind(listen: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("telemetry.listen {listen}: {e}"))
}

/// Serves [`router`] on `listener` until `shutdown` (the services but the api).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(listen = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router::<()>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
