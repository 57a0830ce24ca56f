//! One instance end to end through the real stack: HTTP → PostgreSQL → JetStream →
//! scheduler → executor (host process) → events → PostgreSQL → HTTP; and a clean SIGTERM.

use saltant_tests::{Class, INSTANCE_KEYS, Stack, keys};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn echo_instance_succeeds_and_false_fails() {
    let stack = Stack::start().await;
    stack.wait_ready().await;

    // saltant-py sends forms: JSON fields as text, lists as repeated keys.
    let (status, echo) = stack
        .post_form(
            "executabletasktypes/",
            &[
                ("name", "echo"),
                ("command_to_run", "echo"),
                ("required_arguments", r#"["x"]"#),
                ("required_arguments_default_values", r#"{"x": 5}"#),
            ],
        )
        .await;
    assert_eq!(status, 201, "{echo}");
    assert_eq!(echo["json_file_option"], Value::Null);
    let (status, fals) = stack
        .post_json(
            "executabletasktypes/",
            &json!({"name": "false", "command_to_run": "false"}),
        )
        .await;
    assert_eq!(status, 201, "{fals}");
    let (echo_id, false_id) = (echo["id"].to_string(), fals["id"].to_string());
    let (status, wl) = stack
        .post_form(
            "taskwhitelists/",
            &[
                ("name", "wl"),
                ("whitelisted_executable_task_types", &echo_id),
                ("whitelisted_executable_task_types", &false_id),
            ],
        )
        .await;
    assert_eq!(status, 201, "{wl}");
    assert_eq!(
        wl["whitelisted_executable_task_types"],
        json!([echo["id"], fals["id"]])
    );
    let (status, queue) = stack
        .post_form(
            "taskqueues/",
            &[
                ("name", "q1"),
                ("whitelists", &wl["id"].to_string()),
                ("runs_executable_tasks", "True"),
                ("active", "True"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    // DRF: booleans missing from a form are false.
    assert_eq!(
        (
            queue["private"].clone(),
            queue["runs_docker_container_tasks"].clone()
        ),
        (json!(false), json!(false))
    );
    let queue_id = queue["id"].to_string();

    let (status, inst) = stack
        .post_form(
            "executabletaskinstances/",
            &[
                ("task_type", &echo_id),
                ("task_queue", &queue_id),
                ("arguments", r#"{"word": "hi"}"#),
                ("name", "first"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{inst}");
    assert_eq!(inst["state"], "created");
    assert_eq!(
        inst["arguments"],
        json!({"word": "hi", "x": 5}),
        "defaults are filled in and stored"
    );
    assert_eq!(keys(&inst), INSTANCE_KEYS);
    let uuid = inst["uuid"].as_str().expect("uuid").to_owned();
    let done = stack
        .wait_final(Class::Executable, &uuid, Duration::from_secs(30))
        .await;
    assert_eq!(done["state"], "successful", "{done}\n{}", stack.log());
    assert!(done["datetime_finished"].is_string());

    // The task got the arguments as one argv element, rendered like Python's json.dumps.
    let stdout = std::fs::read_to_string(
        stack
            .dir
            .join("logs")
            .join(&uuid)
            .join(format!("{uuid}-stdout.txt")),
    )
    .expect("stdout file in the logs folder");
    assert_eq!(stdout, "{\"word\": \"hi\", \"x\": 5}\n");

    let (status, bad) = stack
        .post_form(
            "executabletaskinstances/",
            &[("task_type", &false_id), ("task_queue", &queue_id)],
        )
        .await;
    assert_eq!(status, 201, "{bad}");
    let failed = stack
        .wait_final(
            Class::Executable,
            bad["uuid"].as_str().expect("uuid"),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["datetime_finished"].is_string());

    // A required argument without default is refused with the original's message.
    let (status, _) = stack
        .post_json(
            "executabletasktypes/",
            &json!({"name": "needs", "command_to_run": "echo", "required_arguments": ["word"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, err) = stack
        .post_form(
            "executabletaskinstances/",
            &[("task_type", "3"), ("task_queue", &queue_id)],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        err,
        json!({"non_field_errors": ["['Queue q1 has not whitelisted task type needs']"]})
    );

    // Both rows are listed, newest first, with a saltant-py style unbounded page.
    let (status, list) = stack
        .get("executabletaskinstances/?page=1&page_size=9223372036854775807")
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 2);
    assert_eq!(list["results"][1]["uuid"], uuid.as_str());
}

#[tokio::test]
async fn missing_or_bad_credentials_get_403() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let r = stack
        .http
        .get(format!("{}/users/", stack.url))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"detail": "Authentication credentials were not provided."})
    );
    let r = stack
        .http
        .get(format!("{}/users/", stack.url))
        .header(
            "Authorization",
            "Token 0000000000000000000000000000000000000000",
        )
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"detail": "Invalid token."})
    );
}

#[tokio::test]
async fn sigterm_shuts_everything_down_cleanly_within_10s() {
    let mut stack = Stack::start().await;
    stack.wait_ready().await;
    let (took, ok) = stack.terminate(Duration::from_secs(10));
    assert!(
        ok,
        "saltant all did not exit cleanly within 10 s (took {took:?}):\n{}",
        stack.log()
    );
    let log = stack.log();
    for service in [
        "api stopped",
        "scheduler stopped",
        "executor stopped",
        "log-collector stopped",
    ] {
        assert!(log.contains(service), "log lacks {service:?}:\n{log}");
    }
}
