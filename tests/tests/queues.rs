//! Executors serving many queues (docs/bus.md, "Taking work from many queues"): loaded
//! queues share the slots, idle queues cost none, and a killed executor's queue keeps being
//! served by the others. Correctness, not speed: the benchmarks measure the rates.

use saltant_tests::{Options, Stack, eventually, psql};
use serde_json::json;
use std::time::{Duration, Instant};

/// An executable type on `n` new public queues named `<prefix>-<i>`: (type id, queue ids).
async fn type_on_queues(stack: &Stack, command: &str, prefix: &str, n: usize) -> (i64, Vec<i64>) {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    stack
        .executable_on_queues(&format!("{prefix}-type"), command, &names)
        .await
}

fn done_on(stack: &Stack, queue: i64) -> i64 {
    stack.count(&format!(
        "SELECT count(*) FROM task_instances WHERE task_queue_id = {queue} AND state = 'successful'"
    ))
}

#[tokio::test]
async fn two_loaded_queues_share_the_slots() {
    // Both queues hold their whole load, the first one's older, before an executor serving
    // both starts: served in arrival order, the second would wait for the first.
    let stack = Stack::start_with(&["--queue", "elsewhere"]).await;
    stack.wait_ready().await;
    let (ty, queues) = type_on_queues(&stack, "true", "load", 2).await;
    let (a, b) = (queues[0], queues[1]);
    let n = 150;
    for q in [a, b] {
        for _ in 0..n {
            stack.run_executable(ty, q, json!({})).await;
        }
    }
    let mut executor = stack.spawn(
        &["executor", "--queue", "load-0", "--queue", "load-1"],
        "executor.log",
    );
    // When the first queue is through, the other one has progressed with it.
    let (first, other) = eventually(
        Duration::from_secs(120),
        "one loaded queue to finish",
        || async {
            let (da, db) = (done_on(&stack, a), done_on(&stack, b));
            (da >= n || db >= n).then_some((da.max(db), da.min(db)))
        },
    )
    .await;
    println!("first queue {first}/{n} done, the other {other}/{n}");
    assert!(
        other * 2 >= first,
        "the other loaded queue fell behind: {other} of {n} when the first had {first}"
    );
    eventually(Duration::from_secs(60), "both queues to finish", || async {
        (done_on(&stack, a) == n && done_on(&stack, b) == n).then_some(())
    })
    .await;
    let _ = executor.kill();
    let _ = executor.wait();
}

#[tokio::test]
async fn a_loaded_queue_among_many_idle_ones_is_served() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    // Twenty queues that had work (so every executor knows them) and are idle now.
    let idle = 20;
    let (ty, queues) = type_on_queues(&stack, "true", "idle", idle + 1).await;
    let (loaded, idle_queues) = queues.split_last().expect("queues");
    let mut earlier = Vec::new();
    for q in idle_queues {
        earlier.push(stack.run_executable(ty, *q, json!({})).await);
    }
    for u in &earlier {
        stack
            .wait_state(u, "successful", Duration::from_secs(60))
            .await;
    }
    let n = 300;
    let start = Instant::now();
    for _ in 0..n {
        stack.run_executable(ty, *loaded, json!({})).await;
    }
    // The starving design ran about one instance per second here (one fetch expiry per
    // turn of the idle queues): 300 would take minutes.
    eventually(
        Duration::from_secs(60),
        "the loaded queue to finish",
        || async { (done_on(&stack, *loaded) == n).then_some(()) },
    )
    .await;
    println!(
        "{n} instances on one queue among {idle} idle ones: {:?} from the first create",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_killed_executors_queue_keeps_being_served_by_the_others() {
    let stack = Stack::start_opts(Options {
        all_args: &["--queue", "elsewhere"],
        env: &[("SALTANT_SCHEDULER__LOST_CHECK_EVERY_SECS", "1")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (long, queues) = type_on_queues(&stack, "sleep 600", "kq", 1).await;
    let q = queues[0];
    let quick = stack.another_executable("quick", "true", 1, &[long]).await;
    let on = |executor: &str| {
        stack.count(&format!(
            "SELECT count(*) FROM task_instances WHERE state = 'running' AND executor = '{executor}'"
        ))
    };
    // Two long instances fill the victim's two slots, two more run on the survivor.
    let mut victim = stack.spawn_with_env(
        &["executor", "--queue", "kq-0", "--slots", "2"],
        &[("SALTANT_EXECUTOR__ID", "victim")],
        "victim.log",
    );
    for _ in 0..2 {
        stack.run_executable(long, q, json!({})).await;
    }
    eventually(
        Duration::from_secs(30),
        "the victim to run two long instances",
        || async { (on("victim") == 2).then_some(()) },
    )
    .await;
    let mut survivor = stack.spawn_with_env(
        &["executor", "--queue", "kq-0", "--slots", "4"],
        &[("SALTANT_EXECUTOR__ID", "survivor")],
        "survivor.log",
    );
    for _ in 0..2 {
        stack.run_executable(long, q, json!({})).await;
    }
    eventually(
        Duration::from_secs(30),
        "the survivor to run two long instances",
        || async { (on("survivor") == 2).then_some(()) },
    )
    .await;
    victim.kill().expect("SIGKILL the victim");
    victim.wait().expect("reap");
    let killed = Instant::now();

    // New work on the queue goes on on the survivor's free slots, well within the
    // heartbeat bound (15 s) that the victim's own instances wait for.
    let mut quick_ones = Vec::new();
    for _ in 0..10 {
        quick_ones.push(stack.run_executable(quick, q, json!({})).await);
    }
    eventually(
        Duration::from_secs(15),
        "the new instances to run on the survivor",
        || async {
            let done = stack.count(&format!(
                "SELECT count(*) FROM task_instances WHERE executable_task_type_id = {quick} AND state = 'successful'"
            ));
            (done == quick_ones.len() as i64).then_some(())
        },
    )
    .await;
    println!(
        "10 instances served by the survivor {:?} after the kill",
        killed.elapsed()
    );
    let by_survivor = stack.count(&format!(
        "SELECT count(*) FROM task_instances WHERE executable_task_type_id = {quick} AND executor = 'survivor'"
    ));
    assert_eq!(by_survivor, 10);
    // The victim's instances end within the heartbeat bound (15 s + checks).
    eventually(
        Duration::from_secs(60),
        "the victim's instances to fail",
        || async {
            let failed = psql(
                &stack.database_url(),
                "SELECT count(*) FROM task_instances WHERE state = 'failed' AND reason LIKE '%victim%'",
            );
            (failed.trim() == "2").then_some(())
        },
    )
    .await;
    assert_eq!(stack.attempts_run_twice(), 0);
    let _ = survivor.kill();
    let _ = survivor.wait();
}

#[tokio::test]
async fn more_than_a_thousand_queues_are_served() {
    // NATS 2.15 allows 1,000 consumers on a stream that does not set its own limit, and
    // each queue has one: the 1,001st queue's work used to wait forever.
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let n = 1005;
    let (ty, queues) = type_on_queues(&stack, "true", "many", n).await;
    for chunk in queues.chunks(16) {
        futures::future::join_all(
            chunk
                .iter()
                .map(|q| stack.run_executable(ty, *q, json!({}))),
        )
        .await;
    }
    eventually(
        Duration::from_secs(180),
        "an instance on each of 1,005 queues to succeed",
        || async {
            let done =
                stack.count("SELECT count(*) FROM task_instances WHERE state = 'successful'");
            (done == n as i64).then_some(())
        },
    )
    .await;
}
