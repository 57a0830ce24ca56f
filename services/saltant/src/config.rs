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
    pub telemetry: saltant_telemetry::Config,
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

impl Settings {
    /// Checks every setting before anything starts (no connection made, no port bound),
    /// naming each problem by its key. Values that would fail later, loop forever or panic
    /// (a zero interval, no slots, a short JWT key) are refused here.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems: Vec<String> = self
            .minimums()
            .into_iter()
            .filter(|(_, value, min)| value < min)
            .map(|(key, value, min)| format!("{key} is {value}; it must be at least {min}"))
            .collect();
        self.check_bus(&mut problems);
        self.check_others(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// (key, value, smallest value that works).
    fn minimums(&self) -> Vec<(&'static str, u64, u64)> {
        let (d, b, a) = (&self.database, &self.bus, &self.api);
        let (s, e, l) = (&self.scheduler, &self.executor, &self.log_collector);
        let mut m = vec![
            ("database.max_connections", d.max_connections.into(), 1),
            ("database.acquire_timeout_secs", d.acquire_timeout_secs, 1),
            ("bus.replicas", b.replicas as u64, 1),
            ("bus.dispatch_ack_wait_secs", b.dispatch_ack_wait_secs, 1),
            ("bus.events_max_age_secs", b.events_max_age_secs, 1),
            ("bus.logs_max_age_secs", b.logs_max_age_secs, 1),
            ("bus.results_max_age_secs", b.results_max_age_secs, 1),
            ("api.max_body_bytes", a.max_body_bytes as u64, 1024),
            (
                "api.jwt_access_lifetime_secs",
                a.jwt_access_lifetime_secs,
                1,
            ),
            (
                "api.jwt_refresh_lifetime_secs",
                a.jwt_refresh_lifetime_secs,
                1,
            ),
            ("api.session_lifetime_secs", a.session_lifetime_secs, 1),
            ("api.header_timeout_secs", a.header_timeout_secs, 1),
            ("api.body_timeout_secs", a.body_timeout_secs, 1),
            ("api.max_connections", a.max_connections as u64, 1),
            ("api.statement_timeout_secs", a.statement_timeout_secs, 1),
            ("api.list_timeout_secs", a.list_timeout_secs, 1),
            ("api.lists_per_user", a.lists_per_user.into(), 1),
            ("scheduler.record_batch", s.record_batch as u64, 1),
            ("scheduler.dispatch_batch", s.dispatch_batch as u64, 1),
            ("scheduler.resubmit_after_secs", s.resubmit_after_secs, 1),
            ("scheduler.sweep_every_secs", s.sweep_every_secs, 1),
            (
                "scheduler.lost_check_every_secs",
                s.lost_check_every_secs,
                1,
            ),
            ("scheduler.max_attempts", s.max_attempts.into(), 1),
            ("scheduler.metrics_every_secs", s.metrics_every_secs, 1),
            ("executor.slots", e.slots.into(), 1),
            ("executor.rescan_ms", e.rescan_ms, 10),
            ("executor.heartbeat_secs", e.heartbeat_secs, 1),
            (
                "executor.docker.pull_timeout_secs",
                e.docker.pull_timeout_secs,
                1,
            ),
            (
                "executor.docker.orphan_sweep_secs",
                e.docker.orphan_sweep_secs,
                1,
            ),
            (
                "executor.singularity.pull_timeout_secs",
                e.singularity.pull_timeout_secs,
                1,
            ),
            ("log_collector.batch", l.batch as u64, 1),
            ("log_collector.batch_bytes", l.batch_bytes as u64, 1),
        ];
        if let Some(t) = s.run_timeout_secs {
            m.push(("scheduler.run_timeout_secs", t, 1));
        }
        m
    }

    fn check_bus(&self, problems: &mut Vec<String>) {
        let b = &self.bus;
        if b.url.trim().is_empty() {
            problems.push("bus.url must name at least one NATS server".into());
        }
        for url in b.url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if let Err(e) = url.parse::<saltant_bus::async_nats::ServerAddr>() {
                problems.push(format!(
                    "bus.url: {url:?} is not a NATS server address: {e}"
                ));
            }
        }
        if let Err(e) = saltant_bus::Names::new(&b.prefix) {
            problems.push(format!("bus.prefix: {e}"));
        }
        if b.max_queues < 1 {
            problems.push(format!(
                "bus.max_queues is {}; it must be at least 1",
                b.max_queues
            ));
        }
        if b.replicas > 5 {
            problems.push(format!(
                "bus.replicas is {}; JetStream allows at most 5",
                b.replicas
            ));
        }
        for (key, bytes) in [
            ("bus.logs_max_bytes", b.logs_max_bytes),
            ("bus.results_max_bytes", b.results_max_bytes),
        ] {
            if bytes == 0 || bytes < -1 {
                problems.push(format!(
                    "{key} is {bytes}; it must be positive (or -1: no limit)"
                ));
            }
        }
        if let Some(f) = &b.credentials_file
            && !Path::new(f).is_file()
        {
            problems.push(format!("bus.credentials_file {f} is not a readable file"));
        }
    }

    fn check_others(&self, problems: &mut Vec<String>) {
        let e = &self.executor;
        let url = &self.database.url;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            problems.push("database.url must be a postgres:// or postgresql:// URL".into());
        }
        if let Some(k) = &self.api.jwt_secret
            && k.len() < 32
        {
            problems.push(format!(
                "api.jwt_secret is {} bytes; it must be at least 32 (or unset: a key kept in PostgreSQL)",
                k.len()
            ));
        }
        if let Some(t) = &self.api.trace_url
            && !t.contains("{trace_id}")
        {
            problems.push("api.trace_url must contain {trace_id} (where the trace id goes)".into());
        }
        for q in &e.queues {
            if let Err(err) = saltant_core::QueueName::parse(q) {
                problems.push(format!("executor.queues: {q:?}: {err}"));
            }
        }
        for (key, positive) in [
            ("executor.docker.cpus", e.docker.cpus.map(|c| c > 0.0)),
            (
                "executor.docker.memory_bytes",
                e.docker.memory_bytes.map(|m| m > 0),
            ),
            (
                "executor.docker.pids_limit",
                e.docker.pids_limit.map(|p| p > 0),
            ),
        ] {
            if positive == Some(false) {
                problems.push(format!("{key} must be positive when set"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let mut s = Settings::default();
        s.executor.slots = 0;
        s.executor.queues = vec!["ok".into(), "no spaces".into()];
        s.scheduler.sweep_every_secs = 0;
        s.api.jwt_secret = Some("short".into());
        s.bus.prefix = "Bad-Prefix".into();
        s.bus.logs_max_bytes = 0;
        s.database.url = "mysql://x".into();
        let problems = s.validate().expect_err("invalid");
        for key in [
            "executor.slots is 0",
            "executor.queues: \"no spaces\"",
            "scheduler.sweep_every_secs is 0",
            "api.jwt_secret is 5 bytes",
            "bus.prefix",
            "bus.logs_max_bytes is 0",
            "database.url",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key} not in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 7, "{problems:#?}");
    }
}
