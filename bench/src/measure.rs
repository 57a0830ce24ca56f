//! The measurements: physical limits first, then saltant against them.

use crate::{Report, Scale};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures::StreamExt;
use saltant_tests::{Options, Stack, busybox_image, psql};
use serde_json::json;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The limits saltant's figures are compared with.
pub struct Limits {
    pub spawn_per_sec: f64,
    /// Raw Engine API create+start+wait+remove in parallel (/s); the one-at-a-time figure
    /// is measured again interleaved with saltant's own (`containers`).
    pub docker_parallel_per_sec: Option<f64>,
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Spawning and waiting for `true` from tokio, `concurrency` at a time: the ceiling of
/// executable tasks on this machine.
async fn spawn_rate(n: usize, concurrency: usize) -> f64 {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        set.spawn(async move {
            let _ = tokio::process::Command::new("true").status().await;
            drop(permit);
        });
    }
    while set.join_next().await.is_some() {}
    n as f64 / start.elapsed().as_secs_f64()
}

async fn docker_once(docker: &Docker, image: &str) -> anyhow::Result<()> {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let id = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await?
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;
    let mut wait =
        docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
    while let Some(r) = wait.next().await {
        r?;
    }
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await?;
    Ok(())
}

pub async fn limits(
    report: &mut Report,
    scale: Scale,
    with_docker: bool,
) -> anyhow::Result<Limits> {
    println!("\n== physical limits");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let spawn = spawn_rate(scale.spawn, 4 * cores).await;
    report.add(
        "spawn_per_sec",
        "bare process spawn rate (tokio, `true`)",
        format!("{spawn:.0}/s"),
        "the ceiling of executable instances".into(),
        json!(spawn),
    );
    let mut par = None;
    if with_docker {
        let docker = Docker::connect_with_local_defaults()?
            .negotiate_version()
            .await?;
        let image = busybox_image();
        docker_once(&docker, &image).await?; // warm
        let n = scale.containers.max(3);
        let start = Instant::now();
        for _ in 0..n {
            docker_once(&docker, &image).await?;
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        report.add(
            "docker_raw_sequential_ms",
            "raw Engine API create+start+wait+remove, one at a time",
            format!("{ms:.0} ms"),
            String::new(),
            json!(ms),
        );
        let start = Instant::now();
        let runs = (0..n).map(|_| docker_once(&docker, &image));
        for r in futures::future::join_all(runs).await {
            r?;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        report.add(
            "docker_raw_parallel_per_sec",
            "raw Engine API containers, all at once",
            format!("{rate:.1}/s"),
            format!("({n} containers)"),
            json!(rate),
        );
        par = Some(rate);
    }
    Ok(Limits {
        spawn_per_sec: spawn,
        docker_parallel_per_sec: par,
    })
}

/// VmRSS and VmHWM (peak) of a process, in MiB.
pub(crate) fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) of a process so far, in ms (clock ticks of 10 ms).
pub(crate) fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) * 10.0
}

/// Every process whose command name is `comm` (e.g. all PostgreSQL backends).
fn pids_named(comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == comm)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// CPU (ms) of every process whose command name is `comm`, added up.
pub(crate) fn cpu_ms_of(comm: &str) -> f64 {
    pids_named(comm).into_iter().map(cpu_ms).sum()
}

/// Memory (MiB) of every process whose command name is `comm`, added up as PSS: pages
/// they share (PostgreSQL's shared buffers) count once, not once per process.
pub(crate) fn pss_of(comm: &str) -> f64 {
    pids_named(comm)
        .into_iter()
        .filter_map(|pid| {
            let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        })
        .sum()
}

/// CPU used by each part of the system, for the profile of a run.
fn cpu_snapshot(services: &Services) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = services
        .children
        .iter()
        .map(|(n, c)| (n.clone(), cpu_ms(c.id())))
        .collect();
    v.push(("postgres".into(), cpu_ms_of("postgres")));
    v.push(("nats-server".into(), cpu_ms_of("nats-server")));
    v.push(("bench client".into(), cpu_ms(std::process::id())));
    v
}

pub(crate) struct Services {
    pub children: Vec<(String, Child)>,
}

impl Services {
    /// SIGKILL to one of them (it is reaped too).
    pub fn kill(&mut self, name: &str) {
        if let Some((_, c)) = self.children.iter_mut().find(|(n, _)| n == name) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn pid(&self, name: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn start_services(stack: &Stack, executors: usize, slots: usize) -> Services {
    let slots = slots.to_string();
    let mut children = vec![
        ("api".to_owned(), stack.spawn(&["api"], "api.log")),
        (
            "scheduler".to_owned(),
            stack.spawn(&["scheduler"], "scheduler.log"),
        ),
        (
            "log-collector".to_owned(),
            stack.spawn(&["log-collector"], "log-collector.log"),
        ),
    ];
    for i in 0..executors {
        children.push((
            format!("executor-{i}"),
            stack.spawn(
                &["executor", "--slots", &slots],
                &format!("executor-{i}.log"),
            ),
        ));
    }
    Services { children }
}

/// A count over the stack's database through a pooled connection (spawning psql to poll
/// would cost the machine more CPU than what is measured).
pub(crate) async fn count(stack: &Stack, sql: &str) -> i64 {
    static POOLS: std::sync::Mutex<Vec<(String, sqlx::PgPool)>> = std::sync::Mutex::new(Vec::new());
    let url = stack.database_url();
    let pool = {
        let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
        match pools.iter().find(|(u, _)| *u == url) {
            Some((_, p)) => p.clone(),
            None => {
                let p = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect_lazy(&url)
                    .expect("database url");
                pools.push((url, p.clone()));
                p
            }
        }
    };
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&pool)
        .await
        .unwrap_or(0)
}

/// Posts `n` instances with `concurrency` clients; returns per-request latencies (ms) and
/// the (uuid, instant of the 201) pairs.
pub(crate) async fn post_many(
    stack: &Stack,
    body: serde_json::Value,
    n: usize,
    concurrency: usize,
    path: &str,
) -> (Vec<f64>, Vec<(String, chrono::DateTime<chrono::Utc>)>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let http = stack.http.clone();
        let url = format!("{}/{path}", stack.url);
        let auth = stack.auth();
        let body = body.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut made = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("Authorization", &auth)
                    .json(&body)
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status() == 201
                    && let Ok(v) = r.json::<serde_json::Value>().await
                {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    made.push((
                        v["uuid"].as_str().unwrap_or_default().to_owned(),
                        chrono::Utc::now(),
                    ));
                }
            }
            (lat, made)
        }));
    }
    let (mut lat, mut made) = (Vec::new(), Vec::new());
    for t in tasks {
        if let Ok((l, m)) = t.await {
            lat.extend(l);
            made.extend(m);
        }
    }
    (lat, made)
}

pub(crate) async fn wait_finished(
    stack: &Stack,
    total: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let done = count(
            stack,
            "SELECT count(*) FROM task_instances WHERE state IN ('successful','failed','terminated')",
        ).await;
        if done >= total {
            return Ok(());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("only {done}/{total} instances finished within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn new_stack() -> Stack {
    Stack::start_opts(Options {
        no_all: true,
        env: &[("RUST_LOG", "warn")],
        ..Options::default()
    })
    .await
}

pub async fn saltant(
    report: &mut Report,
    scale: Scale,
    limits: &Limits,
    with_docker: bool,
) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let slots = 4 * cores;
    for executors in [1usize, 2] {
        println!("\n== end-to-end no-op throughput, {executors} executor(s), {slots} slots each");
        let stack = new_stack().await;
        let services = start_services(&stack, executors, slots);
        stack.wait_ready().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if executors == 1 {
            for (name, _) in &services.children {
                if let Some(pid) = services.pid(name) {
                    let (now, _) = rss(pid);
                    report.add(
                        &format!("idle_rss_mib_{name}"),
                        &format!("idle RSS of {name}"),
                        format!("{now:.1} MiB"),
                        String::new(),
                        json!(now),
                    );
                }
            }
        }
        let (ty, q) = stack.executable_on_queue("noop", "true", "bench").await;
        let body = json!({"task_type": ty, "task_queue": q});
        let mut total = 0i64;
        for &load in scale.loads {
            let n = scale.e2e;
            let cpu_before = cpu_snapshot(&services);
            let start = Instant::now();
            let (lat, made) =
                post_many(&stack, body.clone(), n, load, "executabletaskinstances/").await;
            let created_in = start.elapsed();
            total += made.len() as i64;
            wait_finished(&stack, total, Duration::from_secs(600)).await?;
            let rate = made.len() as f64 / start.elapsed().as_secs_f64();
            let lat = sorted(lat);
            let cpu_after = cpu_snapshot(&services);
            let per: Vec<(String, f64)> = cpu_before
                .iter()
                .zip(&cpu_after)
                .map(|((name, b), (_, a))| (name.clone(), (a - b) / made.len().max(1) as f64))
                .collect();
            let total_cpu: f64 = per.iter().map(|(_, ms)| ms).sum();
            println!(
                "    CPU per instance: {:.2} ms in all ({})",
                total_cpu,
                per.iter()
                    .map(|(n, ms)| format!("{n} {ms:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            report.json.insert(
                format!("cpu_ms_per_instance_{executors}x_c{load}"),
                json!(
                    per.iter()
                        .cloned()
                        .collect::<std::collections::BTreeMap<_, _>>()
                ),
            );
            report.add(
                &format!("e2e_per_sec_{executors}x_c{load}"),
                &format!("POST → successful, {executors} executor(s), {load} clients"),
                format!("{rate:.0}/s"),
                format!(
                    "= {:.0}% of spawn rate; creates {:.0}/s, create p50 {:.1} ms p99 {:.1} ms",
                    100.0 * rate / limits.spawn_per_sec,
                    made.len() as f64 / created_in.as_secs_f64(),
                    percentile(&lat, 0.5),
                    percentile(&lat, 0.99)
                ),
                json!({"per_sec": rate, "ratio_to_spawn": rate / limits.spawn_per_sec,
                       "create_p50_ms": percentile(&lat, 0.5), "create_p99_ms": percentile(&lat, 0.99)}),
            );
        }
        let failed = count(
            &stack,
            "SELECT count(*) FROM task_instances WHERE state <> 'successful'",
        )
        .await;
        anyhow::ensure!(failed == 0, "{failed} instances did not succeed");
        if executors == 1 {
            dispatch_latency(report, scale, &stack, ty, q).await?;
            log_ingestion(report, scale, &stack, "").await?;
            list_latency(report, scale, &stack, &services).await?;
            if with_docker {
                containers(report, scale, &stack, limits).await?;
            }
            for (name, _) in &services.children {
                if let Some(pid) = services.pid(name) {
                    let (_, peak) = rss(pid);
                    report.add(
                        &format!("peak_rss_mib_{name}"),
                        &format!("peak RSS of {name} (after all of the above)"),
                        format!("{peak:.1} MiB"),
                        String::new(),
                        json!(peak),
                    );
                }
            }
        }
        drop(services);
    }
    Ok(())
}

async fn dispatch_latency(
    report: &mut Report,
    scale: Scale,
    stack: &Stack,
    ty: i64,
    q: i64,
) -> anyhow::Result<()> {
    println!(
        "\n== dispatch latency at {}/s for {} s",
        scale.rate, scale.rate_secs
    );
    let body = json!({"task_type": ty, "task_queue": q, "name": "latency"});
    let n = (scale.rate * scale.rate_secs) as usize;
    let every = Duration::from_secs_f64(1.0 / scale.rate as f64);
    let mut tick = tokio::time::interval(every);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tick.tick().await;
        let http = stack.http.clone();
        let url = format!("{}/executabletaskinstances/", stack.url);
        let auth = stack.auth();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = http
                .post(&url)
                .header("Authorization", &auth)
                .json(&body)
                .send()
                .await
                .ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            Some((
                v["uuid"].as_str()?.to_owned(),
                chrono::Utc::now(),
                t.elapsed().as_secs_f64() * 1000.0,
            ))
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        if let Ok(Some(a)) = t.await {
            answers.push(a);
        }
    }
    let total = count(stack, "SELECT count(*) FROM task_instances").await;
    wait_finished(stack, total, Duration::from_secs(120)).await?;
    let started = psql(
        &stack.database_url(),
        "SELECT uuid || ' ' || extract(epoch from datetime_started) FROM task_instances WHERE name = 'latency'",
    );
    let started: std::collections::HashMap<String, f64> = started
        .lines()
        .filter_map(|l| {
            let (u, t) = l.split_once(' ')?;
            Some((u.to_owned(), t.parse().ok()?))
        })
        .collect();
    let lat = sorted(
        answers
            .iter()
            .filter_map(|(u, at, _)| {
                let s = started.get(u)?;
                Some((s - at.timestamp_micros() as f64 / 1e6) * 1000.0)
            })
            .collect(),
    );
    let create = sorted(answers.iter().map(|a| a.2).collect());
    report.add(
        "dispatch_latency_ms",
        &format!("201 → process started at {}/s: p50 / p90 / p99", scale.rate),
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.9),
            percentile(&lat, 0.99)
        ),
        format!("({} instances; target p50 ≤ 5 ms, p99 ≤ 25 ms)", lat.len()),
        json!({"p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99)}),
    );
    report.add(
        "create_latency_ms",
        &format!("API create latency at {}/s: p50 / p99", scale.rate),
        format!(
            "{:.1} / {:.1} ms",
            percentile(&create, 0.5),
            percentile(&create, 0.99)
        ),
        String::new(),
        json!({"p50": percentile(&create, 0.5), "p99": percentile(&create, 0.99)}),
    );
    Ok(())
}

/// One instance writes `scale.log_bytes` to stdout: POST until every byte is in
/// PostgreSQL. `setup` names the configuration in the report (`""`: the e2e processes).
pub(crate) async fn log_ingestion(
    report: &mut Report,
    scale: Scale,
    stack: &Stack,
    setup: &str,
) -> anyhow::Result<()> {
    println!("\n== log ingestion {setup}");
    let cmd = format!(
        "sh -c 'yes 0123456789abcdef0123456789abcdef | head -c {}'",
        scale.log_bytes
    );
    let (ty, q) = stack
        .executable_on_queue(&format!("chatty{setup}"), &cmd, &format!("logs{setup}"))
        .await;
    let start = Instant::now();
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let stored = async |s: &Stack| {
        count(
            s,
            &format!(
                "SELECT COALESCE(sum(length(data)), 0) FROM task_instance_logs WHERE instance_uuid = '{uuid}'"
            ),
        ).await
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while stored(stack).await < scale.log_bytes as i64 {
        anyhow::ensure!(Instant::now() < deadline, "logs not stored in 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let mib = scale.log_bytes as f64 / 1048576.0;
    let key = format!(
        "log_ingestion_mib_per_sec{}",
        setup.replace(['-', ' '], "_")
    );
    report.add(
        &key,
        &format!("{mib:.0} MiB of output: POST → every byte in PostgreSQL {setup}"),
        format!("{:.1} MiB/s", mib / secs),
        format!("({secs:.2} s)"),
        json!(mib / secs),
    );
    Ok(())
}

async fn list_latency(
    report: &mut Report,
    scale: Scale,
    stack: &Stack,
    services: &Services,
) -> anyhow::Result<()> {
    println!("\n== list latency with {} instances", scale.list_rows);
    // Copies of an existing instance, in bulk: `bulk-a` rows for the unbounded page.
    let url = stack.database_url();
    let t = Instant::now();
    psql(
        &url,
        &format!(
            "INSERT INTO task_instances (uuid, kind, name, state, user_id, task_queue_id, executable_task_type_id, \
             datetime_created, datetime_finished, arguments, spec, queue_name) \
             SELECT gen_random_uuid(), kind, CASE WHEN g <= {a} THEN 'bulk-a' ELSE 'bulk-b' END, 'successful', user_id, \
             task_queue_id, executable_task_type_id, now() - make_interval(secs => g), now(), arguments, spec, queue_name \
             FROM (SELECT * FROM task_instances WHERE kind = 'executable' LIMIT 1) i, generate_series(1, {n}) g",
            a = scale.list_unbounded,
            n = scale.list_rows
        ),
    );
    psql(&url, "ANALYZE task_instances");
    println!(
        "  inserted {} rows in {:.1} s",
        scale.list_rows,
        t.elapsed().as_secs_f64()
    );
    let auth = stack.auth();
    let page_url = format!("{}/executabletaskinstances/", stack.url);
    let mut lat = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let r = stack
            .http
            .get(&page_url)
            .header("Authorization", &auth)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "list: {}", r.status());
        let _ = r.bytes().await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let lat = sorted(lat);
    report.add(
        "list_page_ms",
        &format!("list, page of 10, {} rows: p50 / p99", scale.list_rows),
        format!(
            "{:.1} / {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        ),
        "(target p99 ≤ 50 ms at 1M rows)".into(),
        json!({"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99)}),
    );
    let api_pid = services.pid("api");
    let before = api_pid.map(|p| rss(p).0).unwrap_or(f64::NAN);
    let t = Instant::now();
    let r = stack
        .http
        .get(format!(
            "{page_url}?name=bulk-a&page=1&page_size=9223372036854775807"
        ))
        .header("Authorization", &auth)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "unbounded list: {}", r.status());
    let mut r = r;
    let mut first = None;
    let mut bytes = 0usize;
    let mut peak = before;
    while let Some(chunk) = r.chunk().await? {
        first.get_or_insert_with(|| t.elapsed());
        bytes += chunk.len();
        if let Some(p) = api_pid {
            peak = peak.max(rss(p).0);
        }
    }
    let total = t.elapsed();
    report.add(
        "unbounded_page",
        &format!("saltant-py style unbounded page of {} (streamed)", scale.list_unbounded),
        format!(
            "first byte {:.0} ms, all {:.2} s",
            first.unwrap_or_default().as_secs_f64() * 1000.0,
            total.as_secs_f64()
        ),
        format!(
            "({:.1} MiB; api RSS {before:.1} → {peak:.1} MiB during it)",
            bytes as f64 / 1048576.0
        ),
        json!({"ttfb_ms": first.unwrap_or_default().as_secs_f64() * 1000.0, "total_s": total.as_secs_f64(),
               "bytes": bytes, "api_rss_before_mib": before, "api_rss_peak_mib": peak}),
    );
    Ok(())
}

async fn containers(
    report: &mut Report,
    scale: Scale,
    stack: &Stack,
    limits: &Limits,
) -> anyhow::Result<()> {
    println!("\n== container overhead");
    let (status, ty) = stack
        .post_json(
            "containertasktypes/",
            &json!({"name": "ctrue", "command_to_run": "true", "container_image": busybox_image(), "container_type": "docker"}),
        )
        .await;
    anyhow::ensure!(status == 201, "container type: {ty}");
    let (_, wl) = stack
        .post_json(
            "taskwhitelists/",
            &json!({"name": "cwl", "whitelisted_container_task_types": [ty["id"]]}),
        )
        .await;
    let (_, q) = stack
        .post_json(
            "taskqueues/",
            &json!({"name": "cq", "whitelists": [wl["id"]]}),
        )
        .await;
    let body = json!({"task_type": ty["id"], "task_queue": q["id"]});
    // One at a time, each of ours right after a raw Engine API run of the same image, so
    // that the engine's own drift (23–135 ms between runs) falls on both alike.
    let docker = Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await?;
    let image = busybox_image();
    let n = scale.containers.max(3);
    let (mut raw_ms, mut ours_ms) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        docker_once(&docker, &image).await?;
        raw_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let before = count(
            stack,
            "SELECT count(*) FROM task_instances WHERE kind = 'container' AND state = 'successful'",
        )
        .await;
        let t = Instant::now();
        let (_, made) = post_many(stack, body.clone(), 1, 1, "containertaskinstances/").await;
        anyhow::ensure!(made.len() == 1, "container instance not created");
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(
            stack,
            "SELECT count(*) FROM task_instances WHERE kind = 'container' AND state = 'successful'",
        )
        .await
            <= before
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "container instance did not succeed"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ours_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (per, raw) = (mean(&ours_ms), mean(&raw_ms));
    let overhead = sorted(ours_ms.iter().zip(&raw_ms).map(|(o, r)| o - r).collect());
    report.add(
        "container_sequential_ms",
        "container instance POST → successful, one at a time, interleaved with raw runs",
        format!("{per:.0} ms"),
        format!(
            "= raw {raw:.0} ms + {:.0} ms overhead (median of pairs {:.0} ms; target ≤ 15 ms)",
            per - raw,
            percentile(&overhead, 0.5)
        ),
        json!({"ms": per, "raw_ms": raw, "overhead_ms": per - raw, "overhead_median_ms": percentile(&overhead, 0.5)}),
    );
    // All at once: rate against the raw parallel rate.
    let total_before = count(
        stack,
        "SELECT count(*) FROM task_instances WHERE kind = 'container'",
    )
    .await;
    let start = Instant::now();
    let (_, made) = post_many(stack, body.clone(), n, n, "containertaskinstances/").await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while count(
        stack,
        "SELECT count(*) FROM task_instances WHERE kind = 'container' AND state IN ('successful','failed')",
    ).await < total_before + made.len() as i64
    {
        anyhow::ensure!(Instant::now() < deadline, "container burst did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = made.len() as f64 / start.elapsed().as_secs_f64();
    let raw = limits.docker_parallel_per_sec.unwrap_or(f64::NAN);
    report.add(
        "container_parallel_per_sec",
        &format!("container instances, {n} at once (executor slots bound it)"),
        format!("{rate:.1}/s"),
        format!(
            "= {:.0}% of the raw parallel rate {raw:.1}/s (target ≥ 95%)",
            100.0 * rate / raw
        ),
        json!({"per_sec": rate, "raw_per_sec": raw, "ratio": rate / raw}),
    );
    Ok(())
}
