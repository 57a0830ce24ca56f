//! saltant's command line client (docs/cli.md): the `saltant` binary's client commands,
//! talking to the REST API as saltant-cli does, with live output, results download, clear
//! errors and documented exit codes.

mod client;
mod commands;
mod config;
mod error;
mod follow;
mod output;
mod resolve;

pub use error::{Error, code};

use clap::{Args, Subcommand};
use output::Format;
use resolve::Kind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the server is and how to print, for every client command.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// The API's URL (e.g. https://host/api/); default: SALTANT_API_URL, then config.yaml.
    #[arg(long, global = true, env = "SALTANT_API_URL", hide_env_values = true)]
    pub url: Option<String>,
    /// The client configuration file (default: $XDG_CONFIG_HOME/saltant-cli/config.yaml).
    #[arg(long, global = true, env = "SALTANT_CLI_CONFIG")]
    pub config_path: Option<PathBuf>,
}

/// `--output table|json` (alias `--format`).
#[derive(Args, Debug, Clone, Copy)]
pub struct Out {
    /// How to print: table for people, json for scripts.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "format",
        value_enum,
        default_value_t
    )]
    pub format: Format,
}

/// The client commands, flattened among the service commands of `saltant`; each takes
/// the connection options ([`Conn`]), which its subcommands inherit.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a task instance, and with --follow watch it run.
    Run {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        args: commands::run::RunArgs,
    },
    /// Task instances: list, get, wait, logs, results, clone, terminate.
    Instances {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        command: commands::instances::Instances,
    },
    /// Task types of both kinds: list, get, create, update.
    Types {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        command: commands::resources::Types,
    },
    /// Task queues: list, get, create, update.
    Queues {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        command: commands::resources::Queues,
    },
    /// Task whitelists: list, get, create, update.
    Whitelists {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        command: commands::resources::Whitelists,
    },
    /// Watch status events, of every instance or one queue's.
    Events {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        args: commands::events::EventsArgs,
    },
    /// Log in with a username and password (or save an API token) into config.yaml.
    Login {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        args: commands::login::LoginArgs,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs a client command; never loads the services' configuration or telemetry.
/// `cli` builds the whole `saltant` command (for completions).
pub fn main(command: Command, cli: fn() -> clap::Command) -> ExitCode {
    if let Command::Completions { shell } = command {
        let mut c = cli();
        clap_complete::generate(shell, &mut c, "saltant", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("saltant: start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(command)) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("saltant: {e:#}");
            e.exit()
        }
    }
}

/// Common to list commands of kinded resources.
#[derive(Args, Debug, Clone)]
pub struct KindArg {
    /// Only this kind (default: both).
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
}
