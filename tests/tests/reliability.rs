//! The guarantees of DESIGN.md under real failures: executors killed with SIGKILL, a
//! redelivered dispatch, retries and time limits, NATS and PostgreSQL restarted under
//! load, two schedulers at once. Each test causes the failure for real and prints what it
//! measured (docs/reliability.md records the figures).

use saltant_tests::{Class, Options, Stack, eventually, processes_of_job, psql};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
const FAST: &[(&str, &str)] = &[
    ("SALTANT_SCHEDULER__LOST_CHECK_EVERY_SECS", "1"),
    ("SALTANT_SCHEDULER__SWEEP_EVERY_SECS", "1"),
    ("SALTANT_SCHEDULER__RESUBMIT_AFTER_SECS", "3"),
    ("SALTANT_SCHEDULER__RETRY_BACKOFF_SECS", "1"),
    ("SALTANT_BUS__DISPATCH_ACK_WAIT_SECS", "3"),
];

#[tokio::test]
async fn killed_executor_instances_end_within_the_bound_and_nothing_reruns() {
    let stack = Stack::start_opts(Options {
        all_args: &["--queue", "elsewhere"],
        env: FAST,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (quick, q, marker) = stack.marking_type("quick", "kq").await;
    let long = stack
        .another_executable("long", "sleep 600", 1, &[quick])
        .await;
    let env = [
        ("SALTANT_EXECUTOR__ID", "victim"),
        ("SALTANT_EXECUTOR__SLOTS", "8"),
    ];
    let mut victim = stack.spawn_with_env(&["executor", "--queue", "kq"], &env, "victim.log");

    let mut quick_ones = Vec::new();
    for _ in 0..3 {
        quick_ones.push(stack.create(Class::Executable, quick, q, json!({})).await);
    }
    for u in &quick_ones {
        stack
            .wait_state(u, "successful", Duration::from_secs(30))
            .await;
    }
    let mut long_ones = Vec::new();
    for _ in 0..3 {
        long_ones.push(stack.create(Class::Executable, long, q, json!({})).await);
    }
    for u in &long_ones {
        stack
            .wait_state(u, "running", Duration::from_secs(30))
            .await;
    }
    // A live executor whose heartbeat this version cannot read (a newer one, say) must
    // not stop the lost check for the others: kept alive through the wait.
    let (js, names) = stack.bus().await;
    let beats = js
        .get_key_value(names.executors_bucket())
        .await
        .expect("executors bucket");
    let newer = tokio::spawn(async move {
        for _ in 0..60 {
            beats
                .put("from-a-newer-version", r#"{"v":99}"#.into())
                .await
                .expect("put heartbeat");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    victim.kill().expect("SIGKILL the executor");
    victim.wait().expect("reap");
    let killed_at = Instant::now();
    for u in &long_ones {
        let done = stack.wait_state(u, "failed", Duration::from_secs(60)).await;
        assert!(done["datetime_finished"].is_string());
    }
    newer.abort();
    let took = killed_at.elapsed();
    println!("kill -9 → all lost instances failed in {took:?}");
    assert_eq!(
        stack.count("SELECT count(*) FROM task_instances WHERE state = 'running'"),
        0
    );
    let reason = psql(
        &stack.database_url(),
        &format!(
            "SELECT reason FROM task_instances WHERE uuid = '{}'",
            long_ones[0]
        ),
    );
    assert!(
        reason.contains("victim") && reason.contains("no heartbeat"),
        "{reason}"
    );

    // The executor comes back with the same id: it kills the process groups it left
    // behind, and the redelivered dispatches (ack wait 3 s) are claimed already: skipped.
    let mut back = stack.spawn_with_env(&["executor", "--queue", "kq"], &env, "back.log");
    eventually(
        Duration::from_secs(20),
        "the orphan processes to be killed",
        || async {
            long_ones
                .iter()
                .all(|u| processes_of_job(u).is_empty())
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "redeliveries to be skipped",
        || async {
            let log = std::fs::read_to_string(stack.dir.join("back.log")).unwrap_or_default();
            (log.matches("already claimed").count() >= long_ones.len()).then_some(())
        },
    )
    .await;
    let _ = back.kill();
    let _ = back.wait();
    // Succeeded instances never ran again, and every attempt ran at most once.
    assert_eq!(Stack::runs(&marker).len(), 3);
    assert_eq!(stack.attempts_run_twice(), 0);
    for u in &long_ones {
        assert_eq!(stack.history(u).last().map(String::as_str), Some("failed"));
    }
}

#[tokio::test]
async fn failed_attempts_are_retried_per_policy_and_late_events_are_fenced() {
    let stack = Stack::start_opts(Options {
        env: FAST,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q, flag) = stack.flaky_on_queue("flaky", "rq").await;
    let uuid = stack
        .create(Class::Executable, ty, q, json!({"max_attempts": 3}))
        .await;
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(60))
        .await;
    let attempt = psql(
        &stack.database_url(),
        &format!("SELECT attempt FROM task_instances WHERE uuid = '{uuid}'"),
    );
    assert_eq!(attempt.trim(), "2");
    let history = psql(
        &stack.database_url(),
        &format!(
            "SELECT attempt || ':' || state FROM task_instance_history WHERE instance_uuid = '{uuid}' ORDER BY at, id"
        ),
    );
    for step in [
        "1:running",
        "1:failed",
        "2:published",
        "2:running",
        "2:successful",
    ] {
        assert!(
            history.lines().any(|l| l == step),
            "{step} missing in {history}"
        );
    }

    // Without max_attempts: the default (1), failed is final.
    std::fs::remove_file(&flag).expect("reset flag");
    let once = stack.create(Class::Executable, ty, q, json!({})).await;
    stack
        .wait_state(&once, "failed", Duration::from_secs(30))
        .await;

    // A late event of attempt 1 (a slow executor) cannot overwrite attempt 2's outcome.
    let (js, names) = stack.bus().await;
    let queue = saltant_core::QueueName::parse("rq").expect("queue");
    let mut late = saltant_bus::Event::new(
        uuid.parse().expect("uuid"),
        queue.clone(),
        1,
        saltant_core::State::Failed,
    );
    late.reason = Some("late report of attempt 1".into());
    late.executor = Some("slow-executor".into());
    let stored = js
        .publish(
            names.event(&queue, late.uuid, "slow-executor"),
            late.encode(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    // The scheduler has handled the late event once its consumer's ack floor passes it.
    let durable = names.scheduler_events();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(&durable.stream)
        .await
        .expect("events stream")
        .get_consumer(durable.name)
        .await
        .expect("scheduler's consumer");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = consumer.info().await.expect("consumer info");
        if info.ack_floor.stream_sequence >= stored.sequence {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the late event was never handled: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, now) = stack.get(&format!("executabletaskinstances/{uuid}/")).await;
    assert_eq!(now["state"], "successful", "{now}");

    // Nor can its late files: a manifest of attempt 1, where this version and older ones
    // put it, is not the instance's results (attempt 2 counts).
    let store = js
        .get_object_store(names.results_bucket())
        .await
        .expect("results bucket");
    let id: uuid::Uuid = uuid.parse().expect("uuid");
    let late = saltant_bus::ResultsManifest {
        v: saltant_bus::WIRE_VERSION,
        uuid: id,
        attempt: 1,
        executor: "slow-executor".into(),
        files: vec![saltant_bus::ResultFile {
            name: "results/late.txt".into(),
            size: 4,
            object: format!("{id}/1/results/late.txt"),
            digest: None,
        }],
        incomplete: None,
    };
    for name in [
        saltant_bus::ResultsManifest::object_name(id, 1),
        saltant_bus::ResultsManifest::legacy_object_name(id),
    ] {
        store
            .put(name.as_str(), &mut late.encode().as_ref())
            .await
            .expect("store a late manifest");
    }
    let (status, results) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
    assert_eq!(status, 200, "{results}");
    assert_ne!(results["attempt"], 1, "{results}");
    assert!(
        !results.to_string().contains("late.txt"),
        "a late attempt's files were served: {results}"
    );
}

#[tokio::test]
async fn run_and_queue_time_outs_fail_the_instance() {
    let stack = Stack::start_opts(Options {
        all_args: &["--queue", "tq"],
        env: FAST,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("sleepy", "sleep 600", "tq").await;
    let uuid = stack
        .create(Class::Executable, ty, q, json!({"run_timeout_secs": 1}))
        .await;
    stack
        .wait_state(&uuid, "failed", Duration::from_secs(30))
        .await;
    let reason = psql(
        &stack.database_url(),
        &format!("SELECT reason FROM task_instances WHERE uuid = '{uuid}'"),
    );
    assert_eq!(reason.trim(), "timed out after 1 s");
    assert!(processes_of_job(&uuid).is_empty());

    // Nobody serves "idle": the queue time-out fails it; an executor arriving later
    // does not start it.
    let (ity, iq) = stack
        .executable_on_queue("idle-task", "sh -c 'echo ran'", "idle")
        .await;
    let waiting = stack
        .create(
            Class::Executable,
            ity,
            iq,
            json!({"queue_timeout_secs": 1, "max_attempts": 5}),
        )
        .await;
    stack
        .wait_state(&waiting, "failed", Duration::from_secs(30))
        .await;
    let reason = psql(
        &stack.database_url(),
        &format!("SELECT reason FROM task_instances WHERE uuid = '{waiting}'"),
    );
    assert_eq!(reason.trim(), "not started within its queue time-out");
    let mut late = stack.spawn(&["executor", "--queue", "idle"], "late.log");
    eventually(
        Duration::from_secs(20),
        "the late executor to skip it",
        || async {
            let log = std::fs::read_to_string(stack.dir.join("late.log")).unwrap_or_default();
            log.contains("queue time-out passed before start")
                .then_some(())
        },
    )
    .await;
    let _ = late.kill();
    let _ = late.wait();
    assert!(!stack.history(&waiting).iter().any(|s| s == "running"));
    // Bad values are refused like any field.
    let (status, body) = stack
        .post_json(
            "executabletaskinstances/",
            &json!({"task_type": ty, "task_queue": q, "max_attempts": 0, "run_timeout_secs": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["max_attempts"].is_array() && body["run_timeout_secs"].is_array(),
        "{body}"
    );
}

/// A stack whose only executor serves another queue, and an instance of a marking type
/// `name` on `queue`, published and waiting: (stack, uuid, marker file).
async fn published_without_executor(name: &str, queue: &str) -> (Stack, String, PathBuf) {
    let stack = Stack::start_opts(Options {
        all_args: &["--queue", "busy"],
        env: FAST,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q, marker) = stack.marking_type(name, queue).await;
    let uuid = stack.create(Class::Executable, ty, q, json!({})).await;
    stack
        .wait_state(&uuid, "published", Duration::from_secs(20))
        .await;
    (stack, uuid, marker)
}

#[tokio::test]
async fn a_dispatch_delivered_three_times_runs_once() {
    let (stack, uuid, marker) = published_without_executor("once", "dq").await;
    // Copy the scheduler's dispatch twice more (new message ids: not deduplicated).
    let (js, names) = stack.bus().await;
    let queue = saltant_core::QueueName::parse("dq").expect("queue");
    let stream = js
        .get_stream(names.dispatch_stream())
        .await
        .expect("stream");
    let original = stream
        .get_last_raw_message_by_subject(&names.dispatch(&queue))
        .await
        .expect("the dispatch");
    for copy in 0..2 {
        let publish = async_nats::jetstream::message::PublishMessage::build()
            .payload(original.payload.clone())
            .message_id(format!("{uuid}.copy{copy}"));
        js.send_publish(names.dispatch(&queue), publish)
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    // Two executors compete for the three copies.
    let mut a = stack.spawn(&["executor", "--queue", "dq"], "a.log");
    let mut b = stack.spawn(&["executor", "--queue", "dq"], "b.log");
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(30))
        .await;
    eventually(
        Duration::from_secs(20),
        "every copy to be consumed",
        || async {
            let info = js
                .get_stream(names.dispatch_stream())
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .state
                .messages;
            (info == 0).then_some(())
        },
    )
    .await;
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
    let runs = Stack::runs(&marker);
    assert_eq!(runs.len(), 1, "ran {} times", runs.len());
}

/// An executor that claimed an attempt and died before reporting it running: the next
/// executor to get the dispatch finds the claim held by a lost executor and reports the
/// attempt failed (nothing else would, as no running event named the lost executor).
#[tokio::test]
async fn an_attempt_claimed_by_a_lost_executor_is_reported_failed_by_the_next() {
    let (stack, uuid, marker) = published_without_executor("claimed", "lq").await;
    // The claim of an executor that is gone: no heartbeat under its name.
    let (js, names) = stack.bus().await;
    let queue = saltant_core::QueueName::parse("lq").expect("queue");
    let claims = js
        .get_key_value(names.claims_bucket())
        .await
        .expect("claims bucket");
    let id: uuid::Uuid = uuid.parse().expect("uuid");
    claims
        .create(
            names.claim_key(&queue, id, 1),
            json!({"executor": "vanished-1", "started_at": "2026-01-01T00:00:00Z"})
                .to_string()
                .into(),
        )
        .await
        .expect("claim");
    let mut executor = stack.spawn(&["executor", "--queue", "lq"], "lq.log");
    stack
        .wait_state(&uuid, "failed", Duration::from_secs(30))
        .await;
    let _ = executor.kill();
    let _ = executor.wait();
    let reason = psql(
        &stack.database_url(),
        &format!("SELECT reason FROM task_instances WHERE uuid = '{uuid}'"),
    );
    assert_eq!(
        reason.trim(),
        "executor vanished-1 was lost while it held the attempt"
    );
    assert!(Stack::runs(&marker).is_empty(), "the claimed attempt ran");
}

#[tokio::test]
async fn instances_of_clients_that_hang_up_are_submitted_at_once() {
    // The sweep would submit a committed row the bus never saw only after 10 minutes here:
    // every row must be submitted by its own request, even when the client is gone.
    let stack = Stack::start_opts(Options {
        env: &[("SALTANT_SCHEDULER__RESUBMIT_AFTER_SECS", "600")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("noop", "true", "hangup").await;
    let body = json!({"task_type": ty, "task_queue": q}).to_string();
    let addr = stack
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_owned();
    let request = format!(
        "POST /api/executabletaskinstances/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        stack.auth(),
        body.len()
    );
    // Clients that hang up at every moment of the request, from at once to 20 ms later.
    let n = 200u64;
    for i in 0..n {
        use tokio::io::AsyncWriteExt;
        let mut conn = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        conn.write_all(request.as_bytes()).await.expect("send");
        tokio::time::sleep(Duration::from_micros(100 * i)).await;
        drop(conn);
    }
    let created = eventually(Duration::from_secs(10), "creates to settle", || async {
        let a = stack.count("SELECT count(*) FROM task_instances");
        tokio::time::sleep(Duration::from_millis(500)).await;
        (a == stack.count("SELECT count(*) FROM task_instances")).then_some(a)
    })
    .await;
    println!("{created} of {n} hung-up requests created an instance");
    assert!(created > 0, "no request got as far as its insert");
    eventually(
        Duration::from_secs(30),
        "every committed instance to run",
        || async {
            let waiting =
                stack.count("SELECT count(*) FROM task_instances WHERE state <> 'successful'");
            (waiting == 0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_sweep_submits_a_row_the_bus_missed_with_its_trace_and_attempt_id() {
    use futures::StreamExt;
    let stack = Stack::start_opts(Options {
        env: FAST,
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("noop", "true", "swept").await;
    let first = stack.create(Class::Executable, ty, q, json!({})).await;
    stack
        .wait_state(&first, "successful", Duration::from_secs(30))
        .await;
    // Every publish on the submit subject, as the stream receives it.
    let nats = async_nats::connect(std::env::var("SALTANT_TEST_NATS_URL").expect("nats"))
        .await
        .expect("connect");
    let names = saltant_bus::Names::new(&stack.prefix).expect("names");
    let mut submissions = nats.subscribe(names.submit()).await.expect("subscribe");
    nats.flush().await.expect("flush");
    // A committed row the bus never saw (the api died between its commit and its publish):
    // a copy of the first instance, made an hour ago and still `created`.
    let missed = uuid::Uuid::new_v4();
    psql(
        &stack.database_url(),
        &format!(
            "INSERT INTO task_instances (uuid, kind, name, user_id, task_queue_id, \
             executable_task_type_id, arguments, spec, queue_name, datetime_created) \
             SELECT '{missed}', kind, name, user_id, task_queue_id, executable_task_type_id, \
             arguments, spec, queue_name, now() - interval '1 hour' \
             FROM task_instances WHERE uuid = '{first}'"
        ),
    );
    let swept = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(m) = submissions.next().await {
            if saltant_bus::Submission::decode(&m.payload).is_ok_and(|s| s.uuid == missed) {
                return m;
            }
        }
        panic!("subscription ended");
    })
    .await
    .expect("the sweep submits the missed row");
    let headers = swept.headers.expect("headers");
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    // The api's convention: one message id per instance and attempt.
    assert_eq!(header("Nats-Msg-Id"), Some(format!("{missed}.1")));
    let traceparent = header("traceparent").expect("a traceparent header");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert!(
        parts.len() == 4 && parts[1].len() == 32 && parts[2].len() == 16,
        "{traceparent}"
    );
    // Not dropped as a duplicate: it runs, once.
    stack
        .wait_state(&missed.to_string(), "successful", Duration::from_secs(30))
        .await;
    assert_eq!(stack.attempts_run_twice(), 0);
}
