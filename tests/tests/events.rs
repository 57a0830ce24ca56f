//! Status events for subscribers (docs/events.md): the example subscriber in `examples/`
//! (plain async-nats) and the SSE endpoints see an instance's states in order, replay from
//! a sequence number, a time or `Last-Event-ID`, and keep private queues' events to their
//! owners.

use saltant_tests::{Sse, Stack, required_env};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const LIFE: [&str; 4] = ["created", "published", "running", "successful"];
const WAIT: Duration = Duration::from_secs(60);

/// Starts the example subscriber with `args`; returns it and its stdout lines (read on a
/// thread), once it says it follows.
fn example_subscriber(
    stack: &Stack,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let nats = std::env::var("SALTANT_TEST_NATS_URL").expect("nats url");
    let mut child = Command::new(required_env("SALTANT_TEST_EXAMPLE_EVENTS"))
        .args(["--url", &nats, "--prefix", &stack.prefix])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example subscriber");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    err.read_line(&mut first).expect("read its first line");
    assert!(first.starts_with("following "), "{first}");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Data of the events of a stream that are bus events (no `event:` name), as JSON.
fn states(events: &[eventsource_stream::Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| data(e)["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn data(e: &eventsource_stream::Event) -> Value {
    serde_json::from_str(&e.data).unwrap_or(Value::Null)
}

/// Reads events until `n` bus events came (or `WAIT` passes).
async fn take(sse: &mut Sse, n: usize) -> Vec<eventsource_stream::Event> {
    let mut out = Vec::new();
    while out
        .iter()
        .filter(|e: &&eventsource_stream::Event| e.event == "message")
        .count()
        < n
    {
        match sse.next(WAIT).await {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

#[tokio::test]
async fn subscribers_and_streams_see_every_state_in_order() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (ty, q) = stack
        .executable_on_queue("hello", "echo hello", "ev-q@lab")
        .await;

    // Followers started before the instance exists.
    let (mut example, lines) =
        example_subscriber(&stack, &["--queue", "ev-q@lab", "--until-final"]);
    let (status, everything) = stack.sse(&stack.token, "events/", &[]).await;
    assert_eq!(status, 200);
    let mut everything = everything.expect("stream");
    let (_, queue_stream) = stack
        .sse(&stack.token, &format!("taskqueues/{q}/events/"), &[])
        .await;
    let mut queue_stream = queue_stream.expect("stream");

    let before = chrono_now();
    let uuid = stack.run_executable(ty, q, json!({})).await;

    // The example subscriber: the four states of the instance, in order, then it exits.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let line = lines
            .recv_timeout(WAIT)
            .expect("an event line from the example");
        let v: Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(v["event"]["uuid"], uuid.as_str(), "{v}");
        assert_eq!(v["event"]["v"], 1, "{v}");
        seen.push(v);
    }
    let got: Vec<&str> = seen
        .iter()
        .map(|v| v["event"]["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(got, LIFE);
    assert_eq!(seen[3]["event"]["reason"], "exited with code 0");
    assert_eq!(seen[3]["event"]["exit_code"], 0);
    let seqs: Vec<u64> = seen
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(example.wait().expect("example exits").success());

    // The SSE streams: the same events, ids being the stream's sequence numbers.
    for stream in [&mut everything, &mut queue_stream] {
        let events = take(stream, 4).await;
        assert_eq!(states(&events), LIFE);
        let ids: Vec<u64> = events.iter().map(|e| e.id.parse().expect("id")).collect();
        assert_eq!(ids, seqs);
    }

    // Per instance: its history from the start, then `end` (it is final).
    let (_, one) = stack
        .sse(&stack.token, &format!("taskinstances/{uuid}/events/"), &[])
        .await;
    let events = one.expect("stream").until("end", WAIT).await;
    assert_eq!(states(&events), LIFE);
    let end = events.last().expect("an end");
    assert_eq!(end.event, "end");
    assert_eq!(data(end)["state"], "successful");

    // Replays: after Last-Event-ID, from a sequence number, from a time.
    let last_id = seqs[1].to_string();
    let (_, resumed) = stack
        .sse(
            &stack.token,
            &format!("taskinstances/{uuid}/events/"),
            &[("Last-Event-ID", &last_id)],
        )
        .await;
    let events = resumed.expect("stream").until("end", WAIT).await;
    assert_eq!(states(&events), ["running", "successful"]);
    let (_, from_seq) = stack
        .sse(
            &stack.token,
            &format!("taskqueues/{q}/events/?from_seq={}", seqs[2]),
            &[],
        )
        .await;
    assert_eq!(
        states(&take(&mut from_seq.expect("stream"), 2).await),
        ["running", "successful"]
    );
    let since = urlencode(&before);
    let (_, from_time) = stack
        .sse(&stack.token, &format!("events/?since={since}"), &[])
        .await;
    assert_eq!(
        states(&take(&mut from_time.expect("stream"), 4).await),
        LIFE
    );
    let (_, replayed) = example_subscriber(
        &stack,
        &[
            "--instance",
            &uuid,
            "--from-seq",
            &seqs[0].to_string(),
            "--until-final",
        ],
    );
    let again: Vec<String> = (0..4)
        .map(|_| replayed.recv_timeout(WAIT).expect("a replayed event"))
        .collect();
    assert!(again[3].contains("\"successful\""), "{again:?}");

    // Bad starting points are 400s naming the field, in the original's error shape.
    for (path, headers, field) in [
        ("events/?since=yesterday", vec![], "since"),
        ("events/?from_seq=0", vec![], "from_seq"),
        ("events/", vec![("Last-Event-ID", "x")], "Last-Event-ID"),
        (
            "events/",
            vec![("Last-Event-ID", "18446744073709551615")],
            "Last-Event-ID",
        ),
    ] {
        let (status, body) = stack.sse(&stack.token, path, &headers).await;
        assert_eq!(status, 400, "{path}");
        let body: Value = serde_json::from_str(&body.err().unwrap_or_default()).expect("json");
        assert!(body[field][0].is_string(), "{body}");
    }
    let (status, _) = stack
        .sse(&stack.token, "taskinstances/not-a-uuid/events/", &[])
        .await;
    assert_eq!(status, 404);
    let (status, _) = stack
        .sse(&stack.token, "taskqueues/999999/events/", &[])
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn private_queues_events_are_for_their_owners() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (ty, queues) = stack
        .executable_on_queues("quiet", "true", &["open".into(), "closed".into()])
        .await;
    let (open, closed) = (queues[0], queues[1]);
    let (status, _, q) = stack
        .request(
            "PATCH",
            &format!("taskqueues/{closed}/"),
            &[("Authorization", &stack.auth())],
            Some(("application/json", br#"{"private": true}"#.to_vec())),
        )
        .await;
    assert_eq!(status, 200, "{q}");
    let bob = stack.user("bob", false);

    // Bob may not follow the private queue, nor its instances.
    let (status, body) = stack
        .sse(&bob, &format!("taskqueues/{closed}/events/"), &[])
        .await;
    assert_eq!(status, 403);
    let body: Value = serde_json::from_str(&body.err().unwrap_or_default()).expect("json");
    assert_eq!(
        body["detail"],
        "You do not have permission to perform this action."
    );
    let hidden = stack.run_executable(ty, closed, json!({})).await;
    let (status, _) = stack
        .sse(&bob, &format!("taskinstances/{hidden}/events/"), &[])
        .await;
    assert_eq!(status, 403);
    let (status, _) = stack.sse("0".repeat(40).as_str(), "events/", &[]).await;
    assert_eq!(status, 403, "a bad token");

    // Everything, for bob: the open queue's instance, never the closed one's.
    let (_, all) = stack.sse(&bob, "events/?from_seq=1", &[]).await;
    let mut all = all.expect("stream");
    let shown = stack.run_executable(ty, open, json!({})).await;
    let events = take(&mut all, 4).await;
    for e in &events {
        assert_eq!(data(e)["uuid"], shown.as_str(), "bob saw {}", e.data);
    }
    assert_eq!(states(&events), LIFE);
    // The owner sees both.
    let (_, mine) = stack
        .sse(
            &stack.token,
            &format!("taskqueues/{closed}/events/?from_seq=1"),
            &[],
        )
        .await;
    let events = take(&mut mine.expect("stream"), 4).await;
    assert!(events.iter().all(|e| data(e)["uuid"] == hidden.as_str()));
    assert_eq!(states(&events), LIFE);
}

/// Now, as RFC 3339 (a second back, for clock granularity).
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 1;
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn open_streams_do_not_hold_up_a_shutdown() {
    let mut stack = Stack::start().await;
    stack.wait_ready().await;
    let (_, events) = stack.sse(&stack.token, "events/", &[]).await;
    let mut events = events.expect("stream");
    let (ty, q) = stack.executable_on_queue("long", "sleep 600", "sq").await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let tail = format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt/tail/");
    let (_, tail) = stack.sse(&stack.token, &tail, &[]).await;
    let mut tail = tail.expect("stream");
    stack.wait_state(&uuid, "running", WAIT).await;
    // SIGTERM: the streams end, and the process exits within its usual grace period
    // (the executor's 8 s for the running task), not when the clients hang up.
    let (took, ok) = stack.terminate(Duration::from_secs(60));
    assert!(
        ok,
        "saltant all did not exit cleanly within 60 s ({took:?})"
    );
    while events.next(WAIT).await.is_some() {}
    while tail.next(WAIT).await.is_some() {}
}

#[tokio::test]
async fn an_instances_stream_stays_open_through_a_retry() {
    let stack = saltant_tests::Stack::start_opts(saltant_tests::Options {
        env: &[
            ("SALTANT_SCHEDULER__SWEEP_EVERY_SECS", "1"),
            ("SALTANT_SCHEDULER__RETRY_BACKOFF_SECS", "1"),
        ],
        ..Default::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q, _) = stack.flaky_on_queue("flaky", "rq").await;
    let uuid = stack
        .create(
            saltant_tests::Class::Executable,
            ty,
            q,
            json!({"max_attempts": 2}),
        )
        .await;
    let (_, one) = stack
        .sse(&stack.token, &format!("taskinstances/{uuid}/events/"), &[])
        .await;
    let events = one.expect("stream").until("end", WAIT).await;
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| {
            format!(
                "{}:{}",
                data(e)["attempt"],
                data(e)["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "1:created",
            "1:published",
            "1:running",
            "1:failed",
            "2:published",
            "2:running",
            "2:successful"
        ]
    );
    let end = events.last().expect("end");
    assert_eq!(
        (end.event.as_str(), data(end)["state"].as_str()),
        ("end", Some("successful"))
    );
}
