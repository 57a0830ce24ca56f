//! Celery 5 with RabbitMQ on the same no-op workload, started by the harness in the same
//! run: a RabbitMQ node of its own (Debian's `rabbitmq-server`, on free ports, state in a
//! temporary folder), a results database in the same PostgreSQL saltant uses, and
//! `bench/celery/bench_celery.py` (Celery from PyPI in deploy's virtualenv) driving it.

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

pub async fn compare(report: &mut Report, scale: Scale) -> anyhow::Result<()> {
    println!("\n== Celery 5 + RabbitMQ, same no-op workload");
    let dir = std::env::temp_dir().join(format!("saltant-bench-rabbit-{}", std::process::id()));
    let (rabbit, port) = start_rabbit(&dir)?;
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
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/celery/bench_celery.py");
    let python = format!("{}/bin/python", required_env("SALTANT_TEST_VENV"));
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("amqp://guest:guest@127.0.0.1:{port}//"))
        .arg(&backend)
        .arg(scale.celery.to_string())
        .arg((4 * cores).to_string())
        .output()
        .await?;
    drop(rabbit);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        out.status.success(),
        "celery run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or("{}"))
        .map_err(|e| {
            anyhow::anyhow!(
                "celery run printed no result ({e}): {line}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let celery = result["per_sec"].as_f64().unwrap_or(f64::NAN);
    let best_saltant = report
        .json
        .iter()
        .filter(|(k, _)| k.starts_with("e2e_per_sec_"))
        .filter_map(|(_, v)| v["per_sec"].as_f64())
        .fold(f64::NAN, f64::max);
    report.add(
        "celery_per_sec",
        &format!(
            "Celery 5 + RabbitMQ, {} no-op tasks, {} processes",
            scale.celery,
            4 * cores
        ),
        format!("{celery:.0}/s"),
        format!(
            "saltant's best is {:.1}× this (target ≥ 4×)",
            best_saltant / celery
        ),
        json!({"per_sec": celery, "saltant_ratio": best_saltant / celery, "raw": result}),
    );
    Ok(())
}
