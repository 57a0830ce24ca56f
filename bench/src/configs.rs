//! The configurations users run, not a hand-tuned one: the `deploy/dev` stack (`saltant
//! all`, default slots, every queue served) with one loaded queue, two loaded at once and
//! one loaded among 1,000 idle ones (with the idle executor's CPU); separate processes
//! with two executors, one killed with SIGKILL mid-run; and a soak at a steady rate
//! (backlog, memory of every service, NATS and PostgreSQL growth per instance).

use crate::measure::{
    Limits, Services, count, cpu_ms, cpu_ms_of, post_many, pss_of, rss, wait_finished,
};
use crate::{Report, Scale};
use saltant_tests::{Options, Stack};
use serde_json::json;
use std::time::{Duration, Instant};

/// The stack `deploy/dev` starts: `saltant all` with its defaults.
async fn dev_stack() -> Stack {
    let stack = Stack::start_opts(Options::default()).await;
    stack.wait_ready().await;
    stack
}

fn all_pid(stack: &Stack) -> u32 {
    stack.child.as_ref().map(|c| c.id()).unwrap_or(0)
}

/// CPU (ms) of the stack's processes, PostgreSQL and NATS, and this client.
fn cpu_now(pids: &[u32]) -> [f64; 4] {
    [
        pids.iter().map(|p| cpu_ms(*p)).sum::<f64>(),
        cpu_ms_of("postgres"),
        cpu_ms_of("nats-server"),
        cpu_ms(std::process::id()),
    ]
}

const CPU_PARTS: [&str; 4] = ["saltant", "postgres", "nats-server", "bench client"];

/// A no-op type on `n` new queues named `<prefix>-<i>`: (type id, queue ids).
async fn noop_queues(stack: &Stack, prefix: &str, n: usize) -> (i64, Vec<i64>) {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    stack
        .executable_on_queues(&format!("{prefix}-noop"), "true", &names)
        .await
}

/// What a load on some queues gave.
struct Load {
    /// Instances per second, first POST to the last instance final, all queues.
    rate: f64,
    /// Each queue's share of the instances finished when the first queue was through.
    shares: Vec<f64>,
    cpu_ms_per_instance: f64,
    /// Per part, in the order of [`CPU_PARTS`].
    cpu_parts: [f64; 4],
}

impl Load {
    fn cpu_note(&self) -> String {
        CPU_PARTS
            .iter()
            .zip(self.cpu_parts)
            .map(|(n, ms)| format!("{n} {ms:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Posts `n` no-op instances to each queue at once (`clients` split among them) and waits
/// until all are final.
async fn load(
    stack: &Stack,
    pids: &[u32],
    ty: i64,
    queues: &[i64],
    n: usize,
    clients: usize,
) -> anyhow::Result<Load> {
    let final_before = count(
        stack,
        "SELECT count(*) FROM task_instances WHERE state IN ('successful','failed','terminated')",
    )
    .await;
    let done_on = async |q: i64| {
        count(
            stack,
            &format!("SELECT count(*) FROM task_instances WHERE task_queue_id = {q} AND state IN ('successful','failed','terminated')"),
        )
        .await as f64
    };
    let mut baseline = Vec::new();
    for q in queues {
        baseline.push(done_on(*q).await);
    }
    let cpu_before = cpu_now(pids);
    let start = Instant::now();
    let posts = queues.iter().map(|q| {
        let body = json!({"task_type": ty, "task_queue": q});
        post_many(
            stack,
            body,
            n,
            (clients / queues.len()).max(1),
            "executabletaskinstances/",
        )
    });
    let made: usize = futures::future::join_all(posts)
        .await
        .iter()
        .map(|(_, m)| m.len())
        .sum();
    // Each queue's progress when the first is through.
    let mut shares = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(900);
    while shares.is_empty() {
        let mut done = Vec::new();
        for (q, before) in queues.iter().zip(&baseline) {
            done.push(done_on(*q).await - before);
        }
        if done.iter().any(|d| *d >= n as f64) || queues.len() == 1 {
            let sum: f64 = done.iter().sum();
            shares = done.iter().map(|d| d / sum.max(1.0)).collect();
        }
        anyhow::ensure!(Instant::now() < deadline, "no queue finished in 900 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_finished(stack, final_before + made as i64, Duration::from_secs(900)).await?;
    let secs = start.elapsed().as_secs_f64();
    let after = cpu_now(pids);
    let mut parts = [0.0; 4];
    for (i, p) in parts.iter_mut().enumerate() {
        *p = (after[i] - cpu_before[i]) / made.max(1) as f64;
    }
    let load = Load {
        rate: made as f64 / secs,
        shares,
        cpu_ms_per_instance: parts.iter().sum(),
        cpu_parts: parts,
    };
    println!(
        "    {made} instances at {:.0}/s; CPU per instance {:.2} ms ({})",
        load.rate,
        load.cpu_ms_per_instance,
        load.cpu_note()
    );
    Ok(load)
}

pub async fn dev(report: &mut Report, scale: Scale, limits: &Limits) -> anyhow::Result<()> {
    let clients = 32;
    println!("\n== deploy/dev stack (`saltant all`, default slots), {clients} clients");
    let stack = dev_stack().await;
    let pids = [all_pid(&stack)];
    let (ty, queues) = noop_queues(&stack, "dev", 2).await;
    // Warm: the first instances open the queues' consumers.
    load(&stack, &pids, ty, &queues, 10, 4).await?;

    let one = load(&stack, &pids, ty, &queues[..1], scale.e2e, clients).await?;
    report.add(
        "dev_one_queue_per_sec",
        "deploy/dev stack, one loaded queue: POST → final",
        format!("{:.0}/s", one.rate),
        format!(
            "= {:.0}% of spawn rate; CPU {:.2} ms per instance, all processes (targets ≥ 1,000/s, ≥ 30%, ≤ 1.2 ms)",
            100.0 * one.rate / limits.spawn_per_sec,
            one.cpu_ms_per_instance
        ),
        json!({"per_sec": one.rate, "ratio_to_spawn": one.rate / limits.spawn_per_sec, "cpu_ms": one.cpu_ms_per_instance, "cpu_parts": one.cpu_parts}),
    );
    let two = load(&stack, &pids, ty, &queues, scale.e2e / 2, clients).await?;
    report.add(
        "dev_two_queues_per_sec",
        "deploy/dev stack, two queues loaded at once",
        format!("{:.0}/s", two.rate),
        format!(
            "shares {} when the first was through (target 40–60% each)",
            two.shares
                .iter()
                .map(|s| format!("{:.0}%", 100.0 * s))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        json!({"per_sec": two.rate, "shares": two.shares, "cpu_ms": two.cpu_ms_per_instance}),
    );

    // 1,000 queues that had work and are idle now.
    let idle = scale.idle_queues;
    let (idle_ty, idle_queues) = noop_queues(&stack, "idle", idle).await;
    let before = count(&stack, "SELECT count(*) FROM task_instances").await;
    for q in &idle_queues {
        post_many(
            &stack,
            json!({"task_type": idle_ty, "task_queue": q}),
            1,
            1,
            "executabletaskinstances/",
        )
        .await;
    }
    wait_finished(&stack, before + idle as i64, Duration::from_secs(300)).await?;
    let secs = 10.0;
    let cpu_before = cpu_ms(pids[0]);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let idle_cpu = (cpu_ms(pids[0]) - cpu_before) / (secs * 10.0);
    let among = load(&stack, &pids, ty, &queues[..1], scale.e2e, clients).await?;
    report.add(
        "dev_idle_queues_cpu_percent",
        &format!("deploy/dev stack idle, {idle} queues that had work"),
        format!("{idle_cpu:.2}% CPU"),
        "of one core, `saltant all` (target ≤ 2%)".into(),
        json!(idle_cpu),
    );
    report.add(
        "dev_among_idle_per_sec",
        &format!("deploy/dev stack, one loaded queue among {idle} idle ones"),
        format!("{:.0}/s", among.rate),
        format!(
            "= {:.0}% of the single-queue rate (target ≥ 90%)",
            100.0 * among.rate / one.rate
        ),
        json!({"per_sec": among.rate, "ratio_to_one_queue": among.rate / one.rate}),
    );
    Ok(())
}

/// Separate processes, two executors with default slots; one is killed with SIGKILL when a
/// quarter of the instances are final, and the other carries on.
pub async fn killed_executor(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    println!("\n== separate processes, two executors, one killed mid-run");
    let stack = Stack::start_opts(Options {
        no_all: true,
        env: &[
            ("RUST_LOG", "warn"),
            ("SALTANT_SCHEDULER__LOST_CHECK_EVERY_SECS", "1"),
        ],
        ..Options::default()
    })
    .await;
    let mut services = Services {
        children: ["api", "scheduler", "log-collector", "executor", "executor"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    format!("{name}-{i}"),
                    stack.spawn(&[name], &format!("{name}-{i}.log")),
                )
            })
            .collect(),
    };
    stack.wait_ready().await;
    let (ty, queues) = noop_queues(&stack, "kill", 1).await;
    let n = scale.e2e;
    let body = json!({"task_type": ty, "task_queue": queues[0]});
    let start = Instant::now();
    let posting = post_many(&stack, body, n, 32, "executabletaskinstances/");
    let killing = async {
        let deadline = Instant::now() + Duration::from_secs(600);
        while count(
            &stack,
            "SELECT count(*) FROM task_instances WHERE state = 'successful'",
        )
        .await
            < (n / 4) as i64
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        services.kill("executor-4");
        Instant::now()
    };
    let ((_, made), killed_at) = tokio::join!(posting, killing);
    let done_at_kill = count(
        &stack,
        "SELECT count(*) FROM task_instances WHERE state IN ('successful','failed')",
    )
    .await;
    // Lost instances fail after the heartbeat bound (15 s): the rate after the kill is
    // the survivor's, measured until the last successful instance.
    let successful = async |s: &Stack| {
        count(
            s,
            "SELECT count(*) FROM task_instances WHERE state = 'successful'",
        )
        .await
    };
    wait_finished(&stack, made.len() as i64, Duration::from_secs(600)).await?;
    let total = start.elapsed().as_secs_f64();
    let last_success = count(
        &stack,
        "SELECT (extract(epoch FROM max(datetime_finished)) * 1000)::bigint FROM task_instances WHERE state = 'successful'",
    )
    .await as f64
        / 1000.0;
    let kill_epoch =
        chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - killed_at.elapsed().as_secs_f64();
    let after = successful(&stack).await - done_at_kill;
    let failed = count(
        &stack,
        "SELECT count(*) FROM task_instances WHERE state = 'failed'",
    )
    .await;
    let survivor_rate = after as f64 / (last_success - kill_epoch).max(0.001);
    report.add(
        "killed_executor_survivor_per_sec",
        "two executors, one killed mid-run: the survivor's rate after the kill",
        format!("{survivor_rate:.0}/s"),
        format!(
            "{} instances in {total:.1} s; {failed} lost with the victim failed within the heartbeat bound",
            made.len()
        ),
        json!({"survivor_per_sec": survivor_rate, "failed": failed, "total_s": total}),
    );
    drop(services);
    Ok(())
}

/// A steady rate (half the measured capacity, at most `soak_rate`) for a while: the backlog stays bounded, memory stays flat, and the bus
/// and database grow by a measurable amount per instance.
pub async fn soak(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    // Half of what the same stack did flat out in this run (when measured): a steady
    // load it should carry indefinitely, whatever the machine's speed today.
    let rate = report
        .json
        .get("dev_one_queue_per_sec")
        .and_then(|v| v["per_sec"].as_f64())
        .map_or(scale.soak_rate, |r| {
            ((r / 2.0) as u64).clamp(10, scale.soak_rate)
        });
    let secs = scale.soak_secs;
    println!("\n== soak: deploy/dev stack at {rate}/s for {secs} s");
    let stack = dev_stack().await;
    let pid = all_pid(&stack);
    let (ty, queues) = noop_queues(&stack, "soak", 1).await;
    let body = json!({"task_type": ty, "task_queue": queues[0]});
    let nats = async_nats_storage().await;
    let db = count(&stack, "SELECT pg_database_size(current_database())").await;
    let rss_start = (rss(pid).0, pss_of("nats-server"), pss_of("postgres"));
    let mut samples = Vec::new();
    let mut max_backlog = 0i64;
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0usize;
    let mut created = 0i64;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut next_sample = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        let (stack_url, http, auth, body) = (
            format!("{}/executabletaskinstances/", stack.url),
            stack.http.clone(),
            stack.auth(),
            body.clone(),
        );
        in_flight.spawn(async move {
            http.post(&stack_url)
                .header("Authorization", auth)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status() == 201)
        });
        sent += 1;
        while let Some(r) = in_flight.try_join_next() {
            created += i64::from(r.unwrap_or(false));
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(10.min(secs.max(1)));
            let backlog = count(
                &stack,
                "SELECT count(*) FROM task_instances WHERE state NOT IN ('successful','failed','terminated')",
            )
            .await;
            max_backlog = max_backlog.max(backlog);
            let (now, _) = rss(pid);
            println!(
                "    {:>4.0} s: {sent} sent, backlog {backlog}, saltant RSS {now:.1} MiB, nats {:.1} MiB",
                start.elapsed().as_secs_f64(),
                pss_of("nats-server")
            );
            samples.push(
                json!({"s": start.elapsed().as_secs_f64(), "backlog": backlog, "rss_mib": now}),
            );
        }
    }
    while let Some(r) = in_flight.join_next().await {
        created += i64::from(r.unwrap_or(false));
    }
    let total = count(&stack, "SELECT count(*) FROM task_instances").await;
    wait_finished(&stack, total, Duration::from_secs(300)).await?;
    let rss_end = (rss(pid).0, pss_of("nats-server"), pss_of("postgres"));
    let nats_per = (async_nats_storage().await - nats) as f64 / created.max(1) as f64;
    let db_per = (count(&stack, "SELECT pg_database_size(current_database())").await - db) as f64
        / created.max(1) as f64;
    report.add(
        "soak",
        &format!("soak at {rate}/s for {secs} s ({created} instances)"),
        format!("backlog ≤ {max_backlog}"),
        format!(
            "RSS saltant {:.1} → {:.1} MiB, nats {:.1} → {:.1} MiB, postgres (PSS of all) {:.1} → {:.1} MiB; per instance: NATS +{nats_per:.0} B, PostgreSQL +{db_per:.0} B",
            rss_start.0, rss_end.0, rss_start.1, rss_end.1, rss_start.2, rss_end.2
        ),
        json!({"rate": rate, "secs": secs, "created": created, "max_backlog": max_backlog,
               "rss_start": [rss_start.0, rss_start.1, rss_start.2], "rss_end": [rss_end.0, rss_end.1, rss_end.2],
               "nats_bytes_per_instance": nats_per, "pg_bytes_per_instance": db_per, "samples": samples}),
    );
    Ok(())
}

/// Bytes JetStream stores on the test server (all streams of all stacks on it).
async fn async_nats_storage() -> i64 {
    let url = saltant_tests::required_env("SALTANT_TEST_NATS_URL");
    let Ok(client) = async_nats::connect(url).await else {
        return 0;
    };
    let js = async_nats::jetstream::new(client);
    js.query_account()
        .await
        .map(|a| a.storage as i64)
        .unwrap_or(0)
}

/// End-to-end throughput of the `deploy/dev` stack with trace export off, on, and on with
/// 10% of instances sampled (OTLP/gRPC to a receiver in this process, on the same machine
/// like a local collector), the same load each time, best of two interleaved rounds, and
/// the spans that arrived.
pub async fn telemetry(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    let clients = 32;
    println!("\n== trace export off and on (deploy/dev stack, {clients} clients, one queue)");
    let otlp = saltant_tests::otlp::Receiver::start().await;
    // Off, on (every instance sampled), on with 10% of instances sampled.
    let configs: [(&str, &[(&str, &str)]); 3] = [
        ("off", &[]),
        ("on", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]),
        (
            "on, 10% sampled",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ],
        ),
    ];
    // Two rounds, the second in reverse order, and the mean of each configuration's two
    // runs: every stack runs slower than the one before it (the PostgreSQL server has
    // taken the earlier ones' writes), by more than the difference measured, and the
    // mirrored order cancels that drift.
    let mut runs: Vec<Vec<(Load, usize)>> = (0..configs.len()).map(|_| Vec::new()).collect();
    let order = (0..configs.len()).chain((0..configs.len()).rev());
    for i in order {
        let (name, vars) = configs[i];
        let env: Vec<(&str, &str)> = vars
            .iter()
            .map(|&(k, v)| {
                (
                    k,
                    if v.is_empty() {
                        otlp.grpc_endpoint.as_str()
                    } else {
                        v
                    },
                )
            })
            .collect();
        let before = otlp.received.spans().len();
        let stack = Stack::start_opts(Options {
            env: &env,
            ..Options::default()
        })
        .await;
        stack.wait_ready().await;
        let pids = [all_pid(&stack)];
        let (ty, queues) = noop_queues(&stack, "otel", 1).await;
        load(&stack, &pids, ty, &queues, 10, 4).await?;
        let l = load(&stack, &pids, ty, &queues, scale.e2e, clients).await?;
        drop(stack);
        // The batch exporter sends every few seconds: give the last spans time to arrive.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let spans = otlp.received.spans().len() - before;
        println!("    ({name})");
        runs[i].push((l, spans));
    }
    let mean = |rs: &[(Load, usize)], f: fn(&Load) -> f64| {
        rs.iter().map(|(l, _)| f(l)).sum::<f64>() / rs.len() as f64
    };
    let results: Vec<(&str, f64, f64, usize)> = configs
        .iter()
        .zip(&runs)
        .map(|((name, _), rs)| {
            (
                *name,
                mean(rs, |l| l.rate),
                mean(rs, |l| l.cpu_ms_per_instance),
                rs.iter().map(|(_, n)| n).sum::<usize>() / rs.len(),
            )
        })
        .collect();
    let off = results[0].1;
    for &(name, rate, cpu, spans) in &results {
        let lost = 100.0 * (1.0 - rate / off);
        let key = format!(
            "otel_export_{}",
            name.replace([',', '%'], "").replace(' ', "_")
        );
        report.add(
            &key,
            &format!("deploy/dev stack, trace export {name}: POST → final"),
            format!("{rate:.0}/s"),
            format!(
                "{lost:.0}% below export off; CPU {cpu:.2} ms per instance; {spans} spans received per run ({:.1} per instance); mean of 2 runs",
                spans as f64 / (scale.e2e + 10) as f64
            ),
            json!({"per_sec": rate, "below_off_pct": lost, "cpu_ms": cpu, "spans": spans}),
        );
    }
    Ok(())
}
