//! Termination through the API: a running host process (and its children) is killed and
//! the instance ends `terminated`; an instance that has not started never starts, even on
//! an executor that appears later; a finished instance is left alone.

use saltant_tests::{Class, INSTANCE_KEYS, Stack, eventually, keys, processes_of_job};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn terminating_a_running_instance_kills_its_process_group() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    // A shell with a child: both must die.
    let (ty, q) = stack
        .executable_on_queue("sleeper", "sh -c 'sleep 600 & wait'", "long")
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack
        .wait_state(&uuid, "running", Duration::from_secs(30))
        .await;
    eventually(
        Duration::from_secs(10),
        "the shell and its sleep",
        || async { (processes_of_job(&uuid).len() >= 2).then_some(()) },
    )
    .await;

    let started = Instant::now();
    let body = stack.terminate_instance(Class::Executable, &uuid).await;
    assert_eq!(body["uuid"], uuid.as_str());
    assert_eq!(keys(&body), INSTANCE_KEYS);
    let ended = stack
        .wait_state(&uuid, "terminated", Duration::from_secs(15))
        .await;
    let took = started.elapsed();
    assert!(ended["datetime_finished"].is_string(), "{ended}");
    println!("terminate → terminated in {took:?}");
    assert!(
        processes_of_job(&uuid).is_empty(),
        "processes left: {:?}",
        processes_of_job(&uuid)
    );
    let history = stack.history(&uuid);
    assert_eq!(
        history.last().map(String::as_str),
        Some("terminated"),
        "{history:?}"
    );

    // A finished instance: 202 and nothing changes.
    let again = stack.terminate_instance(Class::Executable, &uuid).await;
    assert_eq!(again["state"], "terminated");
    assert_eq!(again["datetime_finished"], ended["datetime_finished"]);
}

#[tokio::test]
async fn an_instance_terminated_before_it_starts_never_starts() {
    // The stack's executor serves only "busy"; "idle" has no executor yet.
    let stack = Stack::start_with(&["--queue", "busy"]).await;
    stack.wait_ready().await;
    let (ty, q) = stack
        .executable_on_queue("marker", "sh -c 'echo ran'", "idle")
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack
        .wait_state(&uuid, "published", Duration::from_secs(15))
        .await;
    stack.terminate_instance(Class::Executable, &uuid).await;
    let ended = stack
        .wait_state(&uuid, "terminated", Duration::from_secs(15))
        .await;
    assert!(ended["datetime_finished"].is_string());

    // An executor for the queue arrives later: the dispatch is still queued, and the
    // executor must see the request (from the bucket's history) before running it.
    let mut late = stack.spawn(&["executor", "--queue", "idle"], "late-executor.log");
    let logs = stack.dir.join("logs").join(&uuid);
    let log_path = stack.dir.join("late-executor.log");
    eventually(
        Duration::from_secs(20),
        "the late executor to drop the dispatch",
        || async {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            log.contains("not running").then_some(())
        },
    )
    .await;
    let _ = late.kill();
    let _ = late.wait();
    assert!(
        !logs.exists(),
        "the instance ran: {} exists",
        logs.display()
    );
    let history = stack.history(&uuid);
    assert!(
        !history.iter().any(|s| s == "running"),
        "history: {history:?}"
    );
}

#[tokio::test]
async fn only_the_owner_or_a_superuser_may_terminate() {
    let stack = Stack::start_with(&["--queue", "busy"]).await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("t", "true", "idle").await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let other = stack.user("mallory", false);
    let (status, _, body) = stack
        .request(
            "POST",
            &format!("executabletaskinstances/{uuid}/terminate/"),
            &[("Authorization", &format!("Token {other}"))],
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({"detail": "You do not have permission to perform this action."})
    );
    // Wrong class in the path: not found.
    let (status, _) = stack
        .post_json(
            &format!("containertaskinstances/{uuid}/terminate/"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = stack
        .post_json("executabletaskinstances/not-a-uuid/terminate/", &json!({}))
        .await;
    assert_eq!(status, 404);
}
