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
