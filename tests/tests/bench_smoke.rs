//! The benchmark harness in its quick mode, so that it cannot rot: every measurement runs
//! (small numbers, debug build) against the real components, Celery with Redis and with
//! RabbitMQ included. The figures mean nothing here; docs/benchmarks.md has the real ones.

use saltant_tests::required_env;
use std::process::Command;

#[test]
fn the_benchmark_harness_runs_in_smoke_mode() {
    let json =
        std::env::temp_dir().join(format!("saltant-bench-smoke-{}.json", std::process::id()));
    let out = Command::new(required_env("SALTANT_TEST_BENCH_BIN"))
        .args(["--smoke", "--json"])
        .arg(&json)
        .output()
        .expect("run saltant-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "saltant-bench --smoke failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    let _ = std::fs::remove_file(&json);
    for key in [
        "spawn_per_sec",
        "docker_raw_parallel_per_sec",
        "e2e_per_sec_1x_c8",
        "e2e_per_sec_2x_c8",
        "dispatch_latency_ms",
        "create_latency_ms",
        "list_page_ms",
        "unbounded_page",
        "container_sequential_ms",
        "container_parallel_per_sec",
        "log_ingestion_mib_per_sec",
        "idle_rss_mib_api",
        "peak_rss_mib_executor-0",
        "celery_per_sec",
        "celery_redis_per_sec",
        "dev_one_queue_per_sec",
        "dev_two_queues_per_sec",
        "dev_idle_queues_cpu_percent",
        "dev_among_idle_per_sec",
        "killed_executor_survivor_per_sec",
        "soak",
    ] {
        assert!(figures.get(key).is_some(), "{key} missing from {figures}");
    }
}
