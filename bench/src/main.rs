//! saltant's benchmark harness. In one run, on one machine: the physical limits (process
//! spawn rate, raw Docker Engine API container rate), saltant's figures (end-to-end
//! throughput with 1 and 2 executors at increasing offered load, dispatch latency at a
//! fixed rate, API create latency, list latency over many rows including a saltant-py
//! style unbounded page, container overhead against the raw Engine API, log ingestion,
//! memory of each service), logs as users meet them (1M lines, live tail latency) and the same no-op workload on Celery 5 with RabbitMQ. Every
//! figure is printed with its ratio to the limit it is bounded by; `--json` writes them all.
//!
//! It runs against the components `deploy/bench` (full) or `deploy/test` (`--smoke`)
//! start, through the same environment as the integration tests.

mod celery;
mod configs;
mod logs;
mod measure;
mod ui;

use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "saltant benchmarks against the physical limits and Celery")]
struct Args {
    /// A quick run (seconds) that exercises every measurement with small numbers.
    #[arg(long)]
    smoke: bool,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip the Celery comparison.
    #[arg(long)]
    no_celery: bool,
    /// Skip the Docker measurements.
    #[arg(long)]
    no_docker: bool,
    /// Only these sections (e2e, dev, otel, killed, soak, logs, celery, redis, ui); all by
    /// default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rows in the list-latency and web-page tables (default: 1,000,000; smoke: 20,000).
    #[arg(long)]
    list_rows: Option<i64>,
}

/// Sizes of a run.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub spawn: usize,
    pub e2e: usize,
    pub loads: &'static [usize],
    pub rate: u64,
    pub rate_secs: u64,
    pub list_rows: i64,
    pub list_unbounded: i64,
    pub containers: usize,
    pub log_bytes: u64,
    pub celery: usize,
    /// Idle queues beside the loaded one.
    pub idle_queues: usize,
    pub soak_rate: u64,
    pub soak_secs: u64,
}

impl Scale {
    fn new(smoke: bool, list_rows: Option<i64>) -> Scale {
        let mut s = if smoke {
            Scale {
                spawn: 300,
                e2e: 200,
                loads: &[8, 32],
                rate: 50,
                rate_secs: 2,
                list_rows: 20_000,
                list_unbounded: 2_000,
                containers: 3,
                log_bytes: 2 * 1024 * 1024,
                celery: 100,
                idle_queues: 50,
                soak_rate: 50,
                soak_secs: 5,
            }
        } else {
            Scale {
                spawn: 4000,
                e2e: 4000,
                loads: &[8, 32, 128],
                rate: 200,
                rate_secs: 10,
                list_rows: 1_000_000,
                list_unbounded: 100_000,
                containers: 30,
                log_bytes: 100 * 1024 * 1024,
                celery: 2000,
                idle_queues: 1000,
                soak_rate: 500,
                soak_secs: 300,
            }
        };
        if let Some(n) = list_rows {
            s.list_rows = n;
            s.list_unbounded = s.list_unbounded.min(n / 2);
        }
        s
    }
}

/// Collected figures, printed as a table at the end.
#[derive(Default)]
pub struct Report {
    rows: Vec<(String, String, String)>,
    pub json: serde_json::Map<String, Value>,
}

impl Report {
    pub fn add(&mut self, key: &str, what: &str, value: String, note: String, raw: Value) {
        println!("  {what}: {value} {note}");
        self.rows.push((what.to_owned(), value, note));
        self.json.insert(key.to_owned(), raw);
    }

    fn print(&self) {
        let w = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
        let v = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(10);
        println!("\n{:w$}  {:>v$}  note", "measurement", "value");
        println!("{}", "-".repeat(w + v + 30));
        for (a, b, c) in &self.rows {
            println!("{a:w$}  {b:>v$}  {c}");
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = Scale::new(args.smoke, args.list_rows);
    let mut report = Report::default();
    report.json.insert(
        "machine".into(),
        json!({
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "smoke": args.smoke,
            "at": chrono::Utc::now().to_rfc3339(),
        }),
    );
    println!(
        "saltant-bench ({}), scale {scale:?}",
        if args.smoke { "smoke" } else { "full" }
    );

    let run = |section: &str| args.only.is_empty() || args.only.iter().any(|s| s == section);
    // The physical limits, which the end-to-end figures are compared with.
    let limits = if run("e2e") || run("dev") {
        Some(measure::limits(&mut report, scale, !args.no_docker).await?)
    } else {
        None
    };
    if let (true, Some(limits)) = (run("e2e"), &limits) {
        measure::saltant(&mut report, scale, limits, !args.no_docker).await?;
    }
    if let (true, Some(limits)) = (run("dev"), &limits) {
        configs::dev(&mut report, scale, limits).await?;
    }
    if run("ui") {
        ui::pages(&mut report, scale.list_rows).await?;
    }
    if run("otel") {
        configs::telemetry(&mut report, scale).await?;
    }
    if run("killed") {
        configs::killed_executor(&mut report, scale).await?;
    }
    if run("soak") {
        configs::soak(&mut report, scale).await?;
    }
    if run("logs") {
        logs::logs(&mut report, scale).await?;
    }
    if !args.no_celery && run("redis") {
        celery::compare_redis(&mut report, scale).await?;
    }
    if !args.no_celery && run("celery") {
        celery::compare(&mut report, scale).await?;
    }
    report.print();
    if let Some(path) = args.json {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&Value::Object(report.json))?,
        )?;
        println!("\nJSON: {}", path.display());
    }
    Ok(())
}
