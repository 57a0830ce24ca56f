//! Docker container tasks against the real engine that `deploy/test` starts, with an
//! image built FROM scratch (busybox-static): arguments, environment, logs and results
//! folders, output, results through the api, termination, and no container left behind
//! — including after the executor is killed with SIGKILL.

use saltant_tests::{Class, Stack, busybox_image, containers_with_label, eventually, merged};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A container type on a new queue; returns (type id, queue id).
async fn container_on_queue(
    stack: &Stack,
    name: &str,
    command: &str,
    extra: Value,
    queue: &str,
) -> (i64, i64) {
    let fields = json!({
        "name": name,
        "command_to_run": command,
        "container_image": busybox_image(),
        "container_type": "docker",
    });
    let (ty, queues) = stack
        .type_on_queues(Class::Container, &merged(fields, &extra), &[queue.into()])
        .await;
    (ty, queues[0])
}

/// Creates an instance of the container type and waits until its container exists;
/// returns the uuid and the container's label.
async fn running_container(stack: &Stack, ty: i64, q: i64) -> (String, String) {
    let (uuid, _) = stack
        .run_until(
            Class::Container,
            (ty, q),
            json!({}),
            "running",
            Duration::from_secs(60),
        )
        .await;
    let label = format!("io.saltant.instance={uuid}");
    eventually(
        Duration::from_secs(10),
        "the container to exist",
        || async { (!containers_with_label(&label).is_empty()).then_some(()) },
    )
    .await;
    (uuid, label)
}

/// Any executor credential may write the results bucket (docs/security.md): what another
/// writer puts there in place of an attempt's manifest or files is never served. The
/// manifest must have the digest the attempt's final event recorded, and each file the
/// digest and size its manifest gives.
#[tokio::test]
async fn results_altered_by_another_writer_of_the_bucket_are_not_served() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let script = "echo data > /results/out.txt; echo nested > /results/n.txt";
    let (ty, q) = container_on_queue(
        &stack,
        "ctr-kept",
        &format!("sh -c '{script}'"),
        json!({"results_path": "/results"}),
        "dq-kept",
    )
    .await;
    let (uuid, _) = stack
        .run_until(
            Class::Container,
            (ty, q),
            json!({}),
            "successful",
            Duration::from_secs(60),
        )
        .await;
    let download = |name: &'static str| {
        let url = format!("{}/taskinstances/{uuid}/results/results/{name}", stack.url);
        let auth = stack.auth();
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .header("Authorization", auth)
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            (status, r.bytes().await.map(|b| b.to_vec()))
        }
    };
    let (status, body) = download("n.txt").await;
    assert_eq!((status, body.expect("body")), (200, b"nested\n".to_vec()));
    // Another reporter ended the attempt first (as the lost-executor check does for an
    // executor cut off that finishes later): the files its own executor's final event
    // named are still the attempt's.
    saltant_tests::psql(
        &stack.database_url(),
        &format!(
            "INSERT INTO task_instance_history (instance_uuid, attempt, state, at, reason) \
             VALUES ('{uuid}', 1, 'failed', now(), 'lost'); \
             UPDATE task_instances SET state = 'failed' WHERE uuid = '{uuid}'"
        ),
    );
    let (status, listing) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(
        listing["files"].as_array().map(Vec::len),
        Some(2),
        "{listing}"
    );

    let nats = async_nats::connect(saltant_tests::required_env("SALTANT_TEST_NATS_URL"))
        .await
        .expect("connect to nats");
    let names = saltant_bus::Names::new(&stack.prefix).expect("prefix");
    let store = async_nats::jetstream::new(nats)
        .get_object_store(names.results_bucket())
        .await
        .expect("results bucket");
    let put = |name: String, bytes: Vec<u8>| {
        let store = &store;
        async move {
            store
                .put(name.as_str(), &mut bytes.as_slice())
                .await
                .expect("write the results bucket");
        }
    };
    // Same size, other bytes: the response ends short of its length, nothing of it whole.
    put(format!("{uuid}/1/results/n.txt"), b"NESTED\n".to_vec()).await;
    let (status, body) = download("n.txt").await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "an altered file was served whole: {body:?}");
    // Another size: refused before anything is sent.
    put(
        format!("{uuid}/1/results/out.txt"),
        b"forged content\n".to_vec(),
    )
    .await;
    let (status, _) = download("out.txt").await;
    assert_eq!(status, 500);
    // A manifest of the writer's own: listing and downloads are refused.
    let forged = saltant_bus::ResultsManifest {
        v: saltant_bus::WIRE_VERSION,
        uuid: uuid.parse().expect("uuid"),
        attempt: 1,
        executor: "intruder".into(),
        files: vec![saltant_bus::ResultFile {
            name: "results/evil.html".into(),
            size: 5,
            object: format!("{uuid}/1/results/evil.html"),
            digest: None,
        }],
        incomplete: None,
    };
    put(format!("{uuid}/1/results/evil.html"), b"<xss>".to_vec()).await;
    put(
        saltant_bus::ResultsManifest::object_name(forged.uuid, 1),
        forged.encode().to_vec(),
    )
    .await;
    let (status, listing) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
    assert_eq!(status, 500, "{listing}");
    let (status, _) = download("evil.html").await;
    assert_eq!(status, 500);
    // An instance finished before digests were recorded (migration 0010 marks its history
    // 'unverified') is served as stored, as before.
    saltant_tests::psql(
        &stack.database_url(),
        &format!(
            "UPDATE task_instance_history SET results_digest = 'unverified' \
             WHERE instance_uuid = '{uuid}'"
        ),
    );
    let (status, listing) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
    assert_eq!(
        (status, listing["files"][0]["name"].clone()),
        (200, json!("results/evil.html"))
    );
}

#[tokio::test]
async fn container_task_runs_with_arguments_env_logs_and_results() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let script = r#"echo "args=$0"; echo "job=$JOB_UUID home=$HOME"; echo data > /results/out.txt; mkdir -p /results/sub; echo nested > /results/sub/n.txt; echo mine > /logs/mylog.txt; echo oops >&2"#;
    let (ty, q) = container_on_queue(
        &stack,
        "ctr",
        &format!("sh -c '{script}'"),
        json!({
            "environment_variables": ["HOME"],
            "required_arguments": ["word", "n"],
            "required_arguments_default_values": {"n": 1},
            "logs_path": "/logs",
            "results_path": "/results",
        }),
        "dq",
    )
    .await;
    let uuid = stack
        .create(
            Class::Container,
            ty,
            q,
            json!({"arguments": {"word": "it's \"quoted\" $(not run)"}}),
        )
        .await;
    let done = stack
        .wait_state_of(
            Class::Container,
            &uuid,
            "successful",
            Duration::from_secs(60),
        )
        .await;
    assert!(done["datetime_finished"].is_string());

    let stdout = std::fs::read_to_string(
        stack
            .dir
            .join("logs")
            .join(&uuid)
            .join(format!("{uuid}-stdout.txt")),
    )
    .expect("stdout file");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        stdout,
        format!(
            "args={{\"word\": \"it's \\\"quoted\\\" $(not run)\", \"n\": 1}}\njob={uuid} home={home}\n"
        )
    );
    let stderr = std::fs::read_to_string(
        stack
            .dir
            .join("logs")
            .join(&uuid)
            .join(format!("{uuid}-stderr.txt")),
    )
    .expect("stderr file");
    assert_eq!(stderr, "oops\n");
    // The same through the logs API, once the log-collector has stored it.
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        let path = format!("taskinstances/{uuid}/logs/{uuid}-{stream}.txt");
        eventually(Duration::from_secs(30), "the container's logs", || async {
            let auth = stack.auth();
            let (status, _, body) = stack
                .request("GET", &path, &[("Authorization", &auth)], None)
                .await;
            (status == 200 && body == Value::String(text.clone())).then_some(())
        })
        .await;
    }

    // Results through the api.
    let (status, listing) = stack.get(&format!("taskinstances/{uuid}/results/")).await;
    assert_eq!(status, 200, "{listing}");
    let names: Vec<&str> = listing["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["logs/mylog.txt", "results/out.txt", "results/sub/n.txt"],
        "{listing}"
    );
    let (status, _, body) = stack
        .request(
            "GET",
            &format!("taskinstances/{uuid}/results/results/sub/n.txt"),
            &[("Authorization", &stack.auth())],
            None,
        )
        .await;
    assert_eq!((status, body), (200, Value::String("nested\n".into())));
    let (status, _, _) = stack
        .request(
            "GET",
            &format!("taskinstances/{uuid}/results/results/missing.txt"),
            &[("Authorization", &stack.auth())],
            None,
        )
        .await;
    assert_eq!(status, 404);

    // No container left behind.
    assert!(containers_with_label(&format!("io.saltant.instance={uuid}")).is_empty());

    // A failing container: exit code and reason.
    let (fty, fq) =
        container_on_queue(&stack, "ctr-fail", "sh -c 'exit 3'", json!({}), "dq2").await;
    let (uuid, _) = stack
        .run_until(
            Class::Container,
            (fty, fq),
            json!({}),
            "failed",
            Duration::from_secs(60),
        )
        .await;
    assert!(containers_with_label(&format!("io.saltant.instance={uuid}")).is_empty());
    // A missing image fails with a reason instead of hanging.
    let (status, missing) = stack
        .post_json("containertasktypes/", &json!({"name": "nope", "command_to_run": "true", "container_image": "saltant-test/does-not-exist:1", "container_type": "docker"}))
        .await;
    assert_eq!(status, 201, "{missing}");
    let (status, wl) = stack
        .post_json(
            "taskwhitelists/",
            &json!({"name": "nope-wl", "whitelisted_container_task_types": [missing["id"]]}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, nq) = stack
        .post_json(
            "taskqueues/",
            &json!({"name": "nope-q", "whitelists": [wl["id"]]}),
        )
        .await;
    let uuid = stack
        .create(
            Class::Container,
            missing["id"].as_i64().expect("id"),
            nq["id"].as_i64().expect("id"),
            json!({}),
        )
        .await;
    stack
        .wait_state_of(Class::Container, &uuid, "failed", Duration::from_secs(60))
        .await;
}

#[tokio::test]
async fn terminating_a_running_container_removes_it() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (ty, q) = container_on_queue(&stack, "sleeper", "sleep 600", json!({}), "tq").await;
    let (uuid, label) = running_container(&stack, ty, q).await;
    let started = Instant::now();
    stack.terminate_instance(Class::Container, &uuid).await;
    stack
        .wait_state_of(
            Class::Container,
            &uuid,
            "terminated",
            Duration::from_secs(15),
        )
        .await;
    let took = started.elapsed();
    println!("terminate → terminated in {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        containers_with_label(&label).is_empty(),
        "container left behind"
    );
}

#[tokio::test]
async fn a_killed_executor_leaves_no_orphan_container() {
    // The stack's own executor serves another queue; ours runs the container.
    let stack = Stack::start_with(&["--queue", "elsewhere"]).await;
    stack.wait_ready().await;
    let (ty, q) = container_on_queue(&stack, "orphan", "sleep 600", json!({}), "oq").await;
    let env = [("SALTANT_EXECUTOR__ID", "exec-orphan-test")];
    let mut first = stack.spawn_with_env(&["executor", "--queue", "oq"], &env, "first.log");
    let (uuid, label) = running_container(&stack, ty, q).await;
    // SIGKILL: no chance to clean up.
    first.kill().expect("kill executor");
    first.wait().expect("reap executor");
    assert!(
        !containers_with_label(&label).is_empty(),
        "the container outlives its executor"
    );

    let mut second = stack.spawn_with_env(&["executor", "--queue", "oq"], &env, "second.log");
    let removed = eventually(
        Duration::from_secs(30),
        "the orphan to be removed",
        || async {
            containers_with_label(&label)
                .is_empty()
                .then_some(Instant::now())
        },
    )
    .await;
    let _ = removed;
    let _ = second.kill();
    let _ = second.wait();
    let log = std::fs::read_to_string(stack.dir.join("second.log")).unwrap_or_default();
    assert!(
        log.contains("removing orphan container") && log.contains(&uuid),
        "the restarted executor removed it: {log}"
    );
}

#[tokio::test]
async fn an_image_removed_after_use_is_looked_up_again() {
    // The executor remembers images it has seen (no inspect per container); one removed
    // behind its back must not be taken for present.
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let tag = format!("saltant-test/cache-{}:1", &stack.prefix);
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker(&["tag", &busybox_image(), &tag]);
    let (ty, q) = container_on_queue(
        &stack,
        "cached",
        "true",
        json!({"container_image": tag}),
        "cache",
    )
    .await;
    // Present, gone (the next instance fails on the missing image, there being no
    // registry to pull from, not on a create that trusted the cache), back again.
    for (step, state) in [
        ("present", "successful"),
        ("rmi", "failed"),
        ("tag", "successful"),
    ] {
        match step {
            "rmi" => docker(&["rmi", &tag]),
            "tag" => docker(&["tag", &busybox_image(), &tag]),
            _ => {}
        }
        let (uuid, body) = stack
            .run_until(
                Class::Container,
                (ty, q),
                json!({}),
                state,
                Duration::from_secs(120),
            )
            .await;
        let pull_failed = stack.count(&format!(
            "SELECT count(*) FROM task_instances WHERE uuid = '{uuid}' AND reason LIKE 'pull %'"
        ));
        assert_eq!(pull_failed, i64::from(state == "failed"), "{step}: {body}");
    }
    docker(&["rmi", &tag]);
}
