//! What a task may take from the executor's environment, by name (a type's
//! `environment_variables`) or by `$NAME` in its command: a snapshot taken when the
//! executor starts, keeping only names `executor.env_allow` matches (everything when it is
//! empty) and none `executor.env_deny` matches — by default saltant's own settings,
//! credentials and the usual database, NATS and telemetry variables. docs/security.md.

use std::collections::HashMap;
use wildmatch::WildMatch;

/// Names never offered to tasks unless the configuration says otherwise (`*` matches any
/// run of characters; case does not matter).
pub const DEFAULT_DENY: &[&str] = &[
    "SALTANT_*",
    "NATS_*",
    "OTEL_*",
    "PG*",
    "CELERY_*",
    "*DATABASE_URL*",
    "*_DSN",
    "*BROKER_URL*",
    "*PASSWORD*",
    "*PASSWD*",
    "*_PASS",
    "*_PWD",
    "*SECRET*",
    "*TOKEN*",
    "*AUTH*",
    "*CREDENTIAL*",
    "*_KEY",
    "*_KEY_*",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DOCKER_*",
    "SSH_AUTH_SOCK",
];

/// The variables tasks may use.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskEnv(HashMap<String, String>);

impl TaskEnv {
    /// From `vars` (the executor's environment), filtered.
    pub fn new(
        vars: impl IntoIterator<Item = (String, String)>,
        allow: &[String],
        deny: &[String],
    ) -> Self {
        let pattern = |p: &String| WildMatch::new_case_insensitive(p);
        let allow: Vec<WildMatch> = allow.iter().map(pattern).collect();
        let deny: Vec<WildMatch> = deny.iter().map(pattern).collect();
        TaskEnv(
            vars.into_iter()
                .filter(|(k, _)| allow.is_empty() || allow.iter().any(|p| p.matches(k)))
                .filter(|(k, _)| !deny.iter().any(|p| p.matches(k)))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        [
            ("HOME", "/root"),
            ("LANG", "C.UTF-8"),
            ("SALTANT_DATABASE_URL", "postgres://secret"),
            ("DATABASE_URL", "postgres://secret"),
            ("NATS_URL", "nats://x"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "auth"),
            ("PGPASSWORD", "pw"),
            ("GITHUB_TOKEN", "t"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("API_KEY", "k"),
            ("MY_DATA_DIR", "/data"),
            ("celery_broker_url", "amqp://u:p@h"),
            ("SENTRY_DSN", "https://k@sentry"),
            ("DB_PASS", "pw"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn secrets_are_not_offered_by_default() {
        let deny: Vec<String> = DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        let env = TaskEnv::new(vars(), &[], &deny);
        for kept in ["HOME", "LANG", "MY_DATA_DIR"] {
            assert!(env.get(kept).is_some(), "{kept}");
        }
        for gone in [
            "SALTANT_DATABASE_URL",
            "DATABASE_URL",
            "NATS_URL",
            "OTEL_EXPORTER_OTLP_HEADERS",
            "PGPASSWORD",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
            "celery_broker_url",
            "SENTRY_DSN",
            "DB_PASS",
        ] {
            assert_eq!(env.get(gone), None, "{gone}");
        }
    }

    #[test]
    fn an_allow_list_keeps_only_its_names_and_deny_still_wins() {
        let allow = vec!["MY_*".to_owned(), "PGPASSWORD".to_owned()];
        let env = TaskEnv::new(vars(), &allow, &["PG*".to_owned()]);
        assert_eq!(env.get("MY_DATA_DIR").as_deref(), Some("/data"));
        assert_eq!(env.get("HOME"), None);
        assert_eq!(env.get("PGPASSWORD"), None);
    }
}
