//! NATS decentralized auth (docs/security.md, "The bus"): every service runs with its own
//! scoped credentials against a server that trusts saltant's authority, and the broker
//! itself refuses an executor what its credentials do not grant: another queue's
//! dispatches, another executor's events and heartbeats, other clients' replies.

use saltant_bus::Names;
use saltant_bus::auth::{Authority, Grant};
use saltant_core::QueueName;
use saltant_tests::probe::Probe;
use saltant_tests::servers::Nats;
use saltant_tests::{Class, Options, Stack, eventually};
use serde_json::json;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn scoped_credentials_run_instances_and_the_broker_holds_executors_to_their_grants() {
    let dir = std::env::temp_dir().join(format!("saltant-auth-{}", uuid::Uuid::new_v4()));
    let auth_dir = dir.join("auth");
    assert!(Authority::init_dir(&auth_dir, &Names::default()).expect("authority"));
    let authority = Authority::load(&auth_dir).expect("authority");
    // Included (relative to the including file, as nats-server reads it), so that a
    // reload reads a revocation.
    let nats = Nats::start_with_config(&dir, "include \"../auth/nats-auth.conf\"\n");
    let url = nats.url();
    let stack = Stack::start_opts(Options {
        no_all: true,
        env: &[("SALTANT_NATS_URL", &url)],
        ..Options::default()
    })
    .await;
    let names = Names::new(&stack.prefix).expect("prefix");
    let creds = |file: &str, grant: Grant| {
        let path = dir.join(file);
        let text = authority.credentials(&grant, &names).expect("mint");
        std::fs::write(&path, text).expect("write credentials");
        path
    };
    let q = |name: &str| QueueName::parse(name).expect("queue");
    let executor_a = creds(
        "exec-a.creds",
        Grant::Executor {
            id: Some("exec-a".into()),
            queues: Some(vec![q("qa"), q("qa-long")]),
        },
    );
    let mut children = Vec::new();
    for (service, grant) in [
        ("scheduler", Grant::Scheduler),
        ("api", Grant::Api),
        ("log-collector", Grant::LogCollector),
    ] {
        let file = creds(&format!("{service}.creds"), grant);
        let file = file.display().to_string();
        children.push(stack.spawn_with_env(
            &[service],
            &[("SALTANT_BUS__CREDENTIALS_FILE", &file)],
            &format!("{service}.log"),
        ));
    }
    // No --queue and no executor.id: both come from the credentials.
    let file = executor_a.display().to_string();
    children.push(stack.spawn_with_env(
        &["executor"],
        &[("SALTANT_BUS__CREDENTIALS_FILE", &file)],
        "executor.log",
    ));
    stack.wait_ready().await;

    // Work runs end to end with every service on its own credentials: output reaches the
    // log-collector, and a termination reaches the executor.
    let (ty, queues) = stack
        .executable_on_queues(
            "auth-echo",
            "sh -c 'echo hello-from-the-task'",
            &["qa".to_owned(), "qb".to_owned()],
        )
        .await;
    let (qa, qb) = (queues[0], queues[1]);
    let (uuid, body) = stack
        .run_until(Class::Executable, (ty, qa), json!({}), "successful", LONG)
        .await;
    assert_eq!(body["state"], "successful", "{body}");
    eventually(LONG, "the output stored", || async {
        let out = stack.output_of(&uuid, "stdout").await;
        out.contains("hello-from-the-task").then_some(())
    })
    .await;
    let (sleeper, long_queue) = stack
        .executable_on_queues(
            "auth-sleep",
            "sh -c 'sleep 120 & wait'",
            &["qa-long".to_owned()],
        )
        .await;
    let long = stack
        .run_executable(sleeper, long_queue[0], json!({}))
        .await;
    stack
        .wait_for(Class::Executable, &long, LONG, "running", |s| {
            s == "running"
        })
        .await;
    let (status, body) = stack
        .post_json(
            &format!("executabletaskinstances/{long}/terminate/"),
            &json!({}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    stack
        .wait_state_of(Class::Executable, &long, "terminated", LONG)
        .await;

    // Queue qb has a waiting dispatch (no executor serves it), so its consumer exists.
    let waiting = stack.run_executable(ty, qb, json!({})).await;
    stack
        .wait_for(Class::Executable, &waiting, LONG, "published", |s| {
            s == "published"
        })
        .await;

    // The executor's own credentials, used by something else than saltant's executor.
    let probe = Probe::connect(&url, &executor_a, "_INBOX_exec-a").await;
    probe
        .pull_refused(&names.dispatch_stream(), "queue-qb")
        .await;
    // Nor may it read dispatches as they are published, nor other clients' replies.
    let dispatches = format!("{}.dispatch.>", stack.prefix);
    let _sub = probe.client.subscribe(dispatches.clone()).await;
    probe.refused("subscription", &dispatches).await;
    let _sub = probe.client.subscribe("_INBOX.>").await;
    probe.refused("subscription", "_INBOX.>").await;
    // It may not publish as another executor: events, output, heartbeat.
    let uuid: uuid::Uuid = waiting.parse().expect("uuid");
    let forged = names.event(&q("qa"), uuid, "exec-b");
    probe.publish_refused(&forged).await;
    let heartbeat = format!("$KV.{}.exec-b", names.executors_bucket());
    probe.publish_refused(&heartbeat).await;
    let foreign_output = names.logs("exec-a", &q("qb"), uuid);
    probe.publish_refused(&foreign_output).await;
    let other_queue = names.event(&q("qb"), uuid, "exec-a");
    probe.publish_refused(&other_queue).await;
    // What it is granted passes the broker: an event under its own id on its own queue.
    // Naming the instance of queue qb there, it is refused by the scheduler instead (the
    // instance's queue is not the event's): neither recorded nor applied, and logged.
    let mut forged = saltant_bus::Event::new(uuid, q("qa"), 1, saltant_core::State::Successful);
    forged.executor = Some("exec-a".into());
    forged.results_digest = Some(saltant_bus::digest::digest(b"a forged manifest"));
    let own = names.event(&q("qa"), uuid, "exec-a");
    probe
        .client
        .publish(own.clone(), forged.encode())
        .await
        .expect("sent");
    probe.client.flush().await.expect("flush");
    let scheduler_log = stack.dir.join("scheduler.log");
    eventually(LONG, "the scheduler to refuse the forged event", || async {
        let log = std::fs::read_to_string(&scheduler_log).unwrap_or_default();
        (log.contains("refused an event naming another queue") && log.contains(&waiting))
            .then_some(())
    })
    .await;
    assert!(
        probe.allowed(&own),
        "{:?}",
        probe.errors.lock().expect("errors")
    );
    // The instance of qb still waits for an executor of its own queue, with no trace of the
    // forged report.
    let (_, body) = stack
        .get(&format!("executabletaskinstances/{waiting}/"))
        .await;
    assert_eq!(body["state"], "published", "{body}");
    assert_eq!(
        stack.count(&format!(
            "SELECT count(*) FROM task_instance_history WHERE instance_uuid = '{waiting}' \
             AND state = 'successful'"
        )),
        0
    );

    // 6. Revoked: once the server reloads, the executor's credentials no longer connect,
    // and others still do.
    let auth = auth_dir.display().to_string();
    let revoked = stack.saltant(&[
        "admin",
        "revoke-credentials",
        "--dir",
        &auth,
        &executor_a.display().to_string(),
    ]);
    assert!(revoked.contains("revoked exec-a"), "{revoked}");
    nats.reload();
    let refused = eventually(
        Duration::from_secs(20),
        "exec-a's credentials refused",
        || async {
            let connected = async_nats::ConnectOptions::new()
                .credentials_file(&executor_a)
                .await
                .expect("read credentials")
                .connect(url.as_str())
                .await;
            connected.err().map(|e| e.to_string())
        },
    )
    .await;
    assert!(
        refused.to_lowercase().contains("authorization"),
        "{refused}"
    );
    let other = creds(
        "exec-c.creds",
        Grant::Executor {
            id: Some("exec-c".into()),
            queues: Some(vec![q("qa")]),
        },
    );
    async_nats::ConnectOptions::new()
        .credentials_file(&other)
        .await
        .expect("read credentials")
        .connect(url.as_str())
        .await
        .expect("another executor's credentials still connect");

    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
