//! Every byte of output is kept: through the logs stream into PostgreSQL, and when the
//! stream is full (the log-collector lags behind a small `logs_max_bytes`), executors back
//! off; chunks still refused are reported and the capture files go to the results bucket.

use saltant_tests::{Class, Options, Stack, eventually, psql};
use serde_json::json;
use std::time::Duration;

/// Runs `command` as a new executable type on `queue`; the instance's uuid once successful.
async fn run_to_success(stack: &Stack, name: &str, command: &str, queue: &str) -> String {
    let (ty, q) = stack.executable_on_queue(name, command, queue).await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(180))
        .await;
    uuid
}

/// A stack whose services the test starts: the api (first) and the scheduler, running.
async fn api_and_scheduler(env: &[(&str, &str)]) -> (Stack, Vec<std::process::Child>) {
    let stack = Stack::start_opts(Options {
        env,
        no_all: true,
        ..Options::default()
    })
    .await;
    let children = vec![
        stack.spawn(&["api"], "api.log"),
        stack.spawn(&["scheduler"], "scheduler.log"),
    ];
    (stack, children)
}

#[tokio::test]
async fn output_larger_than_the_logs_stream_is_kept_whole() {
    let stack = Stack::start_opts(Options {
        // 1 MiB of stream for 8 MiB of output.
        env: &[("SALTANT_BUS__LOGS_MAX_BYTES", "1048576")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let size: i64 = 8 * 1024 * 1024;
    let uuid = run_to_success(
        &stack,
        "chatty",
        &format!("sh -c 'yes 0123456789abcdef0123456789abcdef | head -c {size}'"),
        "lq",
    )
    .await;
    let stored = eventually(Duration::from_secs(60), "the log-collector to catch up", || async {
        let n: i64 = psql(
            &stack.database_url(),
            &format!("SELECT COALESCE(sum(length(data)), 0) FROM task_instance_logs WHERE instance_uuid = '{uuid}'"),
        )
        .trim()
        .parse()
        .ok()?;
        let (_, listing) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
        let capture = listing["files"].as_array().and_then(|files| {
            files
                .iter()
                .find(|f| f["name"] == format!("logs/{uuid}-stdout.txt"))
                .and_then(|f| f["size"].as_i64())
        });
        (n == size || capture == Some(size)).then_some((n, capture))
    })
    .await;
    println!(
        "8 MiB through a 1 MiB logs stream: {} bytes in PostgreSQL, capture in results: {:?}",
        stored.0, stored.1
    );
    // Whatever reached PostgreSQL is in order with no gap.
    let gaps: i64 = psql(
        &stack.database_url(),
        &format!(
            "SELECT count(*) FROM (SELECT seq - lag(seq) OVER (ORDER BY seq) AS d FROM task_instance_logs \
             WHERE instance_uuid = '{uuid}') x WHERE d <> 1"
        ),
    )
    .trim()
    .parse()
    .expect("count");
    if stored.0 == size {
        assert_eq!(gaps, 0, "chunks missing in PostgreSQL");
    }
}

/// No log-collector drains a 40 KiB logs stream: it fills up with the first chunk of
/// 128 KiB of output, the executor's retries of the others are refused, they count as lost,
/// and the instance's capture files are stored as results instead, whole.
#[tokio::test]
async fn output_the_logs_stream_refuses_is_stored_as_results() {
    let stream_bytes = 40 * 1024;
    let env = [("SALTANT_BUS__LOGS_MAX_BYTES", "40960")];
    let (stack, mut children) = api_and_scheduler(&env).await;
    // Plain text (no colours), to read its report below.
    children.push(stack.spawn_with_env(
        &["executor", "--queue", "lostq"],
        &[("NO_COLOR", "1")],
        "executor.log",
    ));
    stack.wait_ready().await;
    // One write of 128 KiB: a few 32 KiB chunks, each retried for ~4.5 s before it is lost.
    let size = 128 * 1024;
    let uuid = run_to_success(
        &stack,
        "refused",
        &format!("sh -c 'yes 0123456789abcdef | dd bs={size} count=1 iflag=fullblock status=none'"),
        "lostq",
    )
    .await;

    // The stream is full of what it took: nothing drained it.
    let (js, names) = stack.bus().await;
    let mut logs = js
        .get_stream(names.logs_stream())
        .await
        .expect("logs stream");
    let held = logs.info().await.expect("logs stream info").state.bytes;
    assert!(
        held > 0 && held <= stream_bytes,
        "the logs stream holds {held} bytes"
    );

    // Uploads finish before the final event: the captures are listed once it is final.
    let (status, listing) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
    assert_eq!(status, 200, "{listing}");
    let files = listing["files"].as_array().expect("files");
    let size_of = |name: String| {
        files
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["size"].as_u64())
    };
    assert_eq!(
        size_of(format!("logs/{uuid}-stdout.txt")),
        Some(size),
        "{listing}"
    );
    assert_eq!(
        size_of(format!("logs/{uuid}-stderr.txt")),
        Some(0),
        "{listing}"
    );
    let downloaded = get(
        &stack,
        Some(&stack.token),
        &format!("taskinstances/{uuid}/results/logs/{uuid}-stdout.txt"),
        &[],
    )
    .await;
    assert_eq!(downloaded.status(), 200);
    let body = downloaded.bytes().await.expect("capture body");
    let expected: Vec<u8> = b"0123456789abcdef\n"
        .iter()
        .copied()
        .cycle()
        .take(size as usize)
        .collect();
    assert_eq!(body.len(), expected.len());
    assert!(
        body == expected,
        "the stored capture differs from the output"
    );

    let log = std::fs::read_to_string(stack.dir.join("executor.log")).expect("executor log");
    let lost: u64 = log
        .lines()
        .filter(|l| l.contains("output chunks could not be stored on the bus"))
        .find_map(|l| l.rsplit_once("lost=")?.1.trim().parse().ok())
        .unwrap_or_else(|| panic!("the executor did not report lost chunks:\n{log}"));
    assert!(lost > 0);
    println!(
        "{size} bytes through a {stream_bytes}-byte logs stream: {lost} chunks lost, {held} bytes on the bus, the whole capture in the results"
    );
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What `LOGS_COMMAND` prints on stdout: non-ASCII text, a line of 100 KB (several
/// chunks), more text.
fn logs_stdout() -> Vec<u8> {
    let mut out = "héllo wörld ✓ ünïcødé\n".as_bytes().to_vec();
    out.extend(std::iter::repeat_n(b'x', 100 * 1024));
    out.extend("\nend — ü\n".as_bytes());
    out
}

const LOGS_STDERR: &str = "err ✗ ß\nzwei 二\n";
const LOGS_COMMAND: &str = "sh -c 'printf \"héllo wörld ✓ ünïcødé\\n\"; head -c 102400 /dev/zero | tr \"\\0\" x; printf \"\\nend — ü\\n\"; printf \"err ✗ ß\\nzwei 二\\n\" >&2'";

/// GET under `/api/`, with a token and extra headers.
async fn get(
    stack: &Stack,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = stack.http.get(format!("{}/{path}", stack.url));
    if let Some(t) = token {
        rb = rb.header("Authorization", format!("Token {t}"));
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("send request")
}

/// [`get`]: status, headers, body bytes.
async fn fetch(
    stack: &Stack,
    token: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = get(stack, token, path, headers).await;
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    (status, h, r.bytes().await.expect("body").to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Waits until the listing shows these sizes (stdout, stderr) for attempt 1.
async fn wait_listed(stack: &Stack, uuid: &str, sizes: (usize, usize)) -> serde_json::Value {
    eventually(Duration::from_secs(60), "the logs to be stored", || async {
        let (status, listing) = stack.get(&format!("taskinstances/{uuid}/logs/")).await;
        assert_eq!(status, 200, "{listing}");
        let files = listing["files"].as_array()?;
        let size = |i: usize| files.get(i).and_then(|f| f["size"].as_u64());
        (size(0) == Some(sizes.0 as u64) && size(1) == Some(sizes.1 as u64)).then_some(listing)
    })
    .await
}

#[tokio::test]
async fn logs_are_listed_and_downloaded_whole_or_by_range() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let uuid = run_to_success(&stack, "printer", LOGS_COMMAND, "pq").await;
    let out = logs_stdout();
    let listing = wait_listed(&stack, &uuid, (out.len(), LOGS_STDERR.len())).await;
    let files = listing["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{listing}");
    for (f, stream) in files.iter().zip(["stdout", "stderr"]) {
        let name = format!("{uuid}-{stream}.txt");
        assert_eq!(f["name"], name.as_str(), "{listing}");
        assert_eq!(
            (f["attempt"].as_i64(), f["stream"].as_str()),
            (Some(1), Some(stream))
        );
        assert!(
            f["last_modified"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{listing}"
        );
        assert!(
            f["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/logs/{name}")))
        );
    }

    let token = stack.token.clone();
    let tok = Some(token.as_str());
    let stdout = format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt");
    for (path, expected) in [
        (stdout.clone(), out.clone()),
        (
            format!("taskinstances/{uuid}/logs/{uuid}-stderr.txt"),
            LOGS_STDERR.as_bytes().to_vec(),
        ),
        (format!("{stdout}?attempt=1"), out.clone()),
    ] {
        let (status, h, body) = fetch(&stack, tok, &path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(header(&h, "accept-ranges"), "bytes");
        assert_eq!(header(&h, "content-length"), expected.len().to_string());
        assert!(
            body == expected,
            "{path}: the download differs from the output"
        );
    }

    check_ranges(&stack, &uuid, &out).await;
    check_refusals(&stack, &uuid).await;
}

/// Single ranges (first bytes, suffix, open-ended, across every chunk boundary) answer 206
/// with exactly those bytes; past the end 416; malformed and multi-range the whole file.
async fn check_ranges(stack: &Stack, uuid: &str, out: &[u8]) {
    let tok = Some(stack.token.as_str());
    let path = format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt");
    let len = out.len();
    let lengths = psql(
        &stack.database_url(),
        &format!(
            "SELECT octet_length(data) FROM task_instance_logs WHERE instance_uuid = '{uuid}' \
             AND stream = 'stdout' ORDER BY seq"
        ),
    );
    let mut boundaries = Vec::new();
    let mut end = 0;
    for n in lengths
        .lines()
        .filter_map(|l| l.trim().parse::<usize>().ok())
    {
        end += n;
        boundaries.push(end);
    }
    boundaries.pop();
    assert!(
        !boundaries.is_empty(),
        "the 100 KB line should take several chunks"
    );
    let mut cases: Vec<(String, usize, usize)> = vec![
        ("bytes=0-9".into(), 0, 10),
        ("bytes=-100".into(), len - 100, len),
        ("bytes=100000-".into(), 100_000, len),
        (format!("bytes=5-{}", len + 1000), 5, len),
        (
            format!("bytes={}-{}", len / 4, 3 * len / 4),
            len / 4,
            3 * len / 4 + 1,
        ),
    ];
    for b in &boundaries {
        cases.push((format!("bytes={}-{}", b - 3, b + 2), b - 3, b + 3));
        cases.push((format!("bytes={b}-{b}"), *b, b + 1));
    }
    for (range, from, to) in &cases {
        let (status, h, body) = fetch(stack, tok, &path, &[("Range", range)]).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            header(&h, "content-range"),
            format!("bytes {from}-{}/{len}", to - 1)
        );
        assert_eq!(
            header(&h, "content-length"),
            (to - from).to_string(),
            "{range}"
        );
        assert!(body == out[*from..*to], "{range}: wrong bytes");
    }
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
        "bytes=-0".into(),
    ] {
        let (status, h, body) = fetch(stack, tok, &path, &[("Range", &range)]).await;
        assert_eq!(status, 416, "{range}");
        assert_eq!(
            header(&h, "content-range"),
            format!("bytes */{len}"),
            "{range}"
        );
        assert!(body.is_empty());
    }
    for range in ["bytes=abc", "bytes=9-3", "lines=0-4", "bytes=0-1,10-20"] {
        let (status, h, body) = fetch(stack, tok, &path, &[("Range", range)]).await;
        assert_eq!(status, 200, "{range}");
        assert_eq!(header(&h, "content-range"), "", "{range}");
        assert!(body == out, "{range}: not the whole file");
    }
    println!(
        "{} ranges checked over {} chunk boundaries",
        cases.len(),
        boundaries.len()
    );
}

/// Unknown files and instances are the original's 404; without credentials 403; another
/// user reads the output exactly when the REST API lets it read the instance.
async fn check_refusals(stack: &Stack, uuid: &str) {
    let tok = Some(stack.token.as_str());
    let not_found = br#"{"detail":"Not found."}"#.to_vec();
    for path in [
        format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt?attempt=2"),
        format!("taskinstances/{uuid}/logs/{uuid}-attempt2-stdout.txt"),
        format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt?attempt=x"),
        format!("taskinstances/{uuid}/logs/{uuid}-stdin.txt"),
        format!("taskinstances/{uuid}/logs/other.txt"),
        format!(
            "taskinstances/{}/logs/{}-stdout.txt",
            uuid::Uuid::nil(),
            uuid::Uuid::nil()
        ),
        format!("taskinstances/{}/logs/", uuid::Uuid::nil()),
        "taskinstances/not-a-uuid/logs/".into(),
    ] {
        let (status, _, body) = fetch(stack, tok, &path, &[]).await;
        assert_eq!((status, &body), (404, &not_found), "{path}");
    }
    let list = format!("taskinstances/{uuid}/logs/");
    let file = format!("{list}{uuid}-stdout.txt");
    for path in [&list, &file] {
        let (status, _, body) = fetch(stack, None, path, &[]).await;
        assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let other = stack.user("logreader", false);
    let (rest, _, _) = fetch(
        stack,
        Some(&other),
        &format!("executabletaskinstances/{uuid}/"),
        &[],
    )
    .await;
    for path in [&list, &file] {
        let (status, _, _) = fetch(stack, Some(&other), path, &[]).await;
        assert_eq!(
            status, rest,
            "{path}: another user, as the REST API answers it ({rest})"
        );
    }
    println!("another user: the REST API answers {rest} for the instance, so do its logs");
}

/// VmHWM (peak resident set) of a process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn a_big_log_downloads_whole_while_the_api_memory_stays_bounded() {
    let (stack, mut children) = api_and_scheduler(&[]).await;
    children.extend([
        stack.spawn(&["log-collector"], "log-collector.log"),
        stack.spawn(&["executor", "--queue", "bigq"], "executor.log"),
    ]);
    let api = children[0].id();
    stack.wait_ready().await;
    let size: usize = 20 * 1024 * 1024;
    let line = b"0123456789abcdef0123456789abcdef\n";
    let uuid = run_to_success(
        &stack,
        "big",
        &format!("sh -c 'yes 0123456789abcdef0123456789abcdef | head -c {size}'"),
        "bigq",
    )
    .await;
    wait_listed(&stack, &uuid, (size, 0)).await;
    let before = peak_rss_kb(api);
    let started = std::time::Instant::now();
    let path = format!("taskinstances/{uuid}/logs/{uuid}-stdout.txt");
    let mut r = get(&stack, Some(&stack.token), &path, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(size as u64));
    let (mut at, mut mismatch) = (0usize, None);
    while let Some(part) = r.chunk().await.expect("body part") {
        for (i, b) in part.iter().enumerate() {
            if mismatch.is_none() && *b != line[(at + i) % line.len()] {
                mismatch = Some(at + i);
            }
        }
        at += part.len();
    }
    let took = started.elapsed();
    let after = peak_rss_kb(api);
    assert_eq!(at, size, "bytes downloaded");
    assert_eq!(mismatch, None, "first differing byte");
    println!(
        "{} MiB downloaded in {took:?}; api VmHWM {before} kB before, {after} kB after (+{} kB)",
        size >> 20,
        after - before
    );
    // Holding the file would take 20 MiB more; streaming takes a few chunks.
    assert!(
        (after - before) * 1024 < size as u64,
        "the api's peak RSS grew by {} kB for a {size}-byte download",
        after - before
    );
    // Across many pages of chunks, from the middle of one to the middle of another.
    let (from, to) = (1_000_003, size - 999_997);
    let (status, _, body) = fetch(
        &stack,
        Some(&stack.token),
        &path,
        &[("Range", &format!("bytes={from}-{}", to - 1))],
    )
    .await;
    assert_eq!(status, 206);
    let expected: Vec<u8> = (from..to).map(|i| line[i % line.len()]).collect();
    assert!(body == expected, "the range in the middle differs");
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A retried instance: each attempt's files under their own names, `?attempt=` selecting
/// one, an empty stream served empty (and every range of it but a suffix 416).
#[tokio::test]
async fn each_attempt_has_its_own_log_files() {
    let stack = Stack::start_opts(Options {
        env: &[("SALTANT_SCHEDULER__RETRY_BACKOFF_SECS", "1")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let flag = stack.dir.join("retried-once");
    let command = format!(
        "sh -c 'if test -e {f}; then echo second; exit 0; fi; touch {f}; echo first; echo oops >&2; exit 1'",
        f = flag.display()
    );
    let (ty, q) = stack.executable_on_queue("twice", &command, "aq").await;
    let uuid = stack
        .create(Class::Executable, ty, q, json!({"max_attempts": 2}))
        .await;
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(60))
        .await;
    let sizes = eventually(Duration::from_secs(30), "both attempts' logs", || async {
        let (_, listing) = stack.get(&format!("taskinstances/{uuid}/logs/")).await;
        let files = listing["files"].as_array()?;
        let sizes: Vec<(String, i64, bool)> = files
            .iter()
            .map(|f| {
                let name = f["name"].as_str().unwrap_or_default().replace(&uuid, "U");
                (
                    name,
                    f["size"].as_i64().unwrap_or(-1),
                    f["last_modified"].is_null(),
                )
            })
            .collect();
        (sizes.len() == 4 && sizes[2].1 == 7).then_some(sizes)
    })
    .await;
    let expected = [
        ("U-stdout.txt", 6, false),
        ("U-stderr.txt", 5, false),
        ("U-attempt2-stdout.txt", 7, false),
        ("U-attempt2-stderr.txt", 0, true),
    ]
    .map(|(n, s, null)| (n.to_owned(), s, null));
    assert_eq!(sizes, expected);

    let tok = Some(stack.token.as_str());
    let base = format!("taskinstances/{uuid}/logs/{uuid}");
    for (path, status, body) in [
        (format!("{base}-stdout.txt"), 200, "first\n"),
        (format!("{base}-stderr.txt?attempt=1"), 200, "oops\n"),
        (format!("{base}-attempt2-stdout.txt"), 200, "second\n"),
        (format!("{base}-stdout.txt?attempt=2"), 200, "second\n"),
        (
            format!("{base}-attempt2-stdout.txt?attempt=2"),
            200,
            "second\n",
        ),
        (format!("{base}-attempt2-stderr.txt"), 200, ""),
        (
            format!("{base}-attempt2-stdout.txt?attempt=1"),
            404,
            r#"{"detail":"Not found."}"#,
        ),
        (
            format!("{base}-stdout.txt?attempt=3"),
            404,
            r#"{"detail":"Not found."}"#,
        ),
    ] {
        let (s, _, b) = fetch(&stack, tok, &path, &[]).await;
        assert_eq!(
            (s, String::from_utf8_lossy(&b).as_ref()),
            (status, body),
            "{path}"
        );
    }
    let empty = format!("{base}-attempt2-stderr.txt");
    let (s, h, _) = fetch(&stack, tok, &empty, &[("Range", "bytes=0-")]).await;
    assert_eq!((s, header(&h, "content-range")), (416, "bytes */0"));
    let (s, _, b) = fetch(&stack, tok, &empty, &[("Range", "bytes=-5")]).await;
    assert_eq!((s, b.len()), (200, 0));
}
