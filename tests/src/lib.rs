//! Helpers for integration tests against the real components that `deploy/test` starts:
//! a fresh database and bus prefix per test, the real `saltant` binary as a child process,
//! and `eventually` instead of sleeps. A missing component fails the test loudly.

pub mod browser;
pub mod otlp;
pub mod probe;
pub mod servers;
mod sse;
mod tasks;

pub use sse::Sse;
pub use tasks::{Class, INSTANCE_KEYS, is_final, keys, merged};

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An environment variable `deploy/test` sets; its absence fails the test.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through deploy/test, which starts NATS and PostgreSQL")
    })
}

/// Polls `check` until it returns `Some`, or panics after `timeout` saying what it waited for.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

use servers::free_port;

/// A running `saltant all` with its own database, bus prefix, port and folders.
/// How to start a [`Stack`].
#[derive(Default)]
pub struct Options<'a> {
    /// Arguments of `saltant all` (e.g. `--queue q1`).
    pub all_args: &'a [&'a str],
    /// Extra environment of every process of the stack.
    pub env: &'a [(&'a str, &'a str)],
    /// Run a nats-server of its own (to restart it).
    pub own_nats: bool,
    /// Run a PostgreSQL cluster of its own (to restart it).
    pub own_postgres: bool,
    /// Do not start `saltant all`: the caller starts the services it wants with
    /// [`Stack::spawn_with_env`] (the api listens on the stack's port).
    pub no_all: bool,
}

pub struct Stack {
    /// Admin URL of the PostgreSQL server holding the stack's database.
    pub admin_url: String,
    /// The stack's own servers, when asked for.
    pub nats: Option<servers::Nats>,
    pub postgres: Option<servers::Postgres>,
    pub url: String,
    pub token: String,
    pub database: String,
    pub prefix: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
    all_args: Vec<String>,
    /// Processes started with [`Stack::spawn`] (pid, start time), killed on drop.
    spawned: std::sync::Mutex<Vec<(u32, u64)>>,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(&[]).await
    }

    /// A stack whose `saltant all` gets `all_args` (e.g. `--queue q1`).
    pub async fn start_with(all_args: &[&str]) -> Stack {
        Stack::start_opts(Options {
            all_args,
            ..Options::default()
        })
        .await
    }

    /// A stack with its own NATS and/or PostgreSQL servers and extra environment.
    pub async fn start_opts(o: Options<'_>) -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("saltant-test-{id}"));
        std::fs::create_dir_all(&dir).expect("create test folder");
        // Tasks of a root executor run as `nobody`: they may leave marker files here.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .expect("open the test folder to tasks");
        let own_nats = o.own_nats.then(|| servers::Nats::start(&dir));
        let own_pg = o.own_postgres.then(|| servers::Postgres::start(&dir));
        let admin_url = own_pg
            .as_ref()
            .map(|p| p.admin_url())
            .unwrap_or_else(|| required_env("SALTANT_TEST_PG_ADMIN_URL"));
        let nats = own_nats
            .as_ref()
            .map(|n| n.url())
            .unwrap_or_else(|| required_env("SALTANT_TEST_NATS_URL"));
        let database = format!("t_{id}");
        let prefix = format!("t{}", &id[..12]);
        psql(&admin_url, &format!("CREATE DATABASE \"{database}\""));
        let db_url = admin_url
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/{database}"))
            .expect("database url");
        let port = free_port();
        let mut env = vec![
            // Readable lines in the logs tests keep (the default off a terminal is JSON).
            ("SALTANT_LOG_FORMAT".to_owned(), "text".to_owned()),
            ("SALTANT_DATABASE_URL".to_owned(), db_url),
            ("SALTANT_NATS_URL".to_owned(), nats),
            ("SALTANT_BUS__PREFIX".to_owned(), prefix.clone()),
            // JetStream reserves a stream's byte limit up front: keep tests' streams small
            // so that many stacks fit on one server.
            (
                "SALTANT_BUS__LOGS_MAX_BYTES".to_owned(),
                "67108864".to_owned(),
            ),
            (
                "SALTANT_BUS__RESULTS_MAX_BYTES".to_owned(),
                "67108864".to_owned(),
            ),
            (
                "SALTANT_API__LISTEN".to_owned(),
                format!("127.0.0.1:{port}"),
            ),
            (
                "SALTANT_EXECUTOR__LOGS_DIR".to_owned(),
                dir.join("logs").display().to_string(),
            ),
            (
                "SALTANT_EXECUTOR__RESULTS_DIR".to_owned(),
                dir.join("results").display().to_string(),
            ),
            (
                "SALTANT_EXECUTOR__TEMP_DIR".to_owned(),
                dir.join("tmp").display().to_string(),
            ),
            (
                "SALTANT_EXECUTOR__WORK_DIR".to_owned(),
                dir.join("work").display().to_string(),
            ),
            (
                "SALTANT_EXECUTOR__SINGULARITY__IMAGES_DIR".to_owned(),
                dir.join("images").display().to_string(),
            ),
        ];
        env.extend(o.env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut stack = Stack {
            admin_url,
            nats: own_nats,
            postgres: own_pg,
            url: format!("http://127.0.0.1:{port}/api"),
            token: String::new(),
            database,
            prefix,
            dir,
            child: None,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            env,
            all_args: o.all_args.iter().map(|a| a.to_string()).collect(),
            spawned: std::sync::Mutex::default(),
        };
        let out = stack.saltant(&["admin", "create-user", "admin", "--superuser"]);
        stack.token = out.lines().last().expect("token line").trim().to_owned();
        assert_eq!(
            stack.token.len(),
            40,
            "admin create-user prints a 40-hex token last: {out}"
        );
        if !o.no_all {
            stack.spawn_all();
        }
        stack
    }

    /// Runs a `saltant` command against this stack; returns stdout; panics on failure.
    pub fn saltant(&self, args: &[&str]) -> String {
        let out = Command::new(required_env("SALTANT_TEST_BIN"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run saltant");
        assert!(
            out.status.success(),
            "saltant {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn spawn_all(&mut self) {
        let log = std::fs::File::create(self.dir.join("saltant.log")).expect("create log file");
        let child = Command::new(required_env("SALTANT_TEST_BIN"))
            .arg("all")
            .args(&self.all_args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn saltant all");
        self.child = Some(child);
    }

    /// Waits until the api answers 200; on timeout the failure shows the stack's log.
    pub async fn wait_ready(&self) {
        let url = format!("{}/users/", self.url);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match self
                .http
                .get(&url)
                .header("Authorization", self.auth())
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "the api did not answer 200 within 60 s (last: {last}); log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    pub fn auth(&self) -> String {
        format!("Token {}", self.token)
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(self.http.post(format!("{}/{path}", self.url)).form(form))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}/{path}", self.url)).json(body))
            .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}/{path}", self.url)))
            .await
    }

    /// The log file `name` of an instance, downloaded with the admin's token: status,
    /// headers, the text as a JSON string (see [`Stack::request`]).
    pub async fn download_log(
        &self,
        uuid: &str,
        name: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let path = format!("taskinstances/{uuid}/logs/{name}");
        self.request("GET", &path, &[("Authorization", &self.auth())], None)
            .await
    }

    /// The first attempt's whole output on `stream` (`stdout`, `stderr`), once its end of
    /// output is stored (the instance may be final before its last chunk is).
    pub async fn output_of(&self, uuid: &str, stream: &str) -> String {
        eventually(
            Duration::from_secs(60),
            "the output to be stored",
            || async {
                let (_, listing) = self.get(&format!("taskinstances/{uuid}/logs/")).await;
                (listing["files"][0]["complete"] == true).then_some(())
            },
        )
        .await;
        let r = self
            .http
            .get(format!(
                "{}/taskinstances/{uuid}/logs/{uuid}-{stream}.txt",
                self.url
            ))
            .header("Authorization", self.auth())
            .send()
            .await
            .expect("download a log");
        let status = r.status().as_u16();
        let text = r.text().await.expect("log text");
        assert_eq!(status, 200, "download of {uuid}'s {stream}: {text}");
        text
    }

    /// Logs in through the browser session view as a login form does: `GET` for the form's
    /// CSRF cookie, then `POST` `body` (JSON) with the cookie and `X-CSRFToken`. Returns the
    /// POST's status, headers and body.
    pub async fn login(&self, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let (status, _, form) = self.request("GET", "auth/login/", &[], None).await;
        assert_eq!(status, 200, "{form}");
        let token = form["csrftoken"].as_str().expect("csrftoken").to_owned();
        let cookie = format!("csrftoken={token}");
        self.request(
            "POST",
            "auth/login/",
            &[("Cookie", &cookie), ("X-CSRFToken", &token)],
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }

    /// The web UI's root URL (the api's, without `/api`).
    pub fn root(&self) -> String {
        self.url.trim_end_matches("/api").to_owned()
    }

    /// Signs in through the web UI's sign-in form over plain HTTP (its CSRF cookie and
    /// hidden field echoed). Returns the cookies to send (`Cookie` header) and the sign-in
    /// answer's `Set-Cookie` lines.
    pub async fn ui_sign_in(&self, user: &str, password: &str) -> (String, Vec<String>) {
        let base = self.root();
        let r = self
            .http
            .get(format!("{base}/login/"))
            .send()
            .await
            .expect("get the sign-in page");
        let csrf_cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("csrftoken="))
            .and_then(|c| c.split(';').next())
            .expect("a csrftoken cookie")
            .to_owned();
        let html = r.text().await.expect("page");
        let token = hidden_field(&html, "csrfmiddlewaretoken");
        let r = self
            .http
            .post(format!("{base}/login/"))
            .header("Cookie", format!("csrftoken={csrf_cookie}"))
            .form(&[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", user),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 303, "signed in and sent on");
        let set: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let cookies: Vec<String> = set
            .iter()
            .filter_map(|c| c.split(';').next().map(str::to_owned))
            .collect();
        (cookies.join("; "), set)
    }

    /// Sends a request with the admin's token; the status and the body as JSON (null
    /// when it is not JSON).
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let r = request
            .header("Authorization", self.auth())
            .send()
            .await
            .expect("send request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends SIGTERM to `saltant all` and returns how long it took to exit, and whether
    /// it exited successfully.
    pub fn terminate(&mut self, limit: Duration) -> (Duration, bool) {
        let mut child = self.child.take().expect("stack is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let start = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (start.elapsed(), status.success());
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return (start.elapsed(), false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts another process of this stack (e.g. `executor --queue q`), logging to
    /// `<dir>/<log_name>`. The caller owns (and kills) it; should the test fail first, the
    /// stack kills it when dropped.
    pub fn spawn(&self, args: &[&str], log_name: &str) -> Child {
        self.spawn_with_env(args, &[], log_name)
    }

    /// [`Stack::spawn`] with extra environment variables.
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)], log_name: &str) -> Child {
        let log = std::fs::File::create(self.dir.join(log_name)).expect("create log file");
        let child = Command::new(required_env("SALTANT_TEST_BIN"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn saltant");
        if let Some(started) = servers::start_time(child.id()) {
            self.spawned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((child.id(), started));
        }
        child
    }

    /// Any request: method, path under `/api/` (or absolute), extra headers, body with its
    /// content type. Returns status, headers and the body as JSON (or as a JSON string when
    /// it is not JSON).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/{path}", self.url)
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(method, url);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some((ct, bytes)) = body {
            rb = rb.header("Content-Type", ct).body(bytes);
        }
        let r = rb.send().await.expect("send request");
        let status = r.status().as_u16();
        let h = r.headers().clone();
        let bytes = r.bytes().await.expect("read body");
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, h, v)
    }

    /// The instance uuids a marker file recorded, one per run.
    pub fn runs(marker: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(marker)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A `SELECT count(*) …` (or any single integer) on this stack's database.
    pub fn count(&self, sql: &str) -> i64 {
        psql(&self.database_url(), sql)
            .trim()
            .parse()
            .expect("an integer")
    }

    /// Attempts that ran more than once, per the recorded history (0 is the guarantee).
    pub fn attempts_run_twice(&self) -> i64 {
        self.count(
            "SELECT count(*) FROM (SELECT instance_uuid, attempt FROM task_instance_history \
             WHERE state = 'running' GROUP BY 1, 2 HAVING count(*) > 1) d",
        )
    }

    /// This stack's database URL.
    pub fn database_url(&self) -> String {
        self.admin_url
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/{}", self.database))
            .expect("database url")
    }

    /// The recorded state history of an instance (`state` column), oldest first.
    pub fn history(&self, uuid: &str) -> Vec<String> {
        psql(
            &self.database_url(),
            &format!(
                "SELECT state FROM task_instance_history WHERE instance_uuid = '{uuid}' ORDER BY id"
            ),
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// Creates a user and returns its API token.
    pub fn user(&self, name: &str, superuser: bool) -> String {
        let mut args = vec![
            "admin",
            "create-user",
            name,
            "--password",
            "pw-of-test-user",
        ];
        if superuser {
            args.push("--superuser");
        }
        let out = self.saltant(&args);
        out.lines().last().expect("token line").trim().to_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("saltant.log")).unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Processes a failed test left running (the same process: its start time matches).
        for (pid, started) in self
            .spawned
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            if servers::start_time(pid) == Some(started) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if self.postgres.is_none() {
            psql(
                &self.admin_url,
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database),
            );
        }
        // Own servers stop before their folder goes.
        self.nats.take();
        self.postgres.take();
        // Host tasks a killed executor left running: they work in the stack's folder (its
        // own servers have stopped by now).
        for pid in processes_in(&self.dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if std::thread::panicking() {
            // A failed test's logs are what explains it.
            eprintln!("test folder kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A test image built `FROM scratch` with Debian's static busybox (no registry is
/// reachable on our machines), tagged `saltant-test/busybox:1`. Built once; Docker's cache
/// makes repeats instant.
pub fn busybox_image() -> String {
    const TAG: &str = "saltant-test/busybox:1";
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("busybox-static is installed (deploy/test installs it)");
        let ctx = std::env::temp_dir().join(format!("saltant-busybox-{}", std::process::id()));
        std::fs::create_dir_all(&ctx).expect("build context");
        std::fs::copy(busybox, ctx.join("busybox")).expect("copy busybox");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .expect("Dockerfile");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", TAG])
            .arg(&ctx)
            .output()
            .expect("run docker build");
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&ctx);
    });
    TAG.to_owned()
}

/// Ids of containers (running or not) carrying `label` (`key=value`).
pub fn containers_with_label(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("run docker ps");
    assert!(
        out.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Processes whose environment holds `JOB_UUID=<uuid>`: an instance's process tree.
pub fn processes_of_job(uuid: &str) -> Vec<u32> {
    let needle = format!("JOB_UUID={uuid}");
    processes_where(|proc| {
        std::fs::read(proc.join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
    })
}

/// The processes working in `dir` or below it (the host tasks of a stack).
pub fn processes_in(dir: &std::path::Path) -> Vec<u32> {
    processes_where(|proc| {
        std::fs::read_link(proc.join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
    })
}

fn processes_where(mut matches: impl FnMut(&std::path::Path) -> bool) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if matches(&entry.path()) {
            pids.push(pid);
        }
    }
    pids
}

/// The value of the hidden form field `name` in a web page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("a hidden {name} field in {html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

/// Runs one SQL statement with psql (the test crate needs no database driver).
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new(std::env::var("SALTANT_TEST_PSQL").unwrap_or_else(|_| "psql".into()))
        .args(["-qtA", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .expect("run psql (PostgreSQL client)");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
