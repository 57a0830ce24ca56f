//! The unchanged PyPI clients against the live stack: saltant-py 0.4.0 and saltant-cli
//! 0.3.1 run the compatibility sequences of saltant-reference.md §8 (tests/compat/*.py),
//! and schemathesis fuzzes every operation of /api/openapi.json looking for 5xx answers.
//! `deploy/test` installs them in its virtualenv and exports SALTANT_TEST_VENV.

use saltant_tests::{Stack, required_env};
use std::process::Command;

fn venv_bin(name: &str) -> String {
    format!("{}/bin/{name}", required_env("SALTANT_TEST_VENV"))
}

fn run_script(stack: &Stack, script: &str, token: &str) {
    let path = format!("{}/compat/{script}", env!("CARGO_MANIFEST_DIR"));
    let venv_path = format!("{}/bin", required_env("SALTANT_TEST_VENV"));
    let out = Command::new(venv_bin("python"))
        .arg(&path)
        .env("SALTANT_API_URL", format!("{}/", stack.url))
        .env("SALTANT_AUTH_TOKEN", token)
        .env("SALTANT_TEST_SEED_USER", "seeduser")
        .env(
            "PATH",
            format!("{venv_path}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{stderr}\n--- server log (tail) ---\n{}",
        tail(&stack.log(), 40)
    );
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test]
async fn saltant_py_sequence() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    stack.user("seeduser", false);
    let token = stack.user("sdkuser", false);
    run_script(&stack, "sdk_sequence.py", &token);
}

#[tokio::test]
async fn saltant_cli_sequence() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    stack.user("seeduser", false);
    let token = stack.user("cliuser", false);
    run_script(&stack, "cli_sequence.py", &token);
}

/// A bounded schemathesis run (the full one is in docs/api.md): no operation may answer
/// 5xx, whatever the generated input.
#[tokio::test]
async fn schemathesis_finds_no_server_errors() {
    let stack = Stack::start_with(&["--queue", "nothing-runs-here"]).await;
    stack.wait_ready().await;
    let examples = std::env::var("SALTANT_TEST_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = Command::new(venv_bin("schemathesis"))
        .args([
            "run",
            &format!("{}/openapi.json", stack.url),
            "--checks",
            "not_a_server_error",
            "--max-examples",
            &examples,
            "--header",
            &format!("Authorization: {}", stack.auth()),
            "--no-color",
            // Live streams never end; their inputs are tested in events.rs and tail.rs.
            "--exclude-path-regex",
            "/(events|tail)/$",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}\n--- server log (tail) ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&stack.log(), 40)
    );
}
