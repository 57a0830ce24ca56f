//! Servers a test owns, for tests that restart them: a nats-server and a PostgreSQL
//! cluster of its own, on free ports, in the test's folder. `deploy/test` exports where
//! their binaries are (SALTANT_TEST_NATS_BIN, SALTANT_TEST_PG_BIN).

use crate::required_env;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A nats-server with JetStream, its store kept across restarts.
pub struct Nats {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// A configuration file to start with (e.g. one that includes saltant's authority).
    config: Option<PathBuf>,
}

impl Nats {
    pub fn start(dir: &Path) -> Nats {
        let mut n = Nats {
            port: free_port(),
            dir: dir.join("nats"),
            child: None,
            config: None,
        };
        n.up();
        n
    }

    /// A server whose configuration file also holds `config` (NATS configuration text).
    pub fn start_with_config(dir: &Path, config: &str) -> Nats {
        let nats_dir = dir.join("nats");
        std::fs::create_dir_all(&nats_dir).expect("nats folder");
        let file = nats_dir.join("nats.conf");
        std::fs::write(&file, config).expect("write nats.conf");
        let mut n = Nats {
            port: free_port(),
            dir: nats_dir,
            child: None,
            config: Some(file),
        };
        n.up();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("nats folder");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .expect("nats log");
        let mut command = Command::new(required_env("SALTANT_TEST_NATS_BIN"));
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.join("store"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        wait_port(self.port, "nats-server");
    }

    /// Has the server read its configuration again (SIGHUP).
    pub fn reload(&self) {
        let child = self.child.as_ref().expect("nats-server running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("signal nats-server");
    }

    /// Stops the server (SIGKILL: a crash, not a clean shutdown).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.down();
    }
}

/// A PostgreSQL cluster run as the `postgres` user (initdb refuses root).
pub struct Postgres {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    let line = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    Command::new("su")
        .args(["postgres", "-s", "/bin/sh", "-c", &line])
        .output()
        .expect("run as postgres")
}

impl Postgres {
    pub fn start(dir: &Path) -> Postgres {
        let bin = PathBuf::from(required_env("SALTANT_TEST_PG_BIN"));
        let root = dir.join("pg");
        std::fs::create_dir_all(&root).expect("pg folder");
        let status = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(&root)
            .status()
            .expect("chown");
        assert!(status.success());
        let data = root.join("data");
        let out = as_postgres(&[
            &bin.join("initdb").display().to_string(),
            "-D",
            &data.display().to_string(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            port: free_port(),
            data,
            bin,
        };
        pg.up();
        pg
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self.data.parent().expect("pg root").display()
        );
        let out = as_postgres(&[
            &self.bin.join("pg_ctl").display().to_string(),
            "-D",
            &self.data.display().to_string(),
            "-l",
            &self
                .data
                .parent()
                .expect("root")
                .join("pg.log")
                .display()
                .to_string(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_port(self.port, "postgres");
    }

    /// Stops the server immediately (`-m immediate`: like a crash).
    pub fn down(&self) {
        let _ = as_postgres(&[
            &self.bin.join("pg_ctl").display().to_string(),
            "-D",
            &self.data.display().to_string(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.down();
    }
}

/// A process's start time (clock ticks since boot), to tell it from a later one that
/// reuses its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}
