//! Every byte of output is kept: through the logs stream into PostgreSQL, and when the
//! stream is full (the log-collector lags behind a small `logs_max_bytes`), executors back
//! off; chunks still refused are reported and the capture files go to the results bucket.

use saltant_tests::{Options, Stack, eventually, psql};
use serde_json::json;
use std::time::Duration;

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
    let (ty, q) = stack
        .executable_on_queue(
            "chatty",
            &format!("sh -c 'yes 0123456789abcdef0123456789abcdef | head -c {size}'"),
            "lq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(120))
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
    let stack = Stack::start_opts(Options {
        env: &env,
        no_all: true,
        ..Options::default()
    })
    .await;
    let mut children = vec![
        stack.spawn(&["api"], "api.log"),
        stack.spawn(&["scheduler"], "scheduler.log"),
        // Plain text (no colours), to read its report below.
        stack.spawn_with_env(
            &["executor", "--queue", "lostq"],
            &[("NO_COLOR", "1")],
            "executor.log",
        ),
    ];
    stack.wait_ready().await;
    // One write of 128 KiB: a few 32 KiB chunks, each retried for ~4.5 s before it is lost.
    let size = 128 * 1024;
    let (ty, q) = stack
        .executable_on_queue(
            "refused",
            &format!(
                "sh -c 'yes 0123456789abcdef | dd bs={size} count=1 iflag=fullblock status=none'"
            ),
            "lostq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack
        .wait_state(&uuid, "successful", Duration::from_secs(180))
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
    let downloaded = stack
        .http
        .get(format!(
            "{}/taskinstances/{uuid}/results/logs/{uuid}-stdout.txt",
            stack.url
        ))
        .header("Authorization", stack.auth())
        .send()
        .await
        .expect("download the stdout capture");
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
