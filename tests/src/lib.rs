//! Helpers for integration tests against the real components that `deploy/test` starts:
//! a fresh database and bus prefix per test, the real `saltant` binary as a child process,
//! and `eventually` instead of sleeps. A missing component fails the test loudly.

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A running `saltant all` with its own database, bus prefix, port and folders.
pub struct Stack {
    pub url: String,
    pub token: String,
    pub database: String,
    pub prefix: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
}

impl Stack {
    pub async fn start() -> Stack {
        let admin_url = required_env("SALTANT_TEST_PG_ADMIN_URL");
        let nats = required_env("SALTANT_TEST_NATS_URL");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("t_{id}");
        let prefix = format!("t{}", &id[..12]);
        psql(&admin_url, &format!("CREATE DATABASE \"{database}\""));
        let db_url = admin_url
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/{database}"))
            .expect("database url");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("saltant-test-{id}"));
        std::fs::create_dir_all(&dir).expect("create test folder");
        let env = vec![
            ("SALTANT_DATABASE_URL".to_owned(), db_url),
            ("SALTANT_NATS_URL".to_owned(), nats),
            ("SALTANT_BUS__PREFIX".to_owned(), prefix.clone()),
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
        ];
        let mut stack = Stack {
            url: format!("http://127.0.0.1:{port}/api"),
            token: String::new(),
            database,
            prefix,
            dir,
            child: None,
            http: reqwest::Client::new(),
            env,
        };
        let out = stack.saltant(&["admin", "create-user", "admin", "--superuser"]);
        stack.token = out.lines().last().expect("token line").trim().to_owned();
        assert_eq!(
            stack.token.len(),
            40,
            "admin create-user prints a 40-hex token last: {out}"
        );
        stack.spawn_all();
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
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn saltant all");
        self.child = Some(child);
    }

    pub async fn wait_ready(&self) {
        let url = format!("{}/users/", self.url);
        eventually(Duration::from_secs(30), "the api to answer", || async {
            let r = self
                .http
                .get(&url)
                .header("Authorization", self.auth())
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }

    pub fn auth(&self) -> String {
        format!("Token {}", self.token)
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/{path}", self.url))
            .header("Authorization", self.auth())
            .form(form)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/{path}", self.url))
            .header("Authorization", self.auth())
            .json(body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/{path}", self.url))
            .header("Authorization", self.auth())
            .send()
            .await
            .expect("get");
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
        if let Ok(admin) = std::env::var("SALTANT_TEST_PG_ADMIN_URL") {
            psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database),
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
