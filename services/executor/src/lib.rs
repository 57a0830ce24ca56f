//! The executor: pulls attempts from the dispatch subjects of the queues it serves, runs
//! them (host processes here; containers in `docker`/`singularity` runtimes), streams their
//! output to the logs subject and reports every state change as an event. It needs only
//! NATS and its local engine: never PostgreSQL, never the api.

mod docker;
mod heartbeat;
mod host;
mod intake;
mod output;
mod registry;
mod results;
mod run;
mod singularity;

use anyhow::Context as _;
pub use docker::{DockerConfig, PullPolicy};
use saltant_bus::{Bus, BusConfig};
use saltant_core::QueueName;
use serde::Deserialize;
pub use singularity::SingularityConfig;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Executor configuration (`[executor]` in the config file, `SALTANT_EXECUTOR__…` variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Queues served; empty means every queue that has work.
    pub queues: Vec<String>,
    /// Instances run at once.
    pub slots: u32,
    /// Stable id of this executor; default `<hostname>-<random>`.
    pub id: Option<String>,
    /// `WORKER_LOGS_DIRECTORY`: `<logs_dir>/<uuid>/` holds each instance's output files.
    pub logs_dir: PathBuf,
    /// `WORKER_RESULTS_DIRECTORY`.
    pub results_dir: PathBuf,
    /// `WORKER_TEMP_DIRECTORY`: argument files for `json_file_option`.
    pub temp_dir: PathBuf,
    /// Per-instance working folders of host executables (`<work_dir>/<uuid>`, removed
    /// after the instance).
    pub work_dir: PathBuf,
    /// Milliseconds between looks at the dispatch stream for work that no ready signal
    /// announced (redelivered dispatches, signals missed while disconnected).
    pub rescan_ms: u64,
    /// Seconds between heartbeats (the bucket forgets an executor after 15 s).
    pub heartbeat_secs: u64,
    /// On shutdown, seconds running instances get to finish before they are killed.
    pub shutdown_grace_secs: u64,
    /// After SIGTERM to a terminated instance, seconds before SIGKILL.
    pub kill_grace_secs: u64,
    /// Most bytes of an attempt's files stored in the results bucket; the rest stay on
    /// the executor's machine and the manifest says so.
    pub results_max_bytes: u64,
    /// Docker runtime (`[executor.docker]`).
    pub docker: DockerConfig,
    /// Singularity/Apptainer runtime (`[executor.singularity]`).
    pub singularity: SingularityConfig,
}

impl Default for Config {
    fn default() -> Self {
        let base = std::env::temp_dir().join("saltant-executor");
        Config {
            queues: Vec::new(),
            slots: 4,
            id: None,
            logs_dir: base.join("logs"),
            results_dir: base.join("results"),
            temp_dir: base.join("tmp"),
            work_dir: base.join("work"),
            rescan_ms: 2000,
            heartbeat_secs: 5,
            shutdown_grace_secs: 8,
            kill_grace_secs: 5,
            results_max_bytes: 1024 * 1024 * 1024,
            docker: DockerConfig::default(),
            singularity: SingularityConfig::default(),
        }
    }
}

/// State shared by the executor's tasks.
pub(crate) struct Shared {
    pub bus: Bus,
    pub config: Config,
    pub id: String,
    pub slots: Arc<Semaphore>,
    /// When this life of the executor began (in its heartbeats and claims).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Instances whose output could not all be stored on the bus: their capture files go
    /// to the results bucket instead.
    pub lost_output: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    /// Running attempts and termination requests.
    pub registry: registry::Registry,
    /// The local Docker engine, if one answered at start-up.
    pub docker: Option<docker::Engine>,
    /// The Singularity/Apptainer CLI, if one is installed.
    pub singularity: Option<singularity::Cli>,
    /// This life's records of running process groups (see `host::reap_orphan_groups`).
    pub groups_dir: PathBuf,
    /// Cancelled when running instances must be killed (end of the shutdown grace period).
    pub kill_all: CancellationToken,
}

impl Shared {
    /// What this executor can run (`executable`, `docker`) and the engines' versions.
    pub(crate) fn capabilities(&self) -> (Vec<String>, std::collections::BTreeMap<String, String>) {
        let mut c = vec!["executable".to_owned()];
        let mut engines = std::collections::BTreeMap::new();
        if let Some(engine) = &self.docker {
            c.push("docker".to_owned());
            engines.insert("docker".to_owned(), engine.version.clone());
        }
        if let Some(cli) = &self.singularity {
            c.push("singularity".to_owned());
            engines.insert("singularity".to_owned(), cli.version.clone());
        }
        (c, engines)
    }
}

fn default_id() -> String {
    let host = hostname();
    let suffix: String = Uuid::new_v4().simple().to_string()[..6].to_owned();
    format!("{host}-{suffix}")
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "executor".into())
}

/// Runs until `shutdown` is cancelled, then stops taking work, lets running instances
/// finish within the grace period, kills what is left and returns.
pub async fn run(
    bus_config: BusConfig,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if config.slots == 0 {
        anyhow::bail!("executor slots must be at least 1");
    }
    let queues = config
        .queues
        .iter()
        .map(|q| QueueName::parse(q).map_err(|e| anyhow::anyhow!("queue {q:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = config;
    for dir in [
        &mut config.logs_dir,
        &mut config.results_dir,
        &mut config.temp_dir,
        &mut config.work_dir,
    ] {
        std::fs::create_dir_all(&*dir).with_context(|| format!("create {}", dir.display()))?;
        // Bind mounts need absolute paths.
        *dir =
            std::fs::canonicalize(&*dir).with_context(|| format!("resolve {}", dir.display()))?;
    }
    let groups_dir = host::reap_orphan_groups(&config.temp_dir);
    let engine = docker::connect(&config.docker).await;
    let singularity_cli = singularity::detect(&config.singularity).await;
    let id = config.id.clone().unwrap_or_else(default_id);
    let bus = Bus::connect(&bus_config, &format!("saltant-executor {id}")).await?;
    let shared = Arc::new(Shared {
        bus,
        slots: Arc::new(Semaphore::new(config.slots as usize)),
        config,
        groups_dir,
        id: id.clone(),
        started_at: chrono::Utc::now(),
        lost_output: std::sync::Mutex::new(std::collections::HashSet::new()),
        registry: registry::Registry::new(Duration::from_secs(bus_config.events_max_age_secs)),
        kill_all: CancellationToken::new(),
        docker: engine,
        singularity: singularity_cli,
    });
    tracing::info!(executor = %id, slots = shared.config.slots, queues = ?shared.config.queues, "executor started");

    let stop_intake = shutdown.child_token();
    let work = TaskTracker::new();
    let background = TaskTracker::new();
    let hb_stop = CancellationToken::new();
    background.spawn(heartbeat::run(shared.clone(), hb_stop.clone()));
    background.spawn(registry::watch(shared.clone(), hb_stop.clone()));
    background.spawn(docker::reap_orphans(shared.clone(), hb_stop.clone()));
    let intake_done = TaskTracker::new();
    let served = (!queues.is_empty()).then(|| queues.into_iter().collect());
    intake_done.spawn(intake::serve(
        shared.clone(),
        served,
        stop_intake.clone(),
        work.clone(),
    ));
    intake_done.close();

    shutdown.cancelled().await;
    tracing::info!("executor stopping: no new work");
    stop_intake.cancel();
    background.close();
    // The intake stops first (no pull is left under way), then running instances get
    // the grace period.
    let grace = Duration::from_secs(shared.config.shutdown_grace_secs);
    let _ = tokio::time::timeout(Duration::from_secs(5), intake_done.wait()).await;
    work.close();
    if tokio::time::timeout(grace, work.wait()).await.is_err() {
        tracing::warn!(
            left = work.len(),
            "grace period over: killing running instances"
        );
        shared.kill_all.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), work.wait()).await;
    }
    hb_stop.cancel();
    background.wait().await;
    if let Ok(kv) = shared.bus.executors_kv().await {
        let _ = kv.delete(&shared.id).await;
    }
    if let Err(e) = shared.bus.client.drain().await {
        tracing::warn!(error = %e, "drain nats connection");
    }
    tracing::info!("executor stopped");
    Ok(())
}
