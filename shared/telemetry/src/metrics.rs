//! The process's Prometheus metrics (prometheus-client), served at `/metrics` with the
//! health checks (`crate::health`). One registry per process: each service moves the
//! metrics it owns (the others stay empty or at zero there).
//! Every metric, with its labels, is listed in docs/observability.md.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueStateLabels {
    pub queue: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlotLabels {
    pub executor: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngineLabels {
    pub engine: &'static str,
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Seconds from a millisecond to about nine hours, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

/// Seconds from half a millisecond to about a minute, doubling (HTTP answers).
fn answer_time() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Every metric of saltant. See docs/observability.md for who moves which.
pub struct Metrics {
    registry: Registry,
    // api
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Histograms<RouteLabels>,
    // scheduler
    pub instances: Family<QueueStateLabels, Gauge>,
    pub events_recorded: Family<QueueStateLabels, Counter>,
    pub dispatch_latency: Histograms<QueueLabels>,
    pub queue_waiting: Family<QueueLabels, Gauge>,
    pub queue_unacked: Family<QueueLabels, Gauge>,
    pub queue_oldest_waiting: Family<QueueLabels, FloatGauge>,
    pub consumer_pending: Family<ConsumerLabels, Gauge>,
    pub consumer_unacked: Family<ConsumerLabels, Gauge>,
    // executor
    pub start_latency: Histograms<QueueLabels>,
    pub run_duration: Histograms<QueueStateLabels>,
    pub slots: Family<SlotLabels, Gauge>,
    pub engine_errors: Family<EngineLabels, Counter>,
    pub log_bytes: Family<StreamLabels, Counter>,
    pub log_dropped_bytes: Family<StreamLabels, Counter>,
    // log-collector
    pub log_stored_bytes: Counter,
    pub log_stored_chunks: Counter,
    pub log_store_lag: Histogram,
    // everyone
    pub nats_errors: Family<OperationLabels, Counter>,
    pub postgres_errors: Family<KindLabels, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("saltant");
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(answer_time),
            instances: Family::default(),
            events_recorded: Family::default(),
            dispatch_latency: Family::new_with_constructor(latency),
            queue_waiting: Family::default(),
            queue_unacked: Family::default(),
            queue_oldest_waiting: Family::default(),
            consumer_pending: Family::default(),
            consumer_unacked: Family::default(),
            start_latency: Family::new_with_constructor(latency),
            run_duration: Family::new_with_constructor(latency),
            slots: Family::default(),
            engine_errors: Family::default(),
            log_bytes: Family::default(),
            log_dropped_bytes: Family::default(),
            log_stored_bytes: Counter::default(),
            log_stored_chunks: Counter::default(),
            log_store_lag: latency(),
            nats_errors: Family::default(),
            postgres_errors: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "http_requests",
            "HTTP requests answered by the api, by method, route and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time the api took to answer, by method and route",
            m.http_duration.clone(),
        );
        r.register(
            "instances",
            "Unfinished instances by queue and recorded state (the scheduler holding the lease)",
            m.instances.clone(),
        );
        r.register(
            "events_recorded",
            "State changes the scheduler recorded, once per instance, attempt and state",
            m.events_recorded.clone(),
        );
        r.register(
            "dispatch_latency_seconds",
            "From an instance's creation to its dispatch on its queue, by queue",
            m.dispatch_latency.clone(),
        );
        r.register(
            "queue_waiting",
            "Dispatches no executor has taken yet, by queue",
            m.queue_waiting.clone(),
        );
        r.register(
            "queue_unacked",
            "Dispatches taken by executors and not finished, by queue",
            m.queue_unacked.clone(),
        );
        r.register(
            "queue_oldest_waiting_seconds",
            "Age of the oldest instance still waiting to start, by queue",
            m.queue_oldest_waiting.clone(),
        );
        r.register(
            "consumer_pending",
            "Messages a service's durable consumer has not received yet (its lag)",
            m.consumer_pending.clone(),
        );
        r.register(
            "consumer_unacked",
            "Messages a service's durable consumer received and has not acked",
            m.consumer_unacked.clone(),
        );
        r.register(
            "start_latency_seconds",
            "From an instance's creation to the start of an attempt, by queue",
            m.start_latency.clone(),
        );
        r.register(
            "run_duration_seconds",
            "From the start of an attempt to its end, by queue and final state",
            m.run_duration.clone(),
        );
        r.register(
            "executor_slots",
            "An executor's slots, used and free",
            m.slots.clone(),
        );
        r.register(
            "engine_errors",
            "Failed container engine operations (docker, singularity), by operation",
            m.engine_errors.clone(),
        );
        r.register(
            "log_bytes",
            "Task output published by executors, by stream",
            m.log_bytes.clone(),
        );
        r.register(
            "log_dropped_bytes",
            "Task output dropped past executor.output_max_bytes, by stream",
            m.log_dropped_bytes.clone(),
        );
        r.register(
            "log_stored_bytes",
            "Task output the log-collector stored in PostgreSQL",
            m.log_stored_bytes.clone(),
        );
        r.register(
            "log_stored_chunks",
            "Output chunks the log-collector stored",
            m.log_stored_chunks.clone(),
        );
        r.register(
            "log_store_lag_seconds",
            "From a chunk's arrival on the bus to its commit in PostgreSQL",
            m.log_store_lag.clone(),
        );
        r.register(
            "nats_errors",
            "Failed NATS operations, by operation",
            m.nats_errors.clone(),
        );
        r.register(
            "postgres_errors",
            "Failed PostgreSQL operations, by kind (unavailable, timed_out, internal)",
            m.postgres_errors.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encode metrics");
        }
        out
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric names a text uses (`saltant_…`), as written.
    fn referenced(text: &str) -> std::collections::BTreeSet<String> {
        regex::Regex::new(r"saltant_[a-z_]+[a-z]")
            .expect("regex")
            .find_iter(text)
            .map(|m| m.as_str().to_owned())
            .collect()
    }

    /// Whether `name` is a series of a registered family (`# TYPE` lines of the exposition).
    fn exists(families: &[(String, String)], name: &str) -> bool {
        families.iter().any(|(family, kind)| {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["", "_bucket", "_count", "_sum"],
                _ => &[""],
            };
            suffixes.iter().any(|s| name == format!("{family}{s}"))
        })
    }

    /// One series in every family (a family without any is not in the exposition).
    fn touch_all(m: &Metrics) {
        let (q, qs) = (
            QueueLabels { queue: "q".into() },
            QueueStateLabels {
                queue: "q".into(),
                state: "running".into(),
            },
        );
        let _ = m.http_requests.get_or_create(&HttpLabels {
            method: "GET".into(),
            route: "/".into(),
            status: 200,
        });
        let _ = m.http_duration.get_or_create(&RouteLabels {
            method: "GET".into(),
            route: "/".into(),
        });
        let _ = m.instances.get_or_create(&qs);
        let _ = m.events_recorded.get_or_create(&qs);
        let _ = m.dispatch_latency.get_or_create(&q);
        let _ = m.queue_waiting.get_or_create(&q);
        let _ = m.queue_unacked.get_or_create(&q);
        let _ = m.queue_oldest_waiting.get_or_create(&q);
        let c = ConsumerLabels {
            consumer: "c".into(),
        };
        let _ = m.consumer_pending.get_or_create(&c);
        let _ = m.consumer_unacked.get_or_create(&c);
        let _ = m.start_latency.get_or_create(&q);
        let _ = m.run_duration.get_or_create(&qs);
        let _ = m.slots.get_or_create(&SlotLabels {
            executor: "e".into(),
            state: "free",
        });
        let _ = m.engine_errors.get_or_create(&EngineLabels {
            engine: "docker",
            operation: "pull",
        });
        let s = StreamLabels { stream: "stdout" };
        let _ = m.log_bytes.get_or_create(&s);
        let _ = m.log_dropped_bytes.get_or_create(&s);
        let _ = m
            .nats_errors
            .get_or_create(&OperationLabels { operation: "op" });
        let _ = m
            .postgres_errors
            .get_or_create(&KindLabels { kind: "internal" });
    }

    #[test]
    fn the_dashboard_and_the_docs_name_only_real_metrics() {
        touch_all(metrics());
        let exposition = metrics().encode();
        let families: Vec<(String, String)> = exposition
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .map(|(n, k)| (n.to_owned(), k.to_owned()))
            .collect();
        assert!(families.len() >= 20, "{exposition}");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for file in ["deploy/grafana/saltant.json", "docs/observability.md"] {
            let text = std::fs::read_to_string(root.join(file)).expect(file);
            let names = referenced(&text);
            assert!(names.len() >= 10, "{file} names few metrics: {names:?}");
            for name in names {
                assert!(
                    exists(&families, &name),
                    "{file} names {name}, which is not exported"
                );
            }
        }
        // Every metric is documented.
        let docs = std::fs::read_to_string(root.join("docs/observability.md")).expect("docs");
        for (family, kind) in &families {
            let shown = if kind == "counter" {
                format!("`{family}_total`")
            } else {
                format!("`{family}`")
            };
            assert!(docs.contains(&shown), "docs/observability.md lacks {shown}");
        }
    }
}
