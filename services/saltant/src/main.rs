//! The one `saltant` binary: every service (`api`, `scheduler`, `executor`,
//! `log-collector`), all of them in one process (`all`), migrations, admin commands and
//! the client commands of `saltant-cli` (docs/cli.md).

mod config;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use config::Settings;
use futures::FutureExt;
use futures::future::BoxFuture;
use saltant_store::Store;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Parser)]
#[command(
    name = "saltant",
    version,
    about = "Distributed runtime for containerized, mutable task instances"
)]
struct Cli {
    /// Services' TOML configuration file (layered over defaults; SALTANT_… variables
    /// override it); client commands do not read it.
    #[arg(long, short, global = true, env = "SALTANT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API.
    Api,
    /// Run the scheduler.
    Scheduler,
    /// Run an executor.
    Executor {
        /// Queue to serve (repeatable); none means every queue.
        #[arg(long = "queue", short)]
        queues: Vec<String>,
        /// Instances run at once.
        #[arg(long)]
        slots: Option<u32>,
    },
    /// Run the log-collector.
    LogCollector,
    /// Run every service in this process (one machine).
    All {
        /// Queue the executor serves (repeatable); none means every queue.
        #[arg(long = "queue", short)]
        queues: Vec<String>,
        #[arg(long)]
        slots: Option<u32>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Administration.
    #[command(subcommand)]
    Admin(Admin),
    #[command(flatten)]
    Client(Box<saltant_cli::Command>),
}

#[derive(Subcommand)]
enum Admin {
    /// Create a user and print its new API token as the last line.
    CreateUser {
        username: String,
        #[arg(long)]
        superuser: bool,
        #[arg(long, default_value = "")]
        email: String,
        /// Password for the web pages and JWT (none: token access only).
        #[arg(long, env = "SALTANT_NEW_PASSWORD")]
        password: Option<String>,
    },
    /// Set a user's password.
    SetPassword {
        username: String,
        #[arg(long, env = "SALTANT_NEW_PASSWORD")]
        password: String,
    },
    /// Issue a new API token for a user (replacing the old one) and print it.
    CreateToken { username: String },
    /// Revoke a user's API token.
    RevokeToken { username: String },
    /// Make a user a superuser (or not, with --revoke).
    MakeSuperuser {
        username: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Create, once, NATS's trust for saltant in DIR (docs/operations.md): the server
    /// configuration fragment `nats-auth.conf` to include from every NATS node, the account
    /// key (`account.nk`) that mints credentials, and a credentials file per service
    /// (`admin`, `scheduler`, `api`, `log-collector`, and `executor`: any executor, every
    /// queue). An existing DIR is kept as it is.
    NatsAuth {
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Print NATS credentials for one executor: it may pull only these queues' work and
    /// publish only under its id.
    ExecutorCredentials {
        /// A queue it serves (repeat for more).
        #[arg(long = "queue", required_unless_present = "all_queues")]
        queues: Vec<String>,
        /// Every queue instead (a fleet executor of trusted hosts).
        #[arg(long, conflicts_with = "queues")]
        all_queues: bool,
        /// The executor's id (its `executor.id`, which it then takes from the credentials):
        /// 1-64 letters, digits, `_` or `-`.
        #[arg(long)]
        id: String,
        /// The account key of `admin nats-auth` (its DIR/account.nk).
        #[arg(long)]
        account_key: std::path::PathBuf,
    },
    /// Revoke NATS credentials (their user keys, from now on) in the authority of DIR and
    /// write its server fragment again; then reload or restart the NATS servers.
    RevokeCredentials {
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Credentials files to revoke.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Client commands talk to a server: no services' configuration, no telemetry.
    if let Command::Client(c) = cli.command {
        return saltant_cli::main(*c, Cli::command);
    }
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("saltant: invalid configuration: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Command::Executor { queues, slots } | Command::All { queues, slots } = &cli.command {
        if !queues.is_empty() {
            settings.executor.queues = queues.clone();
        }
        if let Some(n) = slots {
            settings.executor.slots = *n;
        }
    }
    if let Err(problems) = settings.validate() {
        eprintln!("saltant: invalid configuration:");
        for p in problems {
            eprintln!("  - {p}");
        }
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("saltant: start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(real_main(cli.command, settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("saltant: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn real_main(command: Command, s: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let store = Store::connect_lazy(&s.database)?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin(a) => admin(a, &s).await,
        service => {
            let instance = format!("{}-{}", saltant_telemetry::hostname(), std::process::id());
            let guard = saltant_telemetry::init(saltant_telemetry::Identity {
                service: match &service {
                    Command::Api => "saltant-api",
                    Command::Scheduler => "saltant-scheduler",
                    Command::Executor { .. } => "saltant-executor",
                    Command::LogCollector => "saltant-log-collector",
                    _ => "saltant",
                },
                version: env!("CARGO_PKG_VERSION"),
                instance: &instance,
            })?;
            let shutdown = CancellationToken::new();
            tokio::spawn(signals(shutdown.clone()));
            // The api serves these on its own port; the others where configured.
            let telemetry = match s.telemetry.listen {
                Some(listen) => Some(tokio::spawn(saltant_telemetry::health::serve(
                    saltant_telemetry::health::bind(listen).await?,
                    shutdown.clone(),
                ))),
                None => None,
            };
            let result = serve(service, &s, shutdown.clone()).await;
            shutdown.cancel();
            if let Some(t) = telemetry
                && let Ok(Err(e)) = t.await
            {
                tracing::error!(error = %format!("{e:#}"), "serve telemetry");
            }
            guard.shutdown();
            result
        }
    }
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: exit at once.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutting down (signal again to exit at once)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    eprintln!("saltant: second signal, exiting now");
    std::process::exit(130);
}

/// The services this process runs.
#[derive(Clone, Copy)]
enum Service {
    Api,
    Scheduler,
    Executor,
    LogCollector,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Api => "api",
            Service::Scheduler => "scheduler",
            Service::Executor => "executor",
            Service::LogCollector => "log-collector",
        }
    }

    /// The service, running until `shutdown`.
    fn run(
        self,
        s: &Settings,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        let (bus, db) = (s.bus.clone(), s.database.clone());
        match self {
            Service::Api => saltant_api::run(bus, db, s.api.clone(), shutdown).boxed(),
            Service::Scheduler => {
                saltant_scheduler::run(bus, db, s.scheduler.clone(), shutdown).boxed()
            }
            Service::Executor => saltant_executor::run(bus, s.executor.clone(), shutdown).boxed(),
            Service::LogCollector => {
                saltant_log_collector::run(bus, db, s.log_collector.clone(), shutdown).boxed()
            }
        }
    }
}

async fn serve(service: Command, s: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let one = match service {
        Command::Api => Service::Api,
        Command::Scheduler => Service::Scheduler,
        Command::Executor { .. } => Service::Executor,
        Command::LogCollector => Service::LogCollector,
        Command::All { .. } => return serve_all(s, shutdown).await,
        Command::Migrate | Command::Admin(_) | Command::Client(_) => return Ok(()),
    };
    one.run(s, shutdown).await
}

/// Every service in this process; one failing stops the others (a half-running system is
/// worse than a stopped one).
async fn serve_all(s: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Migrations first, so the other services find their tables.
    Store::connect_lazy(&s.database)?
        .migrate()
        .await
        .context("migrate database")?;
    let tasks = TaskTracker::new();
    let failed = CancellationToken::new();
    let services = [
        Service::Api,
        Service::Scheduler,
        Service::LogCollector,
        Service::Executor,
    ];
    let handles: Vec<_> = services
        .into_iter()
        .map(|service| {
            let (failed, run) = (failed.clone(), service.run(s, shutdown.clone()));
            tasks.spawn(async move {
                let name = service.name();
                run.await.map_err(|e| {
                    tracing::error!(service = name, error = %format!("{e:#}"), "service failed");
                    failed.cancel();
                    e.context(name)
                })
            })
        })
        .collect();
    tasks.close();
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = failed.cancelled() => shutdown.cancel(),
    }
    let mut first_err = None;
    for h in handles {
        match h.await {
            Ok(Err(e)) if first_err.is_none() => first_err = Some(e),
            Err(e) if first_err.is_none() => first_err = Some(anyhow::Error::new(e)),
            _ => {}
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// `admin nats-auth`: files only, no database or server.
fn nats_auth(dir: &std::path::Path, s: &Settings) -> anyhow::Result<()> {
    let names = saltant_bus::Names::new(&s.bus.prefix).map_err(|e| anyhow::anyhow!(e))?;
    if saltant_bus::auth::Authority::init_dir(dir, &names)? {
        println!("created NATS credentials in {}", dir.display());
    } else {
        println!("kept the NATS credentials in {}", dir.display());
    }
    Ok(())
}

/// `admin revoke-credentials`.
fn revoke_credentials(
    dir: &std::path::Path,
    files: &[std::path::PathBuf],
    s: &Settings,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let names = saltant_bus::Names::new(&s.bus.prefix).map_err(|e| anyhow::anyhow!(e))?;
    let texts = files
        .iter()
        .map(|f| std::fs::read_to_string(f).with_context(|| format!("read {}", f.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (name, user) in saltant_bus::auth::Authority::revoke(dir, &texts, &names)? {
        println!("revoked {name} ({user})");
    }
    println!(
        "reload every NATS server to apply it (nats-server --signal reload, or SIGHUP;          a restart also does)"
    );
    Ok(())
}

/// `admin executor-credentials`: prints a credentials file.
fn executor_credentials(
    queues: &[String],
    all_queues: bool,
    id: String,
    account_key: &std::path::Path,
    s: &Settings,
) -> anyhow::Result<()> {
    use saltant_bus::auth::{Authority, Grant};
    let names = saltant_bus::Names::new(&s.bus.prefix).map_err(|e| anyhow::anyhow!(e))?;
    let queues = if all_queues {
        None
    } else {
        let parsed = queues.iter().map(|q| {
            saltant_core::QueueName::parse(q).map_err(|e| anyhow::anyhow!("queue {q:?}:{e}"))
        });
        Some(parsed.collect::<anyhow::Result<Vec<_>>>()?)
    };
    let grant = Grant::Executor {
        id: Some(id),
        queues,
    };
    let account = Authority::account_from_file(account_key)?;
    print!(
        "{}",
        saltant_bus::auth::user_credentials(&account, &grant, &names)?
    );
    Ok(())
}

async fn admin(a: Admin, s: &Settings) -> anyhow::Result<()> {
    match a {
        Admin::NatsAuth { dir } => nats_auth(&dir, s),
        Admin::ExecutorCredentials {
            queues,
            all_queues,
            id,
            account_key,
        } => executor_credentials(&queues, all_queues, id, &account_key, s),
        Admin::RevokeCredentials { dir, files } => revoke_credentials(&dir, &files, s),
        a => user_admin(a, s).await,
    }
}

async fn user_admin(a: Admin, s: &Settings) -> anyhow::Result<()> {
    let store = Store::connect_lazy(&s.database)?;
    store.migrate().await?;
    let user = |name: String| {
        let store = store.clone();
        async move {
            store
                .user_by_username(&name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
        }
    };
    match a {
        Admin::CreateUser {
            username,
            superuser,
            email,
            password,
        } => {
            if username.is_empty()
                || username.chars().count() > 150
                || !username
                    .chars()
                    .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
            {
                anyhow::bail!("username must be 1-150 letters, digits or @.+-_");
            }
            let u = match store
                .create_user(&username, &email, password.as_deref(), superuser)
                .await
            {
                Err(saltant_store::Error::Duplicate { .. }) => {
                    anyhow::bail!("user {username:?} already exists")
                }
                other => other?,
            };
            let token = store.create_token(u.id).await?;
            println!(
                "created user {username}{}",
                if superuser { " (superuser)" } else { "" }
            );
            println!("{token}");
        }
        Admin::SetPassword { username, password } => {
            let u = user(username).await?;
            store.set_password(u.id, &password).await?;
            println!("password set for {}", u.username);
        }
        Admin::CreateToken { username } => {
            let u = user(username).await?;
            println!("{}", store.create_token(u.id).await?);
        }
        Admin::RevokeToken { username } => {
            let u = user(username).await?;
            let had = store.revoke_token(u.id).await?;
            println!(
                "{}",
                if had {
                    "token revoked"
                } else {
                    "user had no token"
                }
            );
        }
        Admin::MakeSuperuser { username, revoke } => {
            let u = user(username).await?;
            store.set_superuser(u.id, !revoke).await?;
            println!(
                "{} is {}a superuser",
                u.username,
                if revoke { "not " } else { "" }
            );
        }
        Admin::NatsAuth { .. }
        | Admin::ExecutorCredentials { .. }
        | Admin::RevokeCredentials { .. } => {
            anyhow::bail!("not a user command")
        }
    }
    Ok(())
}
