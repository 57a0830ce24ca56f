//! Hardening (docs/security.md): tasks never reach the server's secrets, whatever they
//! ask for by name or by `$NAME` in their command.

use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn tasks_see_none_of_the_servers_secrets() {
    // A secret-looking variable of the executor's own, beside saltant's settings.
    let stack = saltant_tests::Stack::start_opts(saltant_tests::Options {
        env: &[("MY_API_TOKEN", "t0ps3cret"), ("MY_DATA_DIR", "/data/here")],
        ..Default::default()
    })
    .await;
    stack.wait_ready().await;
    let database_url = stack.database_url();

    // Asked for by name: the attempt fails as the original did for a missing variable.
    for name in ["SALTANT_DATABASE_URL", "SALTANT_NATS_URL", "MY_API_TOKEN"] {
        let (ty, q) = stack
            .type_on_queues(
                saltant_tests::Class::Executable,
                &json!({"name": format!("wants-{name}"), "command_to_run": "true",
                        "environment_variables": [name]}),
                &[format!("q-{}", name.to_lowercase().replace('_', "-"))],
            )
            .await;
        let uuid = stack.run_executable(ty, q[0], json!({})).await;
        stack.wait_state(&uuid, "failed", WAIT).await;
        let reason = saltant_tests::psql(
            &database_url,
            &format!("SELECT reason FROM task_instances WHERE uuid = '{uuid}'"),
        )
        .trim()
        .to_owned();
        assert_eq!(
            reason,
            format!("Environment variable {name} not present in the worker's environment!")
        );
    }

    // By `$NAME` in the command (expanded by saltant, then by a shell inside the task):
    // nothing secret, while harmless variables still work.
    let (ty, q) = stack
        .executable_on_queue(
            "peek",
            "sh -c 'echo \"[$SALTANT_DATABASE_URL] [$MY_API_TOKEN] [$MY_DATA_DIR]\"; echo \"<$SALTANT_NATS_URL>\"; env'",
            "peekq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack.wait_state(&uuid, "successful", WAIT).await;
    let out = saltant_tests::eventually(WAIT, "the output to be stored", || async {
        let (status, _, body) = stack
            .download_log(&uuid, &format!("{uuid}-stdout.txt"))
            .await;
        (status == 200).then(|| body.as_str().unwrap_or_default().to_owned())
    })
    .await;
    assert!(out.starts_with("[] [] [/data/here]\n<>\n"), "{out}");
    for secret in [database_url.as_str(), "t0ps3cret", "SALTANT_", "nats://"] {
        assert!(!out.contains(secret), "the task saw {secret}: {out}");
    }
}
