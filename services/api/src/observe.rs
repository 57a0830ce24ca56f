//! Each request's root span, which joins the caller's trace when the request carries a W3C
//! `traceparent`, and the HTTP metrics by route (docs/observability.md).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TraceContextExt as _;
use saltant_telemetry::metrics::{HttpLabels, RouteLabels, metrics};
use std::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The route pattern that answered (e.g. `/api/taskinstances/{uuid}/`), passed from
/// [`name_route`] to [`observe`] in the answer's extensions.
#[derive(Clone)]
struct Route(String);

/// Runs inside routing: records the matched route on the request's span and answer.
pub(crate) async fn name_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if let Some(r) = &route {
        tracing::Span::current().record("http.route", r.as_str());
    }
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(Route(r));
    }
    res
}

/// `/metrics`, `/healthz` and `/readyz` answer clients of `api.telemetry_from` only (404
/// to others, as if they did not exist).
pub(crate) async fn telemetry_allowed(
    from: std::sync::Arc<Vec<ipnet::IpNet>>,
    req: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse as _;
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    if peer.is_some_and(|ip| from.iter().any(|n| n.contains(&ip))) {
        next.run(req).await
    } else {
        crate::error::ApiError::NotFound.into_response()
    }
}

/// Outermost: the request's span (server kind, named `METHOD route`) and its metrics. A
/// server error marks the span as failed.
pub(crate) async fn observe(req: Request, next: Next) -> Response {
    // Extension methods are the client's to invent: one label value for all of them.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "_OTHER",
    }
    .to_owned();
    let span = tracing::info_span!(
        "HTTP request",
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.path = %req.uri().path(),
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(req.headers()))
    });
    let _ = span.set_parent(parent);
    let started = Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    let route = res
        .extensions()
        .get::<Route>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_owned();
    let status = res.status();
    // Named once the route is known (`otel.name` recorded this late would be ignored: the
    // span has started when its context went out).
    span.context()
        .span()
        .update_name(format!("{method} {route}"));
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let m = metrics();
    m.http_requests
        .get_or_create(&HttpLabels {
            method: method.clone(),
            route: route.clone(),
            status: status.as_u16(),
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    res
}
