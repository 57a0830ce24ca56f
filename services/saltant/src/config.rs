//! Configuration layering: defaults → optional TOML file → `SALTANT_…` environment
//! variables (`SALTANT_API__LISTEN`, `SALTANT_EXECUTOR__SLOTS`, …; `SALTANT_DATABASE_URL` and
//! `SALTANT_NATS_URL` are shorthands). Unknown keys are errors, so typos do not pass silently.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct Settings {
    pub database: saltant_store::StoreConfig,
    pub bus: saltant_bus::BusConfig,
    pub api: saltant_api::Config,
    pub scheduler: saltant_scheduler::Config,
    pub executor: saltant_executor::Config,
    pub log_collector: saltant_log_collector::Config,
}

#[derive(Serialize)]
struct Empty {}

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut f = Figment::from(Serialized::defaults(Empty {}));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            f = f.merge(Toml::file(path));
        }
        f = f
            // Only nested keys (`SECTION__KEY`): other SALTANT_ variables belong to others
            // (saltant-py's SALTANT_API_URL and SALTANT_AUTH_TOKEN, say).
            .merge(
                Env::prefixed("SALTANT_")
                    .filter(|k| k.as_str().contains("__"))
                    .split("__"),
            )
            .merge(
                Env::raw()
                    .only(&["SALTANT_DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(
                Env::raw()
                    .only(&["SALTANT_NATS_URL"])
                    .map(|_| "bus.url".into()),
            );
        Ok(f.extract()?)
    }
}
