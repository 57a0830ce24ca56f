//! W3C trace context (`traceparent`, `tracestate`) in NATS message headers, so one trace
//! follows an instance from the HTTP request through the scheduler to the executor.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// Writes the current span's context into `headers`.
pub(crate) fn inject(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// Headers holding the current span's context.
pub(crate) fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    inject(&mut h);
    h
}

/// Makes `span` a child of the context carried in `headers`, if any.
pub fn set_parent(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers else { return };
    let cx =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(cx);
}

/// Makes `span` a child of the span a stored `traceparent` names (an instance's, for work
/// done on its behalf with no message to carry the context).
pub fn set_parent_traceparent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let mut h = HeaderMap::new();
    h.insert("traceparent", value);
    set_parent(span, Some(&h));
}

/// The `traceparent` value for the current span, e.g. for a task's `TRACEPARENT`.
pub fn traceparent() -> Option<String> {
    let h = headers();
    h.get("traceparent").map(|v| v.as_str().to_owned())
}
