//! Celery 5 on the same no-op workload, started by the harness in the same run, in two
//! set-ups: Redis as broker and result backend (Celery's most common set-up and its best
//! here: a redis-server of its own without persistence), and RabbitMQ with results in the
//! PostgreSQL saltant uses (a RabbitMQ node of its own, on free ports, state in a temporary
//! folder). `bench/celery/bench_celery.py` (Celery from PyPI in deploy's virtualenv) drives
//! both.

use crate::{Report, Scale};
use saltant_tests::{psql, required_env};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The RabbitMQ node: a shell script that starts an Erlang VM (and epmd), all in one
/// process group of their own, stopped together.
struct Rabbit(Child);

impl Drop for Rabbit {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let group = Pid::from_raw(self.0.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && killpg(group, None).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.0.wait();
        // epmd, the Erlang port mapper the node started, detaches itself: stop it too.
        let _ = Command::new("epmd")
            .arg("-kill")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Rabbit {
    /// What shows the node crashed during the run: it exited before it was stopped, or
    /// Erlang left a crash dump (`erl_crash.dump`, `MnesiaCore.*`) in its folder.
    fn crash(&mut self, dir: &std::path::Path) -> Option<String> {
        let mut signs = Vec::new();
        if let Ok(Some(status)) = self.0.try_wait() {
            signs.push(format!("the node exited ({status}) before the run ended"));
        }
        let dumps: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n == "erl_crash.dump" || n.starts_with("MnesiaCore."))
            .collect();
        if !dumps.is_empty() {
            signs.push(format!("crash dumps {}", dumps.join(", ")));
        }
        (!signs.is_empty()).then(|| signs.join("; "))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(35672)
}

fn start_rabbit(dir: &std::path::Path) -> anyhow::Result<(Rabbit, u16)> {
    let port = free_port();
    std::fs::create_dir_all(dir)?;
    let bin = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    anyhow::ensure!(
        std::path::Path::new(bin).exists(),
        "{bin} missing (Debian's rabbitmq-server)"
    );
    let node = format!("saltantbench{}@localhost", std::process::id());
    use std::os::unix::process::CommandExt;
    let child = Command::new(bin)
        .process_group(0)
        // Erlang writes crash dumps to its working folder.
        .current_dir(dir)
        .env("HOME", dir)
        .env("RABBITMQ_NODENAME", &node)
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_DIST_PORT", free_port().to_string())
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbit.pid"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let rabbit = Rabbit(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "rabbitmq did not listen on {port} in 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((rabbit, port))
}

/// Runs `bench_celery.py` (N no-op tasks, `concurrency` worker processes) against a broker
/// and result backend; returns its JSON result.
async fn run_celery(
    broker: &str,
    backend: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/celery/bench_celery.py");
    let python = format!("{}/bin/python", required_env("SALTANT_TEST_VENV"));
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(broker)
        .arg(backend)
        .arg(n.to_string())
        .arg(concurrency.to_string())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "celery run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap_or("{}")).map_err(|e| {
        anyhow::anyhow!(
            "celery run printed no result ({e}): {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// saltant's best end-to-end figure so far in this run, and the deploy/dev stack's.
fn saltant_figures(report: &Report) -> (f64, f64) {
    let best = report
        .json
        .iter()
        .filter(|(k, _)| k.starts_with("e2e_per_sec_") || k.starts_with("dev_one_queue"))
        .filter_map(|(_, v)| v["per_sec"].as_f64())
        .fold(f64::NAN, f64::max);
    let dev = report
        .json
        .get("dev_one_queue_per_sec")
        .and_then(|v| v["per_sec"].as_f64())
        .unwrap_or(f64::NAN);
    (best, dev)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

pub async fn compare(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    println!("\n== Celery 5 + RabbitMQ (results in PostgreSQL), same no-op workload");
    let dir = std::env::temp_dir().join(format!("saltant-bench-rabbit-{}", std::process::id()));
    let (mut rabbit, port) = start_rabbit(&dir)?;
    let admin = required_env("SALTANT_TEST_PG_ADMIN_URL");
    let db = format!("celery_bench_{}", std::process::id());
    psql(&admin, &format!("CREATE DATABASE {db}"));
    let backend = admin
        .rsplit_once('/')
        .map(|(base, _)| {
            format!(
                "db+{}/{db}",
                base.replace("postgres://", "postgresql+psycopg2://")
            )
        })
        .unwrap_or_default();
    let concurrency = 4 * cores();
    let result = run_celery(
        &format!("amqp://guest:guest@127.0.0.1:{port}//"),
        &backend,
        scale.celery,
        concurrency,
    )
    .await;
    let crash = rabbit.crash(&dir);
    drop(rabbit);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(crash) = &crash {
        println!("RabbitMQ crashed during the Celery run: {crash}; its figure is not valid");
    }
    let result = result?;
    let celery = result["per_sec"].as_f64().unwrap_or(f64::NAN);
    let (best, _) = saltant_figures(report);
    let ratio = match &crash {
        None => format!("saltant's best is {:.1}× this", best / celery),
        Some(c) => format!("not valid: RabbitMQ crashed ({c})"),
    };
    report.add(
        "celery_per_sec",
        &format!(
            "Celery 5 + RabbitMQ + PostgreSQL results, {} no-op tasks, {concurrency} processes",
            scale.celery
        ),
        format!("{celery:.0}/s"),
        ratio,
        json!({"per_sec": celery, "saltant_ratio": best / celery, "broker_crash": crash, "raw": result}),
    );
    Ok(())
}

/// A redis-server of the benchmark's own, on a free port, without persistence.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Celery at its best on our machines: Redis as broker and result backend, at the worker
/// concurrency that does best (one process per core, and four).
pub async fn compare_redis(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    println!("\n== Celery 5 + Redis (broker and results), same no-op workload");
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("start redis-server (Debian's redis-server): {e}"))?;
    let _redis = Redis(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "redis did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut best: Option<(usize, f64, serde_json::Value)> = None;
    for concurrency in [cores(), 4 * cores()] {
        let result = run_celery(
            &format!("redis://127.0.0.1:{port}/0"),
            &format!("redis://127.0.0.1:{port}/1"),
            scale.celery,
            concurrency,
        )
        .await?;
        let rate = result["per_sec"].as_f64().unwrap_or(f64::NAN);
        println!("    {concurrency} processes: {rate:.0}/s");
        if best.as_ref().is_none_or(|b| rate > b.1) {
            best = Some((concurrency, rate, result));
        }
    }
    let (concurrency, celery, result) = best.expect("two runs");
    let (best_saltant, dev) = saltant_figures(report);
    report.add(
        "celery_redis_per_sec",
        &format!(
            "Celery 5 + Redis, {} no-op tasks, best of 2 concurrencies ({concurrency} processes)",
            scale.celery
        ),
        format!("{celery:.0}/s"),
        format!(
            "saltant's best is {:.1}× this, the deploy/dev stack {:.1}× (target ≥ 2×)",
            best_saltant / celery,
            dev / celery
        ),
        json!({"per_sec": celery, "concurrency": concurrency, "saltant_ratio": best_saltant / celery,
               "dev_ratio": dev / celery, "raw": result}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_died_or_left_a_dump_is_reported() {
        let dir = std::env::temp_dir().join(format!("saltant-rabbit-crash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut node = Rabbit(Command::new("sleep").arg("30").spawn().expect("spawn"));
        assert_eq!(node.crash(&dir), None, "a live node without dumps");
        std::fs::write(dir.join("MnesiaCore.rabbit@localhost_1_2_3"), b"dump").expect("dump");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(node.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        let crash = loop {
            match node.crash(&dir) {
                Some(c) if c.contains("exited") => break c,
                _ if Instant::now() > deadline => panic!("the exit was not seen"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        assert!(
            crash.contains("MnesiaCore.rabbit@localhost_1_2_3"),
            "{crash}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
