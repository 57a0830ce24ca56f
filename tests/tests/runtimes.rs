//! Host executables and the Singularity runtime's absence, through the real stack.

use saltant_tests::Stack;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn host_task_gets_its_own_folder_env_and_argument_file() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    // pwd, the environment, and the argument file's path and contents.
    let (status, ty) = stack
        .post_json(
            "executabletasktypes/",
            &json!({
                "name": "inspect",
                "command_to_run": "sh -c 'pwd; env | sort; echo \"file=$2\"; cat \"$2\"' inspect",
                "environment_variables": ["HOME"],
                "required_arguments": ["a"],
                "json_file_option": "--args",
            }),
        )
        .await;
    assert_eq!(status, 201, "{ty}");
    let (status, wl) = stack
        .post_json(
            "taskwhitelists/",
            &json!({"name": "wl", "whitelisted_executable_task_types": [ty["id"]]}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, q) = stack
        .post_json(
            "taskqueues/",
            &json!({"name": "hq", "whitelists": [wl["id"]]}),
        )
        .await;
    let uuid = stack
        .run_executable(
            ty["id"].as_i64().expect("id"),
            q["id"].as_i64().expect("id"),
            json!({"a": "x y"}),
        )
        .await;
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(30))
        .await;
    let out = std::fs::read_to_string(
        stack
            .dir
            .join("logs")
            .join(&uuid)
            .join(format!("{uuid}-stdout.txt")),
    )
    .expect("stdout");
    let lines: Vec<&str> = out.lines().collect();
    let work = stack.dir.join("work").join(&uuid);
    assert_eq!(lines[0], work.display().to_string(), "{out}");
    assert!(!work.exists(), "working folder removed afterwards");
    // Replaced environment: listed variables, JOB_UUID, PATH, TRACEPARENT (and what sh
    // adds itself).
    let names: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.starts_with("file="))
        .skip(1)
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "OLDPWD"))
        .collect();
    assert_eq!(names, ["HOME", "JOB_UUID", "PATH", "TRACEPARENT"], "{out}");
    assert!(out.contains(&format!("JOB_UUID={uuid}")));
    // argv: sh -c '…' inspect --args <file>, so $2 is the file; it holds the JSON and a
    // newline, and is removed afterwards.
    let args_file = stack.dir.join("tmp").join(format!("{uuid}_args.json"));
    let file_line = lines
        .iter()
        .position(|l| l.starts_with("file="))
        .expect("file line");
    assert_eq!(
        lines[file_line],
        format!("file={}", args_file.display()),
        "{out}"
    );
    assert_eq!(lines[file_line + 1], r#"{"a": "x y"}"#, "{out}");
    assert!(!args_file.exists(), "argument file removed afterwards");
}

#[tokio::test]
async fn singularity_without_a_binary_fails_clearly_and_at_once() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (status, ty) = stack
        .post_json(
            "containertasktypes/",
            &json!({"name": "sing", "command_to_run": "true", "container_image": "docker://alpine:3", "container_type": "singularity"}),
        )
        .await;
    assert_eq!(status, 201, "{ty}");
    let (_, wl) = stack
        .post_json(
            "taskwhitelists/",
            &json!({"name": "swl", "whitelisted_container_task_types": [ty["id"]]}),
        )
        .await;
    let (_, q) = stack
        .post_json(
            "taskqueues/",
            &json!({"name": "sq", "whitelists": [wl["id"]]}),
        )
        .await;
    let (status, inst) = stack
        .post_json(
            "containertaskinstances/",
            &json!({"task_type": ty["id"], "task_queue": q["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{inst}");
    let uuid = inst["uuid"].as_str().expect("uuid").to_owned();
    let has_cli = ["apptainer", "singularity"].iter().any(|b| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(b).is_file()))
            .unwrap_or(false)
    });
    let done =
        saltant_tests::eventually(Duration::from_secs(30), "the instance to end", || async {
            let (_, b) = stack.get(&format!("containertaskinstances/{uuid}/")).await;
            matches!(b["state"].as_str(), Some("successful" | "failed")).then_some(b)
        })
        .await;
    if has_cli {
        println!(
            "a singularity CLI is installed: the real pull of docker://alpine:3 decided {}",
            done["state"]
        );
        return;
    }
    assert_eq!(done["state"], "failed");
    let db_reason = saltant_tests::psql(
        &stack.database_url(),
        &format!("SELECT reason FROM task_instances WHERE uuid = '{uuid}'"),
    );
    assert!(
        db_reason.contains("cannot run singularity tasks") && db_reason.contains("executor"),
        "{db_reason}"
    );
}
