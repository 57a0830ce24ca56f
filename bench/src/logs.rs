//! Logs as users meet them (`--only logs`): on the `deploy/dev` stack, an instance printing
//! 1,000,000 lines (stored, downloaded and tailed whole, in order), the live tail's latency
//! from a line's write to an SSE client at 1 MB/s, and ingestion; then the same million
//! lines and a large output through separate processes, with the peak RSS of each service
//! before and after (memory must not grow with the output). And the measurement behind the
//! choice of storage: output chunks as PostgreSQL rows or as object-store blocks.

use crate::measure::{Services, count, log_ingestion, percentile, rss, sorted, start_services};
use crate::{Report, Scale};
use saltant_tests::{Options, Stack};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Writes lines of ~100 bytes, each starting with its write time (ns since the epoch), at
/// `rate` bytes per second for `secs` seconds, in 10 ms batches.
const PACED_WRITER: &str = r#"
import sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
out, pad = sys.stdout.buffer, b"x" * 80
start, n, tick = time.time(), 0, 0.01
while time.time() - start < secs:
    batch, size = [], 0
    while size < rate * tick:
        line = b"%d %s\n" % (time.time_ns(), pad)
        batch.append(line)
        size += len(line)
    out.write(b"".join(batch))
    out.flush()
    n += 1
    pause = start + n * tick - time.time()
    if pause > 0:
        time.sleep(pause)
"#;

pub async fn logs(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    println!("\n== logs on the deploy/dev stack (saltant all, defaults)");
    let stack = Stack::start_opts(Options::default()).await;
    stack.wait_ready().await;
    million_lines(report, &stack, "dev").await?;
    tail_latency(report, scale, &stack).await?;
    storage_choice(report, scale, &stack).await?;
    log_ingestion(report, scale, &stack, "dev").await?;
    drop(stack);

    println!("\n== logs through separate processes: memory of each service");
    let stack = Stack::start_opts(Options {
        no_all: true,
        ..Options::default()
    })
    .await;
    let services = start_services(&stack, 1, 4);
    stack.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = peaks(&services);
    million_lines(report, &stack, "processes").await?;
    log_ingestion(report, scale, &stack, "processes").await?;
    let after = peaks(&services);
    for ((name, idle), (_, peak)) in before.iter().zip(&after) {
        report.add(
            &format!("logs_peak_rss_mib_{name}"),
            &format!("peak RSS of {name}: idle → after 1M lines and the ingestion run"),
            format!("{idle:.1} → {peak:.1} MiB"),
            String::new(),
            json!({"idle": idle, "peak": peak}),
        );
    }
    Ok(())
}

/// Peak RSS (MiB) of each service so far.
fn peaks(services: &Services) -> Vec<(String, f64)> {
    services
        .children
        .iter()
        .map(|(name, c)| (name.clone(), rss(c.id()).1))
        .collect()
}

/// `seq 1 1000000`: time until every byte is stored, then a whole download and a whole
/// tail, each checked line by line.
async fn million_lines(report: &mut Report, stack: &Stack, setup: &str) -> anyhow::Result<()> {
    let expected: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    let (ty, q) = stack
        .executable_on_queue(
            &format!("million-{setup}"),
            "seq 1 1000000",
            &format!("m-{setup}"),
        )
        .await;
    let start = Instant::now();
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let sql = format!(
        "SELECT COALESCE(sum(length(data)), 0) FROM task_instance_logs WHERE instance_uuid = '{uuid}'"
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while count(stack, &sql).await < expected.len() as i64 {
        anyhow::ensure!(Instant::now() < deadline, "1M lines not stored in 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored_in = start.elapsed();
    let chunks = count(
        stack,
        &format!("SELECT count(*) FROM task_instance_logs WHERE instance_uuid = '{uuid}'"),
    )
    .await;

    let t = Instant::now();
    let (status, _, body) = stack
        .download_log(&uuid, &format!("{uuid}-stdout.txt"))
        .await;
    let downloaded_in = t.elapsed();
    anyhow::ensure!(status == 200, "download: {status}");
    anyhow::ensure!(
        body.as_str() == Some(expected.as_str()),
        "the download differs"
    );

    let t = Instant::now();
    let path = format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt/tail/");
    let (_, sse) = stack.sse(&stack.token, &path, &[]).await;
    let mut sse = sse.map_err(anyhow::Error::msg)?;
    let mut text = String::with_capacity(expected.len());
    let mut complete = false;
    while let Some(e) = sse.next(Duration::from_secs(60)).await {
        match e.event.as_str() {
            "output" => {
                let v: Value = serde_json::from_str(&e.data)?;
                text.push_str(v["text"].as_str().unwrap_or_default());
            }
            "end" => {
                complete = e.data.contains("\"complete\":true");
                break;
            }
            _ => {}
        }
    }
    let tailed_in = t.elapsed();
    anyhow::ensure!(complete && text == expected, "the tail differs");
    report.add(
        &format!("million_lines_{setup}"),
        &format!("1,000,000 lines ({setup}): POST → all stored; download; tail"),
        format!("{:.2} s", stored_in.as_secs_f64()),
        format!(
            "{chunks} chunks; download {:.2} s, tail {:.2} s; every line, in order",
            downloaded_in.as_secs_f64(),
            tailed_in.as_secs_f64()
        ),
        json!({"stored_secs": stored_in.as_secs_f64(), "chunks": chunks,
               "download_secs": downloaded_in.as_secs_f64(), "tail_secs": tailed_in.as_secs_f64()}),
    );
    Ok(())
}

/// A task writes time-stamped lines at 1 MB/s; an SSE tail started before it measures, for
/// every line, the time from its write to its arrival here (same clock, same machine).
async fn tail_latency(report: &mut Report, scale: Scale, stack: &Stack) -> anyhow::Result<()> {
    let secs = if scale.soak_secs < 60 { 3 } else { 20 };
    let rate = 1_000_000;
    let script = stack.dir.join("paced.py");
    std::fs::write(&script, PACED_WRITER)?;
    // A system interpreter by its real path: a task's PATH need not hold ours, and a root
    // executor's tasks run as an unprivileged user who cannot reach one under /root.
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| anyhow::anyhow!("no python3 in /usr/bin or /usr/local/bin"))?;
    let cmd = format!("{python} {} {rate} {secs}", script.display());
    let (ty, q) = stack.executable_on_queue("paced", &cmd, "paced").await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let path = format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt/tail/");
    let (_, sse) = stack.sse(&stack.token, &path, &[]).await;
    let mut sse = sse.map_err(anyhow::Error::msg)?;
    let (mut partial, mut lat, mut bytes) = (String::new(), Vec::new(), 0usize);
    let deadline = Instant::now() + Duration::from_secs(secs + 120);
    while Instant::now() < deadline {
        let Some(e) = sse.next(Duration::from_secs(30)).await else {
            break;
        };
        if e.event == "end" {
            break;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as f64;
        let v: Value = serde_json::from_str(&e.data)?;
        partial.push_str(v["text"].as_str().unwrap_or_default());
        bytes += v["text"].as_str().map_or(0, str::len);
        while let Some(at) = partial.find('\n') {
            let line: String = partial.drain(..=at).collect();
            if let Some(stamp) = line.split(' ').next().and_then(|s| s.parse::<f64>().ok()) {
                lat.push((now - stamp) / 1e6);
            }
        }
    }
    anyhow::ensure!(!lat.is_empty(), "no line reached the tail");
    let lat = sorted(lat);
    let (p50, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
    report.add(
        "tail_latency_ms_1mb_per_sec",
        &format!("live tail at 1 MB/s for {secs} s: line written → SSE client"),
        format!("p99 {p99:.1} ms"),
        format!(
            "p50 {p50:.1} ms, max {max:.1} ms; {} lines, {:.1} MB",
            lat.len(),
            bytes as f64 / 1e6
        ),
        json!({"p50": p50, "p99": p99, "max": max, "lines": lat.len(), "bytes": bytes}),
    );
    Ok(())
}

/// Writes the same output (`scale.log_bytes` at most 64 MiB, in 32 KiB chunks) three ways,
/// each as a log-collector would: PostgreSQL rows in batches of 256 (the statement the
/// store uses), JetStream object-store blocks of 1 MiB (32 chunks), and one object per
/// chunk. Figures are MiB/s of writes on this machine's PostgreSQL and NATS.
async fn storage_choice(report: &mut Report, scale: Scale, stack: &Stack) -> anyhow::Result<()> {
    const CHUNK: usize = 32 * 1024;
    let total = (scale.log_bytes as usize).min(64 * 1024 * 1024);
    let chunks = total / CHUNK;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
    let mib = (chunks * CHUNK) as f64 / 1048576.0;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&stack.database_url())
        .await?;
    sqlx::query("CREATE TABLE bench_chunks (LIKE task_instance_logs INCLUDING ALL)")
        .execute(&pool)
        .await?;
    let uuid = uuid::Uuid::new_v4();
    let t = Instant::now();
    for batch in (0..chunks as i64).collect::<Vec<_>>().chunks(256) {
        let data: Vec<&[u8]> = batch.iter().map(|_| chunk.as_slice()).collect();
        sqlx::query(
            "INSERT INTO bench_chunks (instance_uuid, attempt, seq, stream, data) \
             SELECT $1, 1, s, 'stdout', d FROM unnest($2::bigint[], $3::bytea[]) AS u(s, d)",
        )
        .bind(uuid)
        .bind(batch)
        .bind(&data)
        .execute(&pool)
        .await?;
    }
    let rows = mib / t.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_chunks")
        .execute(&pool)
        .await?;

    let url = saltant_tests::required_env("SALTANT_TEST_NATS_URL");
    let js = async_nats::jetstream::new(async_nats::connect(url).await?);
    let mut rates = Vec::new();
    for per_object in [32usize, 1] {
        let bucket = format!("bench_blocks_{}", uuid.simple());
        let store = js
            .create_object_store(async_nats::jetstream::object_store::Config {
                bucket: bucket.clone(),
                ..Default::default()
            })
            .await?;
        let block = chunk.repeat(per_object);
        let t = Instant::now();
        for i in 0..chunks / per_object {
            store
                .put(format!("{uuid}/1/{i}").as_str(), &mut block.as_slice())
                .await?;
        }
        rates.push(mib / t.elapsed().as_secs_f64());
        js.delete_object_store(&bucket).await?;
    }
    report.add(
        "log_storage_mib_per_sec",
        &format!("storing {mib:.0} MiB of 32 KiB chunks: PostgreSQL rows / 1 MiB blocks / an object per chunk"),
        format!("{rows:.0} / {:.0} / {:.0} MiB/s", rates[0], rates[1]),
        "rows: batches of 256, the store's statement; objects: JetStream object store".into(),
        json!({"postgres_rows": rows, "object_blocks_1mib": rates[0], "object_per_chunk": rates[1]}),
    );
    Ok(())
}
