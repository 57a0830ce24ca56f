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
    ] {
        assert!(stderr.contains(problem), "{problem:?} not in {stderr}");
    }
    // Nothing started: no log line of any service.
    assert!(!stderr.contains("listening"), "{stderr}");
}
