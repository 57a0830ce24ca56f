//! Live tails of log files (docs/logs.md): they follow a running instance from any offset
//! and end when its output is complete; a client that reconnects with `Last-Event-ID`
//! misses nothing, also across a SIGKILLed log-collector; the output limit's truncation is
//! recorded and shown; retention deletes old output.

use saltant_tests::{Options, Sse, Stack, eventually, psql};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// Text of `output` events and the id of the last, until `end` (its data) or the stream
/// stops (`None`) — at most `max_bytes` of text if given (then the stream is dropped).
async fn read_tail(
    sse: &mut Sse,
    max_bytes: Option<usize>,
) -> (String, Option<String>, Option<Value>) {
    let (mut text, mut last_id) = (String::new(), None);
    while let Some(e) = sse.next(WAIT).await {
        match e.event.as_str() {
            "output" => {
                let v: Value = serde_json::from_str(&e.data).expect("json data");
                text.push_str(v["text"].as_str().expect("text"));
                last_id = Some(e.id.clone());
                if max_bytes.is_some_and(|m| text.len() >= m) {
                    return (text, last_id, None);
                }
            }
            "end" => return (text, last_id, serde_json::from_str(&e.data).ok()),
            "truncated" => text.push_str(&format!("[truncated {}]", e.data)),
            other => panic!("unexpected event {other}: {}", e.data),
        }
    }
    (text, last_id, None)
}

fn tail_path(uuid: &str, stream: &str) -> String {
    format!("taskinstances/{uuid}/logs/{uuid}-{stream}.txt/tail/")
}

/// `seq 1 n` as the task prints it.
fn numbers(from: u32, to: u32) -> String {
    (from..=to).map(|i| format!("{i}\n")).collect()
}

#[tokio::test]
async fn a_tail_follows_a_running_instance_and_resumes_from_any_offset() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    // 60 lines over ~3 s, with a character cut nowhere in particular.
    let (ty, q) = stack
        .executable_on_queue(
            "slow",
            "sh -c 'for i in $(seq 1 60); do echo \"line $i ✓\"; sleep 0.05; done'",
            "tq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let expected: String = (1..=60).map(|i| format!("line {i} ✓\n")).collect();

    // Started before any output: follows it live and ends when it is complete.
    let (status, sse) = stack
        .sse(&stack.token, &tail_path(&uuid, "stdout"), &[])
        .await;
    assert_eq!(status, 200);
    let (text, last_id, end) = read_tail(&mut sse.expect("stream"), None).await;
    assert_eq!(text, expected);
    assert_eq!(
        last_id.as_deref(),
        Some(expected.len().to_string().as_str())
    );
    let end = end.expect("an end event");
    assert_eq!(end, json!({"size": expected.len(), "complete": true}));
    let state = stack.wait_state(&uuid, "successful", WAIT).await;
    assert_eq!(state["state"], "successful");

    // Resumed from every kind of starting point, it gives exactly the rest.
    let cut = expected.find("line 31").expect("line 31");
    for (headers, query, from) in [
        (vec![("Last-Event-ID", cut.to_string())], "", cut),
        (vec![], "?offset=7", 7),
        (vec![], "?offset=-12", expected.len() - 12),
        (vec![], "?offset=100000", expected.len()),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = format!("{}{query}", tail_path(&uuid, "stdout"));
        let (_, sse) = stack.sse(&stack.token, &path, &headers).await;
        let (text, _, end) = read_tail(&mut sse.expect("stream"), None).await;
        let want = String::from_utf8_lossy(&expected.as_bytes()[from.min(expected.len())..]);
        assert_eq!(text, want, "{path} {headers:?}");
        assert_eq!(end.expect("end")["complete"], true);
    }
    // stderr had nothing: an empty, complete tail.
    let (_, sse) = stack
        .sse(&stack.token, &tail_path(&uuid, "stderr"), &[])
        .await;
    let (text, _, end) = read_tail(&mut sse.expect("stream"), None).await;
    assert_eq!(
        (text.as_str(), end.expect("end")["size"].as_i64()),
        ("", Some(0))
    );

    // Refusals: unknown file, attempt or instance 404; bad offsets 400.
    for (path, status) in [
        (
            format!("taskinstances/{uuid}/logs/{uuid}-stdin.txt/tail/"),
            404,
        ),
        (format!("{}?attempt=2", tail_path(&uuid, "stdout")), 404),
        (
            tail_path("00000000-0000-0000-0000-000000000000", "stdout"),
            404,
        ),
        (format!("{}?offset=x", tail_path(&uuid, "stdout")), 400),
    ] {
        let (got, _) = stack.sse(&stack.token, &path, &[]).await;
        assert_eq!(got, status, "{path}");
    }
    for bad in ["-1", "x", "18446744073709551615"] {
        let path = tail_path(&uuid, "stdout");
        let (got, body) = stack
            .sse(&stack.token, &path, &[("Last-Event-ID", bad)])
            .await;
        assert_eq!(got, 400, "Last-Event-ID {bad}: {:?}", body.err());
    }
}

#[tokio::test]
async fn a_killed_log_collector_loses_nothing_and_a_resumed_tail_misses_nothing() {
    let stack = Stack::start_opts(Options {
        no_all: true,
        ..Options::default()
    })
    .await;
    let mut api = stack.spawn(&["api"], "api.log");
    let mut scheduler = stack.spawn(&["scheduler"], "scheduler.log");
    let mut executor = stack.spawn(&["executor"], "executor.log");
    // Small batches: the kill lands in the middle of one (pulled, not yet stored).
    let small = [("SALTANT_LOG_COLLECTOR__BATCH", "20")];
    let mut collector = stack.spawn_with_env(&["log-collector"], &small, "log-collector-1.log");
    stack.wait_ready().await;
    // 300,000 numbers in 60 bursts over ~6 s.
    let (ty, q) = stack
        .executable_on_queue(
            "burst",
            "sh -c 'for i in $(seq 0 59); do seq $((i*5000+1)) $((i*5000+5000)); sleep 0.1; done'",
            "kq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let expected = numbers(1, 300_000);

    // A client reads the first 200 KB, then its connection drops.
    let (_, sse) = stack
        .sse(&stack.token, &tail_path(&uuid, "stdout"), &[])
        .await;
    let (mut text, last_id, _) = read_tail(&mut sse.expect("stream"), Some(200_000)).await;
    let last_id = last_id.expect("an id");
    // Mid-stream, the collector is stopped for 1 s (the batches it pulled meanwhile are
    // delivered, not acked), then killed; it comes back 2 s later and gets them again
    // after the consumer's 30 s ack wait, after later chunks: the stored chunks have a gap
    // until then.
    let pid = nix::unistd::Pid::from_raw(collector.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    collector.kill().expect("SIGKILL the log-collector");
    collector.wait().expect("reap");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut collector = stack.spawn_with_env(&["log-collector"], &small, "log-collector-2.log");
    // The case this test is about: later chunks stored while earlier ones wait for
    // redelivery.
    let gap = format!(
        "SELECT count(*) FILTER (WHERE n <> max_seq + 1) FROM (SELECT count(*) AS n, max(seq) AS max_seq \
         FROM task_instance_logs WHERE instance_uuid = '{uuid}') x"
    );
    eventually(
        Duration::from_secs(20),
        "a gap in the stored chunks",
        || async { (psql(&stack.database_url(), &gap).trim() == "1").then_some(()) },
    )
    .await;

    // The client reconnects with its last id and gets exactly the rest.
    let (_, sse) = stack
        .sse(
            &stack.token,
            &tail_path(&uuid, "stdout"),
            &[("Last-Event-ID", &last_id)],
        )
        .await;
    let (rest, _, end) = read_tail(&mut sse.expect("stream"), None).await;
    text.push_str(&rest);
    assert_eq!(end.expect("end")["complete"], true);
    assert!(
        text == expected,
        "the tail differs: {} bytes, {} expected",
        text.len(),
        expected.len()
    );

    // In PostgreSQL: every chunk the executor sent, once, with no gap.
    let sql = |q: &str| psql(&stack.database_url(), q).trim().to_owned();
    let sent = sql(&format!(
        "SELECT chunks FROM task_instance_log_ends WHERE instance_uuid = '{uuid}'"
    ));
    let stored = sql(&format!(
        "SELECT count(*) || ' ' || count(DISTINCT seq) || ' ' || (max(seq) + 1) \
         FROM task_instance_logs WHERE instance_uuid = '{uuid}'"
    ));
    assert_eq!(stored, format!("{sent} {sent} {sent}"));
    let (status, h, body) = stack
        .download_log(&uuid, &format!("{uuid}-stdout.txt"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-length"], expected.len().to_string().as_str());
    assert!(
        body.as_str() == Some(expected.as_str()),
        "the download differs"
    );
    for child in [&mut api, &mut scheduler, &mut executor, &mut collector] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test]
async fn output_over_the_limit_is_truncated_and_says_so() {
    let stack = Stack::start_opts(Options {
        env: &[("SALTANT_EXECUTOR__OUTPUT_MAX_BYTES", "1000")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack
        .executable_on_queue(
            "loud",
            "sh -c 'head -c 5000 /dev/zero | tr \"\\0\" y; sleep 0.2; echo over >&2'",
            "lq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack.wait_state(&uuid, "successful", WAIT).await;
    let listing = eventually(WAIT, "the end of output to be stored", || async {
        let (_, l) = stack.get(&format!("taskinstances/{uuid}/logs/")).await;
        (l["files"][0]["complete"] == true).then_some(l)
    })
    .await;
    let stdout = &listing["files"][0];
    assert_eq!(
        (stdout["size"].as_i64(), stdout["truncated_bytes"].as_i64()),
        (Some(1000), Some(4000)),
        "{listing}"
    );
    // The limit is shared by both streams: stderr, written last, kept nothing.
    assert_eq!(
        (
            listing["files"][1]["size"].as_i64(),
            listing["files"][1]["truncated_bytes"].as_i64()
        ),
        (Some(0), Some(5)),
        "{listing}"
    );
    let (status, h, body) = stack
        .download_log(&uuid, &format!("{uuid}-stdout.txt"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(h["saltant-truncated-bytes"], "4000");
    assert_eq!(body.as_str().map(str::len), Some(1000));
    let (_, sse) = stack
        .sse(&stack.token, &tail_path(&uuid, "stdout"), &[])
        .await;
    let (text, _, end) = read_tail(&mut sse.expect("stream"), None).await;
    assert_eq!(
        text,
        format!("{}[truncated {{\"dropped_bytes\":4000}}]", "y".repeat(1000))
    );
    assert_eq!(end.expect("end")["complete"], true);

    // An attempt that printed nothing is listed (its end is stored) and downloads empty.
    let (ty, q) = stack.executable_on_queue("quiet", "true", "qq").await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    assert_eq!(stack.output_of(&uuid, "stdout").await, "");
    let (_, listing) = stack.get(&format!("taskinstances/{uuid}/logs/")).await;
    assert_eq!(listing["files"][0]["size"], 0, "{listing}");
    assert_eq!(listing["files"][1]["complete"], true, "{listing}");
}

#[tokio::test]
async fn output_of_instances_finished_longer_ago_than_the_retention_is_deleted() {
    let stack = Stack::start_opts(Options {
        env: &[
            ("SALTANT_LOG_COLLECTOR__RETENTION_SECS", "5"),
            ("SALTANT_LOG_COLLECTOR__RETENTION_EVERY_SECS", "1"),
        ],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack
        .executable_on_queue("say", "echo kept for a while", "rq")
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack.wait_state(&uuid, "successful", WAIT).await;
    let count = |table: &str| {
        stack.count(&format!(
            "SELECT count(*) FROM {table} WHERE instance_uuid = '{uuid}'"
        ))
    };
    // Stored first (the retention counts from the end of the instance)…
    eventually(
        Duration::from_secs(3),
        "the output to be stored",
        || async {
            let (_, l) = stack.get(&format!("taskinstances/{uuid}/logs/")).await;
            (l["files"][0]["size"] == "kept for a while\n".len()).then_some(())
        },
    )
    .await;
    // …then gone, with its end of output.
    eventually(
        Duration::from_secs(30),
        "the expired output to be deleted",
        || async {
            (count("task_instance_logs") == 0 && count("task_instance_log_ends") == 0).then_some(())
        },
    )
    .await;
    let (status, l) = stack.get(&format!("taskinstances/{uuid}/logs/")).await;
    assert_eq!((status, l["files"].clone()), (200, json!([])));
}

#[tokio::test]
async fn a_million_lines_are_kept_in_order_and_tailed_whole() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (ty, q) = stack
        .executable_on_queue("million", "seq 1 1000000", "mq")
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let expected = numbers(1, 1_000_000);
    let (_, sse) = stack
        .sse(&stack.token, &tail_path(&uuid, "stdout"), &[])
        .await;
    let (text, _, end) = read_tail(&mut sse.expect("stream"), None).await;
    assert_eq!(end.expect("end")["complete"], true);
    assert!(
        text == expected,
        "the tail differs: {} bytes of {}",
        text.len(),
        expected.len()
    );
    let (status, _, body) = stack
        .download_log(&uuid, &format!("{uuid}-stdout.txt"))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.as_str() == Some(expected.as_str()),
        "the download differs"
    );
}

#[tokio::test]
async fn a_tail_waits_for_a_chunk_stored_late_and_never_splits_a_character() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    // ✓ is E2 9C 93: its first two bytes and its last are written 0.3 s apart, so they
    // travel in different chunks.
    let (ty, q) = stack
        .executable_on_queue(
            "cut",
            "sh -c 'printf \"a \\342\\234\"; sleep 0.3; printf \"\\223 b\\n\"'",
            "cq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let (_, sse) = stack
        .sse(&stack.token, &tail_path(&uuid, "stdout"), &[])
        .await;
    let mut sse = sse.expect("stream");
    let mut texts: Vec<(String, String)> = Vec::new();
    while let Some(e) = sse.next(WAIT).await {
        if e.event == "end" {
            break;
        }
        let v: Value = serde_json::from_str(&e.data).expect("json");
        texts.push((e.id.clone(), v["text"].as_str().expect("text").to_owned()));
    }
    let whole: String = texts.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(whole, "a ✓ b\n");
    assert!(
        texts.iter().all(|(_, t)| !t.contains('\u{fffd}')),
        "{texts:?}"
    );
    // The first event stops before the cut character: its id is the offset of ✓.
    assert_eq!(texts[0], ("2".to_owned(), "a ".to_owned()), "{texts:?}");

    // A gap: chunks 0 and 2 of a made-up attempt 2 are stored, 1 is not yet.
    let sql = |q: &str| psql(&stack.database_url(), q);
    sql(&format!(
        "UPDATE task_instances SET attempt = 2 WHERE uuid = '{uuid}'; \
         INSERT INTO task_instance_logs (instance_uuid, attempt, seq, stream, data) VALUES \
         ('{uuid}', 2, 0, 'stdout', 'one\n'::bytea), ('{uuid}', 2, 2, 'stdout', 'three\n'::bytea); \
         INSERT INTO task_instance_log_ends (instance_uuid, attempt, chunks) VALUES ('{uuid}', 2, 3)"
    ));
    let path = format!("{}?attempt=2", tail_path(&uuid, "stdout"));
    let (_, sse) = stack.sse(&stack.token, &path, &[]).await;
    let mut sse = sse.expect("stream");
    let first = sse.next(WAIT).await.expect("the first chunk");
    assert_eq!((first.event.as_str(), first.id.as_str()), ("output", "4"));
    // Nothing past the gap while it lasts…
    assert!(
        sse.next(Duration::from_secs(3)).await.is_none(),
        "read past a gap"
    );
    // …then the late chunk, and the rest, in order.
    sql(&format!(
        "INSERT INTO task_instance_logs (instance_uuid, attempt, seq, stream, data) VALUES \
         ('{uuid}', 2, 1, 'stdout', 'two\n'::bytea)"
    ));
    let (text, _, end) = read_tail(&mut sse, None).await;
    assert_eq!(text, "two\nthree\n");
    assert_eq!(end.expect("end"), json!({"size": 14, "complete": true}));
}
