//! Executors on other hosts (docs/operations.md): a 3-node NATS JetStream cluster and three
//! executors run as containers on a private Docker network the test creates, with the
//! images `deploy/images` builds (no registry); PostgreSQL, the api, the scheduler and the
//! log-collector run on this host and reach the nodes at the addresses Docker gives them.
//! Every process runs on its own NATS credentials; executors' are minted by
//! `saltant admin executor-credentials` for their queue and id.
//!
//! Checked: work spreads over all executors; killing an executor and a NATS node mid-run
//! loses nothing; an executor cut off the network longer than the heartbeat bound has its
//! work retried elsewhere, its late report of the old attempt is rejected (fencing), and
//! it serves again once reconnected; an executor of another queue cannot take this queue's
//! work or report as another executor (the broker refuses).
//!
//! Traffic goes only to 127.0.0.1 and to the containers this test made (addresses read
//! from Docker); every wait is bounded.

use saltant_bus::Names;
use saltant_bus::auth::Authority;
use saltant_core::QueueName;
use saltant_tests::probe::Probe;
use saltant_tests::{Class, Options, Stack, eventually, psql};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);
const TAG: &str = "test";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The images, built once per test binary from the binary under test.
fn images() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = Command::new(root.join("deploy/images"))
            .args([
                "--binary",
                &saltant_tests::required_env("SALTANT_TEST_BIN"),
                "--tag",
                TAG,
                "--only",
                "saltant,nats",
            ])
            .output()
            .expect("run deploy/images");
        assert!(
            out.status.success(),
            "deploy/images: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The containers and network of one test, removed when dropped.
struct Hosts {
    id: String,
    network: String,
    dir: PathBuf,
}

impl Hosts {
    fn new(dir: &Path) -> Hosts {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let network = format!("saltant-mh-{id}");
        docker(&[
            "network",
            "create",
            "--label",
            "saltant-test=multihost",
            &network,
        ]);
        Hosts {
            id,
            network,
            dir: dir.to_owned(),
        }
    }

    fn name(&self, host: &str) -> String {
        format!("saltant-mh-{}-{host}", self.id)
    }

    /// The address Docker gave a container on the test's network.
    fn address(&self, host: &str) -> String {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network
        );
        let address = docker(&["inspect", "-f", &format, &self.name(host)]);
        assert!(
            !address.is_empty() && address != "<no value>",
            "{host} has no address (not running?): {}",
            self.logs(host)
        );
        address
    }

    /// A NATS node of the cluster `n1`..`n3`, with saltant's authority.
    fn start_nats(&self, node: &str, authority_conf: &str) {
        let conf_dir = self.dir.join(format!("nats-{node}"));
        std::fs::create_dir_all(&conf_dir).expect("nats folder");
        let routes: Vec<String> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| format!("nats://{}:6222", self.name(n)))
            .collect();
        std::fs::write(conf_dir.join("auth.conf"), authority_conf).expect("auth.conf");
        std::fs::write(
            conf_dir.join("nats.conf"),
            format!(
                "server_name: {node}\nlisten: 0.0.0.0:4222\n\
                 jetstream {{ store_dir: /data, max_file_store: 2GB }}\n\
                 cluster {{ name: saltant-mh, listen: 0.0.0.0:6222, routes: [{}] }}\n\
                 include auth.conf\n",
                routes.join(", ")
            ),
        )
        .expect("nats.conf");
        docker(&[
            "run",
            "-d",
            "--name",
            &self.name(node),
            "--network",
            &self.network,
            "--label",
            "saltant-test=multihost",
            "-v",
            &format!("{}:/etc/nats:ro", conf_dir.display()),
            &format!("saltant-nats:{TAG}"),
            "-c",
            "/etc/nats/nats.conf",
        ]);
    }

    /// An executor host: `saltant executor` on its credentials, as an unprivileged user.
    fn start_executor(&self, host: &str, creds: &Path, env: &[(String, String)]) {
        let name = self.name(host);
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            host,
            "--network",
            &self.network,
            "--label",
            "saltant-test=multihost",
            "--user",
            "65534:65534",
            "-v",
            &format!("{}:/creds/executor.creds:ro", creds.display()),
            "-e",
            "SALTANT_BUS__CREDENTIALS_FILE=/creds/executor.creds",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(format!("saltant:{TAG}"));
        args.extend(["executor".into(), "--slots".into(), "2".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args);
    }

    fn logs(&self, host: &str) -> String {
        let out = Command::new("docker")
            .args(["logs", "--tail", "40", &self.name(host)])
            .output()
            .expect("docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let listed = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("name=saltant-mh-{}-", self.id),
            ])
            .output();
        if let Ok(out) = listed {
            for container in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker")
                    .args(["rm", "-f", "-v", container])
                    .output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

/// Executors that ran attempts of these instances, per the recorded history.
fn executors_of(stack: &Stack, uuids: &[String]) -> Vec<String> {
    let list = uuids
        .iter()
        .map(|u| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(",");
    psql(
        &stack.database_url(),
        &format!(
            "SELECT DISTINCT executor FROM task_instance_history \
             WHERE instance_uuid IN ({list}) AND state = 'running' ORDER BY 1"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// (attempt, state, executor) of every recorded change of an instance.
fn history(stack: &Stack, uuid: &str) -> Vec<(i32, String, String)> {
    psql(
        &stack.database_url(),
        &format!(
            "SELECT attempt || '|' || state || '|' || coalesce(executor, '') \
             FROM task_instance_history WHERE instance_uuid = '{uuid}' ORDER BY id"
        ),
    )
    .lines()
    .filter_map(|l| {
        let mut p = l.splitn(3, '|');
        Some((
            p.next()?.parse().ok()?,
            p.next()?.to_owned(),
            p.next()?.to_owned(),
        ))
    })
    .collect()
}

async fn all_successful(stack: &Stack, uuids: &[String], what: &str) {
    for uuid in uuids {
        let body = stack
            .wait_state_of(Class::Executable, uuid, "successful", LONG)
            .await;
        assert_eq!(body["state"], "successful", "{what}: {body}");
    }
}

/// Where an instance runs now (its running attempt's executor), once it does.
async fn running_on(stack: &Stack, uuid: &str) -> String {
    eventually(LONG, &format!("{uuid} running"), || async {
        let out = psql(
            &stack.database_url(),
            &format!(
                "SELECT coalesce(executor, '') FROM task_instances \
                 WHERE uuid = '{uuid}' AND state = 'running'"
            ),
        );
        let e = out.trim().to_owned();
        (!e.is_empty()).then_some(e)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn executors_on_other_hosts_share_work_and_survive_kills_and_partitions() {
    images();
    let dir = std::env::temp_dir().join(format!("saltant-mh-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("test folder");
    let hosts = Hosts::new(&dir);
    let authority = Authority::generate().expect("authority");
    let conf = authority.server_config().expect("server configuration");
    for node in ["n1", "n2", "n3"] {
        hosts.start_nats(node, &conf);
    }
    let urls: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| format!("nats://{}:4222", hosts.address(n)))
        .collect();
    let host_url = urls.join(",");
    let settings = [
        ("SALTANT_NATS_URL", host_url.as_str()),
        ("SALTANT_BUS__REPLICAS", "3"),
        ("SALTANT_SCHEDULER__MAX_ATTEMPTS", "3"),
        ("SALTANT_SCHEDULER__RETRY_BACKOFF_SECS", "1"),
        ("SALTANT_SCHEDULER__LOST_CHECK_EVERY_SECS", "2"),
        ("SALTANT_BUS__DISPATCH_ACK_WAIT_SECS", "10"),
    ];
    let stack = Stack::start_opts(Options {
        no_all: true,
        env: &settings,
        ..Options::default()
    })
    .await;
    let names = Names::new(&stack.prefix).expect("prefix");
    let key = dir.join("account.nk");
    std::fs::write(&key, authority.account_seed().expect("seed")).expect("account key");
    let mut services = Vec::new();
    for (service, grant) in [
        ("scheduler", saltant_bus::auth::Grant::Scheduler),
        ("api", saltant_bus::auth::Grant::Api),
        ("log-collector", saltant_bus::auth::Grant::LogCollector),
    ] {
        let file = dir.join(format!("{service}.creds"));
        std::fs::write(&file, authority.credentials(&grant, &names).expect("mint"))
            .expect("write credentials");
        let file = file.display().to_string();
        // The nodes need a moment to elect the JetStream meta leader: the services wait.
        services.push(stack.spawn_with_env(
            &[service],
            &[("SALTANT_BUS__CREDENTIALS_FILE", &file)],
            &format!("{service}.log"),
        ));
    }
    // Executors' credentials from the admin tool, one per host, for queue mh only.
    let key_arg = key.display().to_string();
    let mint = |id: &str, queue: &str| {
        let creds = stack.saltant(&[
            "admin",
            "executor-credentials",
            "--queue",
            queue,
            "--id",
            id,
            "--account-key",
            &key_arg,
        ]);
        let file = dir.join(format!("{id}.creds"));
        std::fs::write(&file, creds).expect("write credentials");
        // The container's unprivileged user reads it.
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        file
    };
    let container_urls: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| format!("nats://{}:4222", hosts.name(n)))
        .collect();
    let executor_env: Vec<(String, String)> = [
        ("SALTANT_NATS_URL", container_urls.join(",")),
        ("SALTANT_BUS__PREFIX", stack.prefix.clone()),
        ("SALTANT_BUS__REPLICAS", "3".to_owned()),
        ("SALTANT_LOG_FORMAT", "text".to_owned()),
        ("SALTANT_EXECUTOR__DOCKER__ENABLED", "false".to_owned()),
        ("SALTANT_EXECUTOR__SINGULARITY__ENABLED", "false".to_owned()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    for host in ["e1", "e2", "e3"] {
        hosts.start_executor(host, &mint(host, "mh"), &executor_env);
    }
    stack.wait_ready().await;

    let (sleep, queues) = stack
        .executable_on_queues(
            "mh-sleep",
            // The arguments come as one more argv element, `{'seconds': N}`.
            "sh -c 'sleep $(echo \"$0\" | tr -dc 0-9)'",
            &["mh".to_owned()],
        )
        .await;
    let mh = queues[0];
    let run = |seconds: u32| {
        let stack = &stack;
        async move {
            stack
                .create(
                    Class::Executable,
                    sleep,
                    mh,
                    json!({"arguments": {"seconds": seconds}}),
                )
                .await
        }
    };

    // 1. Work spreads over every executor host.
    let mut first = Vec::new();
    for _ in 0..9 {
        first.push(run(2).await);
    }
    all_successful(&stack, &first, "spread").await;
    let ran = executors_of(&stack, &first);
    assert_eq!(
        ran,
        ["e1", "e2", "e3"],
        "work ran on {ran:?}; executor logs:\n{}",
        hosts.logs("e1")
    );

    // 2. An executor host is killed mid-run: its attempts are retried elsewhere.
    let mut batch = Vec::new();
    for _ in 0..6 {
        batch.push(run(4).await);
    }
    let victim = running_on(&stack, &batch[0]).await;
    docker(&["kill", &hosts.name(&victim)]);
    all_successful(&stack, &batch, "after an executor was killed").await;
    let retried = batch
        .iter()
        .filter(|u| history(&stack, u).iter().any(|(a, _, _)| *a > 1))
        .count();
    assert!(retried >= 1, "no attempt of {victim} was retried elsewhere");
    docker(&["start", &hosts.name(&victim)]);

    // 3. A NATS node is killed mid-run: R3 streams and buckets lose nothing.
    let mut batch = Vec::new();
    for _ in 0..6 {
        batch.push(run(3).await);
    }
    running_on(&stack, &batch[0]).await;
    docker(&["kill", &hosts.name("n2")]);
    for _ in 0..3 {
        batch.push(run(1).await);
    }
    all_successful(&stack, &batch, "after a NATS node was killed").await;
    docker(&["start", &hosts.name("n2")]);

    // 4. An executor cut off longer than the heartbeat bound: its attempt is retried on
    // another host, and its late report of the old attempt does not count.
    let long = run(25).await;
    let holder = running_on(&stack, &long).await;
    docker(&[
        "network",
        "disconnect",
        &hosts.network,
        &hosts.name(&holder),
    ]);
    let retried = eventually(LONG, "the cut-off attempt retried elsewhere", || async {
        let h = history(&stack, &long);
        h.iter()
            .find(|(a, s, e)| *a == 2 && s == "running" && *e != holder)
            .map(|(_, _, e)| e.clone())
    })
    .await;
    // Reconnected after its attempt ended: it reports attempt 1, which is fenced off.
    tokio::time::sleep(Duration::from_secs(26)).await;
    docker(&["network", "connect", &hosts.network, &hosts.name(&holder)]);
    let body = stack
        .wait_state_of(Class::Executable, &long, "successful", LONG)
        .await;
    assert_eq!(body["state"], "successful", "{body}");
    let h = history(&stack, &long);
    assert!(
        !h.iter().any(|(a, s, _)| *a == 1 && s == "successful"),
        "attempt 1's late report was recorded: {h:?}"
    );
    let last = psql(
        &stack.database_url(),
        &format!(
            "SELECT attempt || '|' || coalesce(executor, '') FROM task_instances WHERE uuid = '{long}'"
        ),
    );
    assert_eq!(last.trim(), format!("2|{retried}"), "history: {h:?}");
    // Healed: the reconnected executor takes work again.
    eventually(
        LONG,
        "the reconnected executor running work again",
        || async {
            let mut round = Vec::new();
            for _ in 0..6 {
                round.push(run(1).await);
            }
            all_successful(&stack, &round, "after reconnecting").await;
            executors_of(&stack, &round).contains(&holder).then_some(())
        },
    )
    .await;

    // 5. An executor of queue mh-b, on its own credentials, cannot take mh's work or
    // report as one of mh's executors: the broker refuses.
    let other = mint("eb", "mh-b");
    let probe = Probe::connect(&urls[0], &other, "_INBOX_eb").await;
    probe
        .pull_refused(&names.dispatch_stream(), "queue-mh")
        .await;
    let forged = names.event(
        &QueueName::parse("mh").expect("queue"),
        long.parse().expect("uuid"),
        "e1",
    );
    probe.publish_refused(&forged).await;
    for mut child in services {
        let _ = child.kill();
        let _ = child.wait();
    }
}
