//! The executor: takes attempts from the dispatch subjects of the queues it serves
//! (`intake`), claims and runs each (`run`, `claim`) in its runtime (`runtime`: host
//! processes, Docker or Singularity containers), streams their output to the logs subject
//! (`output`), stores their files (`results`) and reports every state change as an event.
//! It needs only NATS and its local engines: never PostgreSQL, never the api.

mod claim;
mod heartbeat;
mod intake;
mod output;
mod registry;
mod results;
mod run;
mod run_as;
mod runtime;
mod task_env;

use anyhow::Context as _;
pub use runtime::docker::{DockerConfig, PullPolicy};
pub use runtime::singularity::SingularityConfig;
use saltant_bus::{Bus, BusConfig};
use saltant_core::QueueName;
use serde::Deserialize;
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
    /// Most bytes of output (stdout and stderr together) an attempt keeps: the rest is
    /// dropped, counted, and the truncation recorded with its logs (docs/logs.md).
    pub output_max_bytes: u64,
    /// The user (`name` or `name:group`) host tasks run as. Unset: `nobody` when the
    /// executor runs as root, else the executor's own user (docs/security.md).
    pub run_as: Option<String>,
    /// Names of the executor's environment variables tasks may use (`*` wildcards);
    /// empty: all but `env_deny`'s.
    pub env_allow: Vec<String>,
    /// Names tasks may never use, whatever `env_allow` says (default: saltant's settings,
    /// credentials, database, NATS and telemetry variables; docs/security.md).
    pub env_deny: Vec<String>,
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
            output_max_bytes: 1024 * 1024 * 1024,
            run_as: None,
            env_allow: Vec::new(),
            env_deny: task_env::DEFAULT_DENY
                .iter()
                .map(|s| s.to_string())
                .collect(),
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
    /// Host processes and the engines found at start-up.
    pub runtimes: runtime::Runtimes,
    /// This life's records of running process groups (see `runtime::reap_orphan_groups`).
    pub groups_dir: PathBuf,
    /// Cancelled when running instances must be killed (end of the shutdown grace period).
    pub kill_all: CancellationToken,
    /// What tasks may take from the executor's environment.
    pub task_env: task_env::TaskEnv,
    /// Whom host tasks run as (`None`: the executor's user).
    pub run_as: Option<run_as::RunAs>,
}

impl Shared {
    /// Sets the slots gauge (`saltant_executor_slots`) from the semaphore.
    pub(crate) fn observe_slots(&self) {
        use saltant_telemetry::metrics::{SlotLabels, metrics};
        let free = self.slots.available_permits() as i64;
        let used = i64::from(self.config.slots) - free;
        for (state, n) in [("free", free), ("used", used)] {
            metrics()
                .slots
                .get_or_create(&SlotLabels {
                    executor: self.id.clone(),
                    state,
                })
                .set(n);
        }
    }
}

fn default_id() -> String {
    let host = hostname();
    let suffix: String = Uuid::new_v4().simple().to_string()[..6].to_owned();
    format!("{host}-{suffix}")
}

pub(crate) use saltant_telemetry::hostname;

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
    let mut config = config;
    let queues = config
        .queues
        .iter()
        .map(|q| QueueName::parse(q).map_err(|e| anyhow::anyhow!("queue {q:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let (id, queues) = identity(&bus_config, config.id.take(), queues)?;
    config.id = Some(id);
    config.queues = queues.iter().map(|q| q.as_str().to_owned()).collect();
    let shared = start(&bus_config, make_folders(config)?).await?;
    let tasks = Tasks::spawn(&shared, queues);
    shutdown.cancelled().await;
    tasks.stop(&shared).await;
    if let Ok(kv) = shared.bus.executors_kv().await {
        let _ = kv.delete(&shared.id).await;
    }
    if let Err(e) = shared.bus.client.drain().await {
        tracing::warn!(error = %e, "drain nats connection");
    }
    tracing::info!("executor stopped");
    Ok(())
}

/// The executor's id and queues, as its NATS credentials allow: a credential minted for one
/// executor names its id (which the broker holds its events, output and heartbeats to) and
/// its queues (the only ones it may pull). Unset id and queues come from the credential;
/// set ones must agree with it, else the executor would start and be refused by the broker.
fn identity(
    bus_config: &BusConfig,
    id: Option<String>,
    queues: Vec<QueueName>,
) -> anyhow::Result<(String, Vec<QueueName>)> {
    let Some(path) = &bus_config.credentials_file else {
        return Ok((id.unwrap_or_else(default_id), queues));
    };
    let names = saltant_bus::Names::new(&bus_config.prefix).map_err(|e| anyhow::anyhow!(e))?;
    let info = saltant_bus::auth::CredentialInfo::read(std::path::Path::new(path), &names)?;
    let own = saltant_bus::auth::Grant::check_executor_id(&info.name).is_ok();
    let id = match id {
        Some(id) if own && id != info.name => anyhow::bail!(
            "executor.id is {id:?} but the NATS credentials are for executor {:?}",
            info.name
        ),
        Some(id) => id,
        None if own => info.name.clone(),
        None => default_id(),
    };
    let queues = match info.executor_queues {
        Some(granted) if queues.is_empty() => granted,
        Some(granted) => {
            let refused: Vec<&str> = queues
                .iter()
                .filter(|q| !granted.contains(q))
                .map(QueueName::as_str)
                .collect();
            if !refused.is_empty() {
                anyhow::bail!(
                    "the NATS credentials do not grant queue(s) {}",
                    refused.join(", ")
                );
            }
            queues
        }
        None => queues,
    };
    Ok((id, queues))
}

/// Makes the executor's folders and makes their paths absolute (bind mounts need them).
fn make_folders(mut config: Config) -> anyhow::Result<Config> {
    for dir in [
        &mut config.logs_dir,
        &mut config.results_dir,
        &mut config.temp_dir,
        &mut config.work_dir,
    ] {
        std::fs::create_dir_all(&*dir).with_context(|| format!("create {}", dir.display()))?;
        *dir =
            std::fs::canonicalize(&*dir).with_context(|| format!("resolve {}", dir.display()))?;
    }
    Ok(config)
}

/// Kills what a previous life left running, finds the engines and connects to the bus.
async fn start(bus_config: &BusConfig, config: Config) -> anyhow::Result<Arc<Shared>> {
    let groups_dir = runtime::reap_orphan_groups(&config.temp_dir);
    let runtimes = runtime::Runtimes::detect(&config).await;
    let id = config.id.clone().unwrap_or_else(default_id);
    saltant_telemetry::health::starting("executor");
    let bus = Bus::connect(bus_config, saltant_bus::Service::Executor(id.clone())).await?;
    let task_env = task_env::TaskEnv::new(std::env::vars(), &config.env_allow, &config.env_deny);
    let run_as = run_as::resolve(config.run_as.as_deref())?;
    if let Some(r) = run_as {
        tracing::info!(uid = r.uid, gid = r.gid, "host tasks run as this user");
    }
    let shared = Arc::new(Shared {
        task_env,
        run_as,
        bus,
        slots: Arc::new(Semaphore::new(config.slots as usize)),
        config,
        groups_dir,
        id,
        started_at: chrono::Utc::now(),
        lost_output: std::sync::Mutex::new(std::collections::HashSet::new()),
        registry: registry::Registry::new(Duration::from_secs(bus_config.events_max_age_secs)),
        kill_all: CancellationToken::new(),
        runtimes,
    });
    shared.observe_slots();
    saltant_telemetry::health::started("executor", [("nats", shared.bus.readiness())]);
    tracing::info!(executor = %shared.id, slots = shared.config.slots, queues = ?shared.config.queues, "executor started");
    Ok(shared)
}

/// The executor's tasks, each kind in a tracker of its own so that shutdown waits for
/// exactly the ones each step is about.
struct Tasks {
    /// The intake: the dispatcher, which tracks its own pulls and signal helpers and
    /// waits for them when it stops.
    intake: TaskTracker,
    stop_intake: CancellationToken,
    /// Running attempts.
    work: TaskTracker,
    /// Heartbeats, the terminations watch and the orphan sweep: they outlive the work.
    background: TaskTracker,
    stop_background: CancellationToken,
}

impl Tasks {
    fn spawn(shared: &Arc<Shared>, queues: Vec<QueueName>) -> Tasks {
        let tasks = Tasks {
            intake: TaskTracker::new(),
            stop_intake: CancellationToken::new(),
            work: TaskTracker::new(),
            background: TaskTracker::new(),
            stop_background: CancellationToken::new(),
        };
        let (background, stop) = (&tasks.background, &tasks.stop_background);
        background.spawn(heartbeat::run(shared.clone(), stop.clone()));
        background.spawn(registry::watch(shared.clone(), stop.clone()));
        background.spawn(runtime::docker::reap_orphans(shared.clone(), stop.clone()));
        let served = (!queues.is_empty()).then(|| queues.into_iter().collect());
        tasks.intake.spawn(intake::serve(
            shared.clone(),
            served,
            tasks.stop_intake.clone(),
            tasks.work.clone(),
        ));
        tasks
    }

    /// Stops taking work, gives running instances the grace period, kills what is left,
    /// then stops the background tasks.
    async fn stop(self, shared: &Shared) {
        tracing::info!("executor stopping: no new work");
        self.stop_intake.cancel();
        self.intake.close();
        self.background.close();
        // The intake stops first (no pull is left under way), then running instances get
        // the grace period.
        let grace = Duration::from_secs(shared.config.shutdown_grace_secs);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.intake.wait()).await;
        self.work.close();
        if tokio::time::timeout(grace, self.work.wait()).await.is_err() {
            tracing::warn!(
                left = self.work.len(),
                "grace period over: killing running instances"
            );
            shared.kill_all.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.work.wait()).await;
        }
        self.stop_background.cancel();
        self.background.wait().await;
    }
}
