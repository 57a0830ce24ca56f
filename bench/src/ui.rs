//! The web UI's pages with many instances in the database (`--only ui`): instances are
//! inserted with SQL `generate_series` (one every 30 s back in time, so the dashboard's
//! days hold their share), then each page is fetched with a signed-in session. Figures are
//! latencies seen by a client on the same machine: an upper bound of the server's time.

use crate::Report;
use crate::measure::{percentile, sorted};
use saltant_tests::{Options, Stack, psql};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "pw-of-test-user";
/// Requests per page.
const TIMES: usize = 20;

pub async fn pages(report: &mut Report, rows: i64) -> anyhow::Result<()> {
    println!("\n== web pages with {rows} instances");
    let stack = Stack::start_opts(Options {
        env: &[("RUST_LOG", "warn")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let base = stack.root();
    stack.user("bench", false);
    let (status, ty) = stack
        .post_json(
            "executabletasktypes/",
            &json!({"name": "bench-type", "command_to_run": "true"}),
        )
        .await;
    anyhow::ensure!(status == 201, "type: {ty}");
    let (status, wl) = stack
        .post_json(
            "taskwhitelists/",
            &json!({"name": "bench-wl", "whitelisted_executable_task_types": [ty["id"]]}),
        )
        .await;
    anyhow::ensure!(status == 201, "whitelist: {wl}");
    let (status, q) = stack
        .post_json(
            "taskqueues/",
            &json!({"name": "bench-queue", "whitelists": [wl["id"]]}),
        )
        .await;
    anyhow::ensure!(status == 201, "queue: {q}");
    let (status, one) = stack
        .post_json(
            "executabletaskinstances/",
            &json!({"task_type": ty["id"], "task_queue": q["id"]}),
        )
        .await;
    anyhow::ensure!(status == 201, "instance: {one}");
    let uuid = one["uuid"].as_str().unwrap_or_default().to_owned();

    // Copies of that instance: one every 30 s back in time; 1 % failed, 1 % terminated,
    // the newest 20 running, the rest successful.
    let url = stack.database_url();
    let t = Instant::now();
    psql(
        &url,
        &format!(
            "INSERT INTO task_instances (uuid, kind, name, state, user_id, task_queue_id, \
             executable_task_type_id, datetime_created, datetime_finished, arguments, spec, queue_name) \
             SELECT gen_random_uuid(), kind, 'bulk-' || (g % 1000), \
               CASE WHEN g <= 20 THEN 'running' WHEN g % 100 = 0 THEN 'failed' \
                    WHEN g % 100 = 1 THEN 'terminated' ELSE 'successful' END, \
               user_id, task_queue_id, executable_task_type_id, now() - make_interval(secs => g * 30), \
               CASE WHEN g <= 20 THEN NULL ELSE now() - make_interval(secs => g * 30 - 5) END, \
               arguments, spec, queue_name \
             FROM (SELECT * FROM task_instances WHERE uuid = '{uuid}') i, generate_series(1, {rows}) g"
        ),
    );
    psql(&url, "ANALYZE task_instances");
    println!(
        "  inserted {rows} rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (cookie, _) = stack.ui_sign_in("bench", PASSWORD).await;
    let day = (chrono::Utc::now() - chrono::Duration::days(30)).date_naive();
    let pages = [
        ("dashboard", "/".to_owned()),
        ("dashboard_30_days", "/?days=30".to_owned()),
        ("instances", "/instances/executable/".to_owned()),
        (
            "instances_failed",
            "/instances/executable/?state=failed".to_owned(),
        ),
        (
            "instances_running",
            "/instances/executable/?state=running".to_owned(),
        ),
        (
            "instances_page_100",
            "/instances/executable/?page=100".to_owned(),
        ),
        (
            "instances_of_queue",
            format!("/instances/executable/?task_queue={}", q["id"]),
        ),
        (
            "instances_of_user",
            "/instances/executable/?user__username=admin".to_owned(),
        ),
        (
            "instances_of_user_with_none",
            "/instances/executable/?user__username=bench".to_owned(),
        ),
        (
            "instances_one_day",
            format!("/instances/executable/?from={day}&to={day}"),
        ),
        (
            "instances_name_contains",
            "/instances/executable/?name__contains=bulk-999".to_owned(),
        ),
        ("instance", format!("/instances/executable/{uuid}/")),
        ("types", "/types/executable/".to_owned()),
        ("type", format!("/types/executable/{}/", ty["id"])),
        ("queue", format!("/queues/{}/", q["id"])),
        ("fleet", "/fleet/".to_owned()),
    ];
    let mut all = serde_json::Map::new();
    for (key, path) in pages {
        let mut lat = Vec::with_capacity(TIMES);
        for _ in 0..TIMES {
            let t = Instant::now();
            let r = stack
                .http
                .get(format!("{base}{path}"))
                .header("Cookie", &cookie)
                .timeout(Duration::from_secs(30))
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
            let _ = r.bytes().await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let lat = sorted(lat);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        report.add(
            &format!("ui_{key}_ms"),
            &format!("page {path}: p50 / max"),
            format!("{p50:.1} / {p99:.1} ms"),
            format!("(target ≤ 100 ms at {rows} rows)"),
            json!({"p50": p50, "max": p99}),
        );
        all.insert(
            key.to_owned(),
            json!({"path": path, "p50": p50, "max": p99}),
        );
    }
    report.json.insert("ui_pages".into(), Value::Object(all));
    Ok(())
}
