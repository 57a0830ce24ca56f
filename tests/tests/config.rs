//! Settings are checked before anything starts: a bad value stops the binary at once with
//! every problem named by its key, before it connects to anything or binds a port.

use saltant_tests::required_env;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn invalid_settings_are_refused_before_anything_starts() {
    // Unreachable servers: reaching them would hang or fail differently.
    let mut child = Command::new(required_env("SALTANT_TEST_BIN"))
        .args(["all", "--slots", "0", "--queue", "no spaces"])
        .env("SALTANT_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("SALTANT_NATS_URL", "nats://127.0.0.1:1")
        .env("SALTANT_API__JWT_SECRET", "too short")
        .env("SALTANT_SCHEDULER__SWEEP_EVERY_SECS", "0")
        .env("SALTANT_API__TRACE_URL", "http://jaeger/trace/")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn saltant");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("saltant did not exit on invalid settings");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
    for problem in [
        "executor.slots is 0; it must be at least 1",
        "executor.queues: \"no spaces\"",
        "api.jwt_secret is 9 bytes; it must be at least 32",
        "scheduler.sweep_every_secs is 0; it must be at least 1",
        "api.trace_url must contain {trace_id}",
    ] {
        assert!(stderr.contains(problem), "{problem:?} not in {stderr}");
    }
    // Nothing started: no log line of any service.
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// Runs `saltant scheduler` with `env` against unreachable servers; its exit status and
/// stderr once it exits (within 10 s).
fn scheduler_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(required_env("SALTANT_TEST_BIN"))
        .arg("scheduler")
        .env("SALTANT_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("SALTANT_NATS_URL", "nats://127.0.0.1:1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn saltant");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("saltant scheduler did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    (
        status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn telemetry_settings_that_cannot_work_stop_the_service_at_start() {
    // An OTLP protocol that does not exist.
    let (code, stderr) = scheduler_exit(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL \"carrier-pigeon\""),
        "{stderr}"
    );
    // A telemetry port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, stderr) = scheduler_exit(&[("SALTANT_TELEMETRY__LISTEN", addr.as_str())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("telemetry.listen {addr}")),
        "{stderr}"
    );
}
