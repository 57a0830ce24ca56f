//! Tracing, OpenTelemetry and Prometheus setup shared by every service: readable or JSON
//! logs on stderr, OTLP trace export when the standard `OTEL_*` variables ask for it, and
//! the process's metrics registry (`metrics`). See docs/observability.md.

pub mod health;
pub mod metrics;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes and shuts the exporter down when dropped: keep it until the end of `main`.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    pub fn shutdown(mut self) {
        self.flush();
    }
    fn flush(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("flush traces: {e}");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Who is tracing: the resource every span of this process carries.
pub struct Identity<'a> {
    /// `service.name` unless `OTEL_SERVICE_NAME` says otherwise (e.g. `saltant-api`).
    pub service: &'a str,
    /// `service.version`.
    pub version: &'a str,
    /// `service.instance.id`: this process among the service's replicas.
    pub instance: &'a str,
}

/// How exported spans travel: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`; `grpc` unless one says `http/protobuf` or `http/json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Protocol {
    fn from_env() -> anyhow::Result<Protocol> {
        let value = [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        match value.as_deref() {
            None | Some("grpc") => Ok(Protocol::Grpc),
            Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
            Some("http/json") => Ok(Protocol::HttpJson),
            Some(other) => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not one of grpc, http/protobuf, http/json"
            ),
        }
    }
}

/// Log lines: `SALTANT_LOG_FORMAT` = `text`, `pretty` or `json`; by default readable on a
/// terminal and JSON lines otherwise (for a log shipper).
fn json_logs() -> bool {
    match std::env::var("SALTANT_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Ok("pretty") => false,
        _ => !std::io::stderr().is_terminal(),
    }
}

/// Installs the global subscriber. `RUST_LOG` (default `info`) filters. Traces are exported
/// over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
/// set (protocol: [`Protocol`]); `OTEL_TRACES_SAMPLER`/`_ARG` sample them and
/// `OTEL_RESOURCE_ATTRIBUTES` adds to the resource. The W3C trace-context propagator is
/// always installed so context crosses the bus.
pub fn init(who: Identity<'_>) -> anyhow::Result<Guard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,async_nats=warn,hyper=warn,bollard=warn")
    });
    let fmt = if json_logs() {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed()
    };

    let wants_otlp = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
    // A provider always exists, so trace ids are made and propagated (and stored with each
    // instance) even when nothing exports them.
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| who.service.to_owned());
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(name)
            .with_attributes([
                KeyValue::new("service.version", who.version.to_owned()),
                KeyValue::new("service.instance.id", who.instance.to_owned()),
                KeyValue::new("host.name", hostname()),
            ])
            .build(),
    );
    if wants_otlp {
        use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
        let exporter = match Protocol::from_env()? {
            Protocol::Grpc => SpanExporter::builder().with_tonic().build()?,
            Protocol::HttpProtobuf => SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build()?,
            Protocol::HttpJson => SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
                .build()?,
        };
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer("saltant");
    opentelemetry::global::set_tracer_provider(provider.clone());
    // `RUST_LOG` chooses log lines only: saltant's spans always exist, or an instance's
    // stored traceparent (and with it its one trace) would depend on the log level.
    let spans = tracing_subscriber::filter::Targets::new().with_targets(
        [
            "saltant",
            "saltant_api",
            "saltant_bus",
            "saltant_store",
            "saltant_scheduler",
            "saltant_executor",
            "saltant_log_collector",
        ]
        .map(|t| (t, tracing::Level::INFO)),
    );
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_error_records_to_exceptions(true)
        .with_filter(spans);
    let provider = Some(provider);
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()?;
    Ok(Guard { provider })
}

/// This machine's name, for `host.name` (and an executor's default id).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `[telemetry]` settings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the scheduler, executor and log-collector serve `/metrics`, `/healthz` and
    /// `/readyz` (e.g. `0.0.0.0:9464`); none by default (several executors may share a
    /// machine). The api serves them on its own port, and here too when set.
    pub listen: Option<std::net::SocketAddr>,
}
