//! NATS and PostgreSQL restarted under load, and two schedulers at once: every instance the
//! api answered 201 for reaches a final state, and none runs twice.

use saltant_tests::{Options, Stack, psql};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const FAST: &[(&str, &str)] = &[
    ("SALTANT_SCHEDULER__LOST_CHECK_EVERY_SECS", "1"),
    ("SALTANT_SCHEDULER__SWEEP_EVERY_SECS", "1"),
    ("SALTANT_SCHEDULER__RESUBMIT_AFTER_SECS", "3"),
    ("SALTANT_EXECUTOR__SLOTS", "8"),
];

/// Posts `n` instances from `workers` concurrent clients; returns every answer's status
/// and body. `progress` counts answers as they come.
async fn burst(
    stack: &Stack,
    ty: i64,
    q: i64,
    n: usize,
    workers: usize,
    progress: Arc<AtomicUsize>,
) -> Vec<(u16, serde_json::Value)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let http = stack.http.clone();
        let url = format!("{}/executabletaskinstances/", stack.url);
        let auth = stack.auth();
        let next = next.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let r = http
                    .post(&url)
                    .header("Authorization", &auth)
                    .json(&json!({"task_type": ty, "task_queue": q}))
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await;
                let answer = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.json().await.unwrap_or(serde_json::Value::Null))
                    }
                    Err(e) => (0, json!(e.to_string())),
                };
                progress.fetch_add(1, Ordering::SeqCst);
                out.push(answer);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    all
}

async fn wait_all_final(stack: &Stack, n: i64, timeout: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let done = stack.count("SELECT count(*) FROM task_instances WHERE state IN ('successful', 'failed', 'terminated')",
        );
        if done >= n {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let states = psql(
        &stack.database_url(),
        "SELECT state, attempt, count(*) FROM task_instances GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let log = stack.log();
    let tail: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(60)
        .collect();
    panic!(
        "not all {n} instances finished within {timeout:?}:\n{states}\nwarnings:\n{}",
        tail.join("\n")
    );
}

/// The marker file has one line per run: `n` lines, all different.
/// Once `answers` counts `after`, a server goes down (`toggle(false)`) for `pause`, then
/// comes back (`toggle(true)`).
async fn outage(
    answers: &AtomicUsize,
    after: usize,
    pause: Duration,
    mut toggle: impl FnMut(bool),
) {
    while answers.load(Ordering::SeqCst) < after {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    toggle(false);
    tokio::time::sleep(pause).await;
    toggle(true);
}

fn assert_ran_once(marker: &std::path::Path, n: usize) {
    let mut lines = Stack::runs(marker);
    assert_eq!(lines.len(), n, "runs");
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), n, "an instance ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_during_a_burst_of_1000_loses_nothing() {
    let mut stack = Stack::start_opts(Options {
        env: FAST,
        own_nats: true,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q, marker) = stack.marking_type("mark", "nq").await;
    let mut nats = stack.nats.take().expect("own nats");
    let progress = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // After 300 answers the broker is killed, and restarted 2 s later, while the burst
    // goes on and the first instances are being dispatched and run.
    let restart = outage(&progress, 300, Duration::from_secs(2), |up| {
        if up { nats.up() } else { nats.down() }
    });
    let (answers, ()) = tokio::join!(burst(&stack, ty, q, 1000, 8, progress.clone()), restart);
    let ok = answers.iter().filter(|(s, _)| *s == 201).count();
    println!("burst: {ok}/1000 answered 201 in {:?}", started.elapsed());
    assert_eq!(ok, 1000, "{:?}", answers.iter().find(|(s, _)| *s != 201));
    let took = wait_all_final(&stack, 1000, Duration::from_secs(180)).await;
    println!("1000/1000 final {took:?} after the burst");
    assert_eq!(
        stack.count("SELECT count(*) FROM task_instances WHERE state = 'successful'"),
        1000
    );
    assert_ran_once(&marker, 1000);
    assert_eq!(stack.attempts_run_twice(), 0);
    drop(nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_while_the_api_answers_loses_nothing() {
    let mut stack = Stack::start_opts(Options {
        env: FAST,
        own_nats: true,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("noop", "true", "nq").await;
    stack.nats.as_mut().expect("own nats").down();
    // The api still answers 201: the row is the outbox; the sweep submits it later.
    let answers = burst(&stack, ty, q, 20, 4, Arc::new(AtomicUsize::new(0))).await;
    let ok = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(ok, 20, "{:?}", answers.iter().find(|(s, _)| *s != 201));
    stack.nats.as_mut().expect("own nats").up();
    let took = wait_all_final(&stack, 20, Duration::from_secs(120)).await;
    println!("NATS down during 20 creates: all final {took:?} after it came back");
    assert_eq!(stack.attempts_run_twice(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_answers_503_and_loses_nothing() {
    let stack = Stack::start_opts(Options {
        env: FAST,
        own_postgres: true,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("noop", "true", "pq").await;
    let progress = Arc::new(AtomicUsize::new(0));
    let pg = stack.postgres.as_ref().expect("own postgres");
    let cut = outage(&progress, 100, Duration::from_secs(3), |up| {
        if up { pg.up() } else { pg.down() }
    });
    // Enough requests that the burst outlasts a slow shutdown of PostgreSQL (its shutdown
    // checkpoint on a loaded machine): 400 could all be answered before it stopped.
    let (answers, ()) = tokio::join!(burst(&stack, ty, q, 1500, 4, progress.clone()), cut);
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let unavailable: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    let other: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != 201 && *s != 503)
        .collect();
    println!(
        "PostgreSQL restart: {created} created, {} answered 503",
        unavailable.len()
    );
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert!(
        !unavailable.is_empty(),
        "the restart happened while posting"
    );
    for (_, body) in &unavailable {
        assert_eq!(
            body,
            &json!({"detail": "Service temporarily unavailable, try again later."})
        );
    }
    let took = wait_all_final(&stack, created as i64, Duration::from_secs(120)).await;
    println!("after the PostgreSQL restart: {created}/{created} final in {took:?}");
    // A 503 is an unknown outcome only if the database died between its commit and its
    // answer: then the instance exists (whole) and runs like the others.
    let rows = stack.count("SELECT count(*) FROM task_instances");
    assert!(
        rows >= created as i64 && rows <= (created + unavailable.len()) as i64,
        "{rows} rows for {created} created and {} unavailable",
        unavailable.len()
    );
    wait_all_final(&stack, rows, Duration::from_secs(60)).await;
    assert_eq!(stack.attempts_run_twice(), 0);
}

#[tokio::test]
async fn two_schedulers_handle_every_instance_once() {
    // Both replicas log each batch they handle, as JSON lines.
    let env = [
        FAST,
        &[
            ("SALTANT_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,saltant_scheduler=debug"),
        ],
    ]
    .concat();
    let stack = Stack::start_opts(Options {
        env: &env,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let mut second = stack.spawn_with_env(&["scheduler"], &env, "scheduler2.log");
    let (ty, q, marker) = stack.marking_type("mark", "sq").await;
    let answers = burst(&stack, ty, q, 300, 4, Arc::new(AtomicUsize::new(0))).await;
    assert!(answers.iter().all(|(s, _)| *s == 201));
    let took = wait_all_final(&stack, 300, Duration::from_secs(120)).await;
    println!("two schedulers: 300 final in {took:?}");
    let _ = second.kill();
    let _ = second.wait();
    assert_ran_once(&marker, 300);
    assert_eq!(stack.attempts_run_twice(), 0);
    // Both replicas took their share of the submissions and of the events.
    let first = stack.log();
    let second = std::fs::read_to_string(stack.dir.join("scheduler2.log")).unwrap_or_default();
    for (what, field) in [
        ("dispatched submissions", "submissions"),
        ("recorded events", "events"),
    ] {
        let (a, b) = (handled(&first, what, field), handled(&second, what, field));
        println!("{what}: first replica {a}, second replica {b}");
        assert!(a > 0 && b > 0, "{what}: {a} and {b}");
    }
}

/// The sum of `field` over the JSON log lines whose message is `message`.
fn handled(log: &str, message: &str, field: &str) -> u64 {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .filter_map(|l| l["fields"][field].as_u64())
        .sum()
}
