//! The native command line client (docs/cli.md) driven as a user would, against the live
//! stack: every command, its JSON and piped table output, its errors and exit codes, and
//! `run --follow` of a container task streaming its output and exiting with its status.

use saltant_tests::{Stack, busybox_image, required_env};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// What one run of the client gave.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
    fn ok(self) -> Ran {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The client with the stack's URL and the admin's token in the environment, its own
/// empty configuration folder, stdin from `input`, outputs piped; at most 3 minutes.
struct Cli<'a> {
    stack: &'a Stack,
    env: Vec<(String, String)>,
}

impl<'a> Cli<'a> {
    fn new(stack: &'a Stack) -> Cli<'a> {
        let xdg = stack.dir.join("xdg");
        std::fs::create_dir_all(&xdg).expect("xdg folder");
        Cli {
            stack,
            env: vec![
                ("SALTANT_API_URL".into(), format!("{}/", stack.url)),
                ("SALTANT_AUTH_TOKEN".into(), stack.token.clone()),
                ("XDG_CONFIG_HOME".into(), xdg.display().to_string()),
            ],
        }
    }

    fn without(&self, names: &[&str]) -> Cli<'a> {
        Cli {
            stack: self.stack,
            env: self
                .env
                .iter()
                .filter(|(k, _)| !names.contains(&k.as_str()))
                .cloned()
                .collect(),
        }
    }

    fn with(&self, name: &str, value: &str) -> Cli<'a> {
        let mut c = self.without(&[name]);
        c.env.push((name.into(), value.into()));
        c
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(required_env("SALTANT_TEST_BIN"));
        c.args(args)
            .env_remove("SALTANT_API_URL")
            .env_remove("SALTANT_AUTH_TOKEN")
            .env_remove("SALTANT_CLI_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn input(&self, args: &[&str], input: &str) -> Ran {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn the client");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write stdin");
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("saltant {args:?} did not end within 3 minutes"))
            .expect("wait for the client");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Ran {
        self.input(args, "").await
    }
}

fn no_terminal_codes(r: &Ran) {
    for (what, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains('\x1b'),
            "escape codes in piped {what}: {text:?}"
        );
        assert!(
            !text.contains('\r'),
            "carriage returns in piped {what}: {text:?}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write input file");
    p
}

#[tokio::test]
async fn resources_login_completions_and_errors_with_their_exit_codes() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let cli = Cli::new(&stack);

    // Task types from flags, a JSON file and a TOML file.
    let exe = cli
        .run(&[
            "types",
            "create",
            "--name",
            "echoer",
            "--command",
            "echo",
            "--required",
            "word",
            "--required",
            "n",
            "--default",
            "n:=5",
            "--env",
            "HOME",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(exe["kind"], "executable");
    assert_eq!(exe["required_arguments"], json!(["word", "n"]));
    assert_eq!(exe["required_arguments_default_values"], json!({"n": 5}));
    assert_eq!(exe["environment_variables"], json!(["HOME"]));
    let file = write(
        &stack.dir,
        "ctr.json",
        r#"{"name": "boxed", "command_to_run": "true", "container_image": "busybox:1", "container_type": "docker"}"#,
    );
    let ctr = cli
        .run(&[
            "types",
            "create",
            "--file",
            file.to_str().expect("path"),
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(ctr["kind"], "container");
    assert_eq!(ctr["container_image"], "busybox:1");
    let toml = write(
        &stack.dir,
        "t.toml",
        "kind = \"executable\"\nname = \"from-toml\"\ncommand_to_run = \"true\"\ndescription = \"toml\"\n",
    );
    let t = cli
        .run(&[
            "types",
            "create",
            "--file",
            toml.to_str().expect("path"),
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        (t["kind"].as_str(), t["description"].as_str()),
        (Some("executable"), Some("toml"))
    );

    // list / get / update, JSON and piped table.
    let all = cli.run(&["types", "list", "-o", "json"]).await.ok().json();
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");
    let table = cli.run(&["types", "list"]).await.ok();
    no_terminal_codes(&table);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("KIND"),
        "{}",
        lines[0]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("echoer") && l.contains("executable"))
    );
    let got = cli
        .run(&["types", "get", "boxed", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(got["id"], ctr["id"]);
    let got = cli.run(&["types", "get", "boxed"]).await.ok();
    assert!(
        got.stdout
            .lines()
            .any(|l| l.starts_with("container_image") && l.ends_with("busybox:1")),
        "{}",
        got.stdout
    );
    let upd = cli
        .run(&[
            "types",
            "update",
            "echoer",
            "--description",
            "says words",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(upd["description"], "says words");
    assert_eq!(
        upd["required_arguments"],
        json!(["word", "n"]),
        "other fields kept"
    );
    let upd_file = write(&stack.dir, "u.json", r#"{"command_to_run": "printf"}"#);
    let upd = cli
        .run(&[
            "types",
            "update",
            "echoer",
            "--file",
            upd_file.to_str().expect("p"),
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        (upd["command_to_run"].as_str(), upd["description"].as_str()),
        (Some("printf"), Some("says words"))
    );

    // Whitelists and queues, by name.
    let wl = cli
        .run(&[
            "whitelists",
            "create",
            "--name",
            "wl",
            "--type",
            "echoer",
            "--type",
            "container:boxed",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(wl["whitelisted_executable_task_types"], json!([exe["id"]]));
    assert_eq!(wl["whitelisted_container_task_types"], json!([ctr["id"]]));
    let wl = cli
        .run(&[
            "whitelists",
            "update",
            "wl",
            "--remove-type",
            "boxed",
            "--description",
            "d",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(wl["whitelisted_container_task_types"], json!([]));
    assert_eq!(wl["whitelisted_executable_task_types"], json!([exe["id"]]));
    assert_eq!(wl["description"], "d");
    let listed = cli
        .run(&["whitelists", "list", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed[0]["name"], "wl");
    assert_eq!(
        cli.run(&["whitelists", "get", "wl", "-o", "json"])
            .await
            .ok()
            .json()["id"],
        wl["id"]
    );
    let q = cli
        .run(&[
            "queues",
            "create",
            "--name",
            "cq",
            "--whitelist",
            "wl",
            "--private",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        (q["private"].as_bool(), q["whitelists"].clone()),
        (Some(true), json!([wl["id"]]))
    );
    let qfile = write(&stack.dir, "q.toml", "description = \"from toml\"\n");
    let q = cli
        .run(&[
            "queues",
            "update",
            "cq",
            "--active",
            "false",
            "--file",
            qfile.to_str().expect("p"),
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        (q["active"].as_bool(), q["description"].as_str()),
        (Some(false), Some("from toml"))
    );
    assert_eq!(q["whitelists"], json!([wl["id"]]), "kept");
    let q = cli
        .run(&[
            "queues",
            "update",
            "cq",
            "--active",
            "--private=false",
            "--remove-whitelist",
            "wl",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        (
            q["active"].as_bool(),
            q["private"].as_bool(),
            q["whitelists"].clone()
        ),
        (Some(true), Some(false), json!([]))
    );
    let queues = cli
        .run(&["queues", "list", "--filter", "name__startswith=c"])
        .await
        .ok();
    assert!(
        queues
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("cq")),
        "{}",
        queues.stdout
    );
    assert_eq!(
        cli.run(&["queues", "get", "cq", "-o", "json"])
            .await
            .ok()
            .json()["id"],
        q["id"]
    );

    // Client commands do not read the services' configuration, broken as it may be.
    let broken = write(&stack.dir, "broken.toml", "[api\nlisten = 3\n");
    cli.with("SALTANT_CONFIG", broken.to_str().expect("p"))
        .with("SALTANT_API__LISTEN", "not an address")
        .run(&["queues", "list"])
        .await
        .ok();

    // Errors and their exit codes.
    let r = cli.run(&["types", "get", "nope"]).await;
    assert_eq!(r.code, 6, "unknown name: {}", r.stderr);
    assert!(
        r.stderr.contains("no task type named \"nope\""),
        "{}",
        r.stderr
    );
    assert_eq!(
        cli.run(&["run", "echoer", "--queue", "no-such-queue"])
            .await
            .code,
        6
    );
    let r = cli
        .run(&["types", "create", "--kind", "container", "--name", "x"])
        .await;
    assert_eq!(r.code, 8, "validation: {}", r.stderr);
    for field in ["command_to_run", "container_image", "container_type"] {
        assert!(
            r.stderr
                .contains(&format!("\n  {field}: This field is required.")),
            "{field} in {}",
            r.stderr
        );
    }
    let r = cli
        .run(&[
            "types",
            "create",
            "--name",
            "bad",
            "--command",
            "x",
            "--default",
            "z=1",
        ])
        .await;
    assert_eq!(r.code, 8);
    assert!(
        r.stderr
            .contains("non_field_errors: default arguments not a subset of required arguments"),
        "{}",
        r.stderr
    );
    let dup = cli
        .run(&[
            "types",
            "create",
            "--name",
            "boxed",
            "--command",
            "true",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    let r = cli.run(&["types", "get", "boxed"]).await;
    assert_eq!(r.code, 7, "ambiguous: {}", r.stderr);
    assert!(
        r.stderr.contains("--kind container|executable"),
        "{}",
        r.stderr
    );
    let r = cli
        .run(&[
            "types",
            "get",
            "boxed",
            "--kind",
            "executable",
            "-o",
            "json",
        ])
        .await
        .ok();
    assert_eq!(r.json()["id"], dup["id"]);
    let r = cli
        .with("SALTANT_AUTH_TOKEN", &"0".repeat(40))
        .run(&["queues", "list"])
        .await;
    assert_eq!(r.code, 4, "bad token: {}", r.stderr);
    assert!(r.stderr.contains("Invalid token."), "{}", r.stderr);
    let bob = stack.saltant(&["admin", "create-user", "bob"]);
    let bob = bob.lines().last().expect("token").trim().to_owned();
    let r = cli
        .with("SALTANT_AUTH_TOKEN", &bob)
        .run(&["queues", "update", "cq", "--description", "mine now"])
        .await;
    assert_eq!(r.code, 5, "not the owner: {}", r.stderr);
    let r = cli
        .with("SALTANT_API_URL", "http://127.0.0.1:9/api/")
        .run(&["queues", "list"])
        .await;
    assert_eq!(r.code, 3, "unreachable: {}", r.stderr);
    assert_eq!(cli.run(&["queues", "list", "--no-such-flag"]).await.code, 2);
    let r = cli
        .without(&["SALTANT_API_URL"])
        .run(&["queues", "list"])
        .await;
    assert_eq!(r.code, 2, "no server configured: {}", r.stderr);
    let r = cli
        .run(&["instances", "get", "00000000-0000-0000-0000-000000000000"])
        .await;
    assert_eq!(r.code, 6, "{}", r.stderr);

    // Login: password from stdin → config.yaml 0600; later commands use only that file.
    stack.saltant(&["admin", "set-password", "admin", "--password", "pw for cli"]);
    let bare = cli.without(&["SALTANT_API_URL", "SALTANT_AUTH_TOKEN"]);
    let url = format!("{}/", stack.url);
    let r = bare
        .input(
            &[
                "login",
                "--url",
                &url,
                "--username",
                "admin",
                "--password-stdin",
            ],
            "wrong\n",
        )
        .await;
    assert_eq!(r.code, 4, "bad password: {}", r.stderr);
    let config = stack.dir.join("xdg/saltant-cli/config.yaml");
    assert!(!config.exists());
    bare.input(
        &[
            "login",
            "--url",
            &url,
            "--username",
            "admin",
            "--password-stdin",
        ],
        "pw for cli\n",
    )
    .await
    .ok();
    let meta = std::fs::metadata(&config).expect("config.yaml written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        text.contains("saltant-api-url: ") && text.contains(&url),
        "{text}"
    );
    assert!(text.contains("saltant-auth-token: "), "{text}");
    let r = bare.run(&["queues", "get", "cq", "-o", "json"]).await.ok();
    assert_eq!(r.json()["name"], "cq");
    assert!(text.contains("saltant-refresh-token: "), "{text}");
    // An access token the api refuses (as an expired one) is renewed once from the
    // refresh token, and the new one saved.
    let access = text
        .lines()
        .find_map(|l| l.strip_prefix("saltant-auth-token: "))
        .expect("access token line")
        .to_owned();
    std::fs::write(&config, text.replace(&access, "bad.jwt.token")).expect("spoil the token");
    let r = bare.run(&["queues", "get", "cq", "-o", "json"]).await.ok();
    assert_eq!(r.json()["name"], "cq");
    let renewed = std::fs::read_to_string(&config).expect("config");
    assert!(!renewed.contains("bad.jwt.token"), "{renewed}");
    assert_eq!(
        std::fs::metadata(&config)
            .expect("config")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // An API token from stdin, the saltant-cli way.
    bare.input(
        &["login", "--url", &url, "--token-stdin"],
        &format!("{}\n", stack.token),
    )
    .await
    .ok();
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(&stack.token), "{text}");
    assert!(!text.contains("saltant-refresh-token"), "{text}");
    assert_eq!(
        bare.run(&["whitelists", "get", "wl", "-o", "json"])
            .await
            .ok()
            .json()["name"],
        "wl"
    );

    let r = cli.run(&["completions", "bash"]).await.ok();
    assert!(
        r.stdout.contains("_saltant()") && r.stdout.contains("instances"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(
        cli.run(&["completions", "zsh"])
            .await
            .ok()
            .stdout
            .contains("#compdef saltant")
    );
}

#[tokio::test]
async fn run_follow_streams_a_container_task_and_exits_with_its_code() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let cli = Cli::new(&stack);
    let script = "echo out1; echo err1 >&2; echo out2; echo data > /results/r.txt; mkdir -p /results/sub; echo n > /results/sub/n.txt; exit 7";
    let file = write(
        &stack.dir,
        "t.json",
        &json!({
            "name": "shout",
            "command_to_run": format!("sh -c '{script}'"),
            "container_image": busybox_image(),
            "container_type": "docker",
            "results_path": "/results",
        })
        .to_string(),
    );
    cli.run(&["types", "create", "--file", file.to_str().expect("p")])
        .await
        .ok();
    cli.run(&["whitelists", "create", "--name", "wl", "--type", "shout"])
        .await
        .ok();
    cli.run(&["queues", "create", "--name", "dq", "--whitelist", "wl"])
        .await
        .ok();

    let r = cli
        .run(&[
            "run", "shout", "--queue", "dq", "--name", "followed", "--follow",
        ])
        .await;
    assert_eq!(r.code, 7, "the task exit code; stderr: {}", r.stderr);
    assert_eq!(r.stdout, "out1\nout2\n");
    assert_eq!(
        r.stderr, "err1\n",
        "piped: the task's stderr only, no progress"
    );
    no_terminal_codes(&r);

    // On a terminal (script(1) gives it one): the progress line and the state changes.
    let bin = required_env("SALTANT_TEST_BIN");
    let mut tty = tokio::process::Command::new("script");
    tty.args([
        "-qefc",
        &format!("'{bin}' run shout --queue dq --follow"),
        "/dev/null",
    ])
    .envs(cli.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    .env("TERM", "xterm")
    .stdin(Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), tty.output())
        .await
        .expect("run on a terminal within 3 minutes")
        .expect("run script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{screen}");
    assert!(
        screen.contains("out1") && screen.contains("err1"),
        "{screen}"
    );
    assert!(
        screen.contains(" running on "),
        "state lines on a terminal: {screen}"
    );
    assert!(
        screen.contains(" failed on ") && screen.contains("exited with code 7"),
        "{screen}"
    );

    let list = cli
        .run(&[
            "instances",
            "list",
            "--queue",
            "dq",
            "--name",
            "followed",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let uuid = list[0]["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(
        (list[0]["kind"].as_str(), list[0]["state"].as_str()),
        (Some("container"), Some("failed"))
    );
    let got = cli
        .run(&["instances", "get", &uuid, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(got["name"], "followed");
    let r = cli.run(&["instances", "wait", &uuid, "-o", "json"]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let outcome = r.json();
    assert_eq!(
        (outcome["state"].as_str(), outcome["exit_code"].as_i64()),
        (Some("failed"), Some(7))
    );

    let r = cli.run(&["instances", "logs", &uuid]).await.ok();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("out1\nout2\n", "err1\n")
    );

    let r = cli
        .run(&["instances", "logs", &uuid, "--follow", "--attempt", "1"])
        .await
        .ok();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("out1\nout2\n", "err1\n")
    );

    let out = stack.dir.join("downloaded");
    let r = cli
        .run(&[
            "instances",
            "results",
            &uuid,
            "--output",
            out.to_str().expect("p"),
            "--format",
            "json",
        ])
        .await
        .ok();
    let written = r.json();
    assert_eq!(written.as_array().map(Vec::len), Some(2), "{written}");
    assert_eq!(
        std::fs::read_to_string(out.join("results/r.txt")).expect("r.txt"),
        "data\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("results/sub/n.txt")).expect("n.txt"),
        "n\n"
    );

    // A clone, followed through `instances logs --follow`.
    let clone = cli
        .run(&["instances", "clone", &uuid, "-o", "json"])
        .await
        .ok()
        .json();
    let cloned = clone["uuid"].as_str().expect("uuid");
    assert_ne!(cloned, uuid);
    let r = cli
        .run(&["instances", "logs", cloned, "--follow"])
        .await
        .ok();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("out1\nout2\n", "err1\n")
    );
    assert_eq!(cli.run(&["instances", "wait", cloned]).await.code, 7);
}

#[tokio::test]
async fn run_terminate_wait_and_events_of_an_executable_task() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let cli = Cli::new(&stack);
    cli.run(&[
        "types",
        "create",
        "--name",
        "sleeper",
        "--command",
        "sh -c 'sleep 600'",
    ])
    .await
    .ok();
    cli.run(&[
        "types",
        "create",
        "--name",
        "talker",
        "--command",
        "echo",
        "--required",
        "word",
    ])
    .await
    .ok();
    cli.run(&[
        "whitelists",
        "create",
        "--name",
        "wl",
        "--type",
        "sleeper",
        "--type",
        "talker",
    ])
    .await
    .ok();
    cli.run(&["queues", "create", "--name", "eq", "--whitelist", "wl"])
        .await
        .ok();

    // Events of the queue, read line by line while things happen.
    let mut events = cli
        .command(&["events", "--queue", "eq", "--from-seq", "1", "-o", "json"])
        .spawn()
        .expect("spawn events");
    let mut lines = BufReader::new(events.stdout.take().expect("stdout")).lines();
    let mut seen: Vec<Value> = Vec::new();
    let mut wait_for = async |uuid: &str, state: &str, seen: &mut Vec<Value>| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !seen
            .iter()
            .any(|e| e["event"]["uuid"] == uuid && e["event"]["state"] == state)
        {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {state} event for {uuid} within 60 s: {seen:?}"))
                .expect("read events")
                .expect("events still running");
            seen.push(serde_json::from_str(&line).expect("an event per line"));
        }
    };

    let talk = cli
        .run(&[
            "run",
            "talker",
            "--queue",
            "eq",
            "--arg",
            "word=hi there",
            "--arg",
            "n:=5",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(talk["arguments"], json!({"word": "hi there", "n": 5}));
    let talk_uuid = talk["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(cli.run(&["instances", "wait", &talk_uuid]).await.code, 0);
    wait_for(&talk_uuid, "successful", &mut seen).await;
    let r = cli.run(&["instances", "logs", &talk_uuid]).await.ok();
    assert!(r.stdout.contains("hi there"), "{}", r.stdout);
    let r = cli.run(&["run", "talker", "--queue", "eq"]).await;
    assert_eq!(r.code, 8, "missing argument: {}", r.stderr);
    assert!(
        r.stderr.contains("required argument 'word' not provided!"),
        "{}",
        r.stderr
    );

    let args = write(&stack.dir, "a.toml", "seconds = 600\n");
    let sleep = cli
        .run(&[
            "run",
            "sleeper",
            "--queue",
            "eq",
            "--args-file",
            args.to_str().expect("p"),
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(sleep["arguments"], json!({"seconds": 600}));
    let uuid = sleep["uuid"].as_str().expect("uuid").to_owned();
    wait_for(&uuid, "running", &mut seen).await;
    let r = cli
        .run(&["instances", "terminate", &uuid, "-o", "json"])
        .await
        .ok();
    assert_eq!(r.json()["uuid"], uuid.as_str());
    let r = cli
        .run(&["instances", "wait", &uuid, "--timeout", "60"])
        .await;
    assert_eq!(r.code, 11, "terminated: {}", r.stderr);
    wait_for(&uuid, "terminated", &mut seen).await;
    let _ = events.kill().await;

    let table = cli
        .run(&["instances", "list", "--state", "terminated"])
        .await
        .ok();
    no_terminal_codes(&table);
    assert!(
        table
            .stdout
            .lines()
            .skip(1)
            .all(|l| l.contains("terminated")),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(&uuid), "{}", table.stdout);
}

/// A proxy to the api that cuts every event stream after `limit` bytes of its answer
/// (mid-event, as a dropped connection does); other answers pass whole. Returns its URL.
async fn cutting_proxy(api: &str, limit: usize) -> String {
    let target = api
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("api host")
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    let mut sent = 0usize;
                    let mut head = Vec::new();
                    let mut buf = vec![0u8; 512];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if head.len() < 4096 {
                            head.extend_from_slice(&buf[..n]);
                        }
                        let sse = String::from_utf8_lossy(&head).contains("text/event-stream");
                        let n = if sse { n.min(limit - sent) } else { n };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                        if sse && sent >= limit {
                            return;
                        }
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    format!("http://{addr}/api/")
}

#[tokio::test]
async fn follow_through_dropped_connections_loses_and_repeats_nothing() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let cli = Cli::new(&stack);
    let script =
        "for i in $(seq 1 150); do echo line $i; echo warn $i >&2; sleep 0.01; done; exit 4";
    cli.run(&[
        "types",
        "create",
        "--name",
        "chatty",
        "--command",
        &format!("sh -c '{script}'"),
    ])
    .await
    .ok();
    cli.run(&["whitelists", "create", "--name", "wl", "--type", "chatty"])
        .await
        .ok();
    cli.run(&["queues", "create", "--name", "pq", "--whitelist", "wl"])
        .await
        .ok();
    let proxy = cutting_proxy(&stack.url, 700).await;
    let r = cli
        .with("SALTANT_API_URL", &proxy)
        .run(&["run", "chatty", "--queue", "pq", "--follow"])
        .await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    let want = |word: &str| {
        (1..=150)
            .map(|i| format!("{word} {i}\n"))
            .collect::<String>()
    };
    assert_eq!(r.stdout, want("line"));
    assert_eq!(r.stderr, want("warn"));
}
