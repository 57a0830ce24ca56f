//! Broker-level security: NATS decentralized auth. One operator signs two accounts (the
//! system account and saltant's), saltant's account signs one user per credential, and a
//! user's permissions are derived here from the bus names, so that what a credential
//! allows and what the services publish cannot drift apart (docs/security.md).
//!
//! - services get what their role does: the scheduler owns the topology; the api submits,
//!   records, requests terminations and reads; the log-collector reads output;
//! - an executor credential names its queues (or all) and its executor id (or any): it may
//!   pull and ack only those queues' dispatches, claim only their attempts, and publish
//!   events, output and heartbeats only under its own id, which is a token of their
//!   subjects. Its replies come on its own inbox prefix, so it cannot read another
//!   client's.

use crate::Names;
use anyhow::{Context, bail};
use nats_io_jwt::{Account, KeyPair, Operator, Permission, Token, User};
use saltant_core::QueueName;
use saltant_core::names::token;
use std::path::Path;

/// What a credential is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Everything in the account: `saltant all`, tests, operators' tools.
    Admin,
    Scheduler,
    Api,
    LogCollector,
    /// Executors: one id (`None`: any, a fleet credential) serving some queues (`None`:
    /// every queue).
    Executor {
        id: Option<String>,
        queues: Option<Vec<QueueName>>,
    },
}

/// Names credentials cannot give an executor: the services' event sources and roles.
const RESERVED: [&str; 5] = ["admin", "api", "scheduler", "log-collector", "fleet"];

/// The publishing source of the scheduler's and the api's events (a token of the event
/// subjects; an executor's is its id).
pub const SCHEDULER_SOURCE: &str = "scheduler";
pub const API_SOURCE: &str = "api";

impl Grant {
    /// The credential's name: its role, or the executor's id (`fleet` for any id).
    pub fn name(&self) -> String {
        match self {
            Grant::Admin => "admin".into(),
            Grant::Scheduler => "scheduler".into(),
            Grant::Api => "api".into(),
            Grant::LogCollector => "log-collector".into(),
            Grant::Executor { id: Some(id), .. } => id.clone(),
            Grant::Executor { id: None, .. } => "fleet".into(),
        }
    }

    /// An executor id a credential can name: 1-64 ASCII letters, digits, `_` or `-`, not a
    /// service's name.
    pub fn check_executor_id(id: &str) -> anyhow::Result<()> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            bail!("executor id {id:?} must be 1-64 ASCII letters, digits, _ or -");
        }
        if RESERVED.contains(&id) {
            bail!("executor id {id:?} is reserved");
        }
        Ok(())
    }

    /// What the credential may publish and subscribe to.
    pub fn permissions(&self, n: &Names) -> Permissions {
        let p = n.prefix();
        let inbox = format!("{}.>", inbox_prefix(&self.name()));
        let js = |api: &str| format!("$JS.API.{api}");
        let kv = |bucket: String, key: &str| format!("$KV.{bucket}.{key}");
        match self {
            Grant::Admin => Permissions {
                publish: vec![">".into()],
                subscribe: vec![">".into()],
            },
            Grant::Scheduler => Permissions {
                publish: vec![
                    format!("{p}.>"),
                    js(">"),
                    "$JS.ACK.>".into(),
                    "$JS.FC.>".into(),
                    kv(n.executors_bucket(), ">"),
                    kv(n.terminations_bucket(), ">"),
                    kv(n.claims_bucket(), ">"),
                    kv(n.leases_bucket(), ">"),
                ],
                subscribe: vec![format!("{p}.>"), inbox],
            },
            Grant::Api => {
                let readable = [
                    n.events_stream(),
                    Names::bucket_stream(&n.executors_bucket()),
                    Names::bucket_stream(&n.terminations_bucket()),
                    format!("OBJ_{}", n.results_bucket()),
                ];
                let mut publish = vec![
                    n.submit(),
                    n.event_of_source_any(API_SOURCE),
                    kv(n.terminations_bucket(), "*"),
                    js("INFO"),
                    js("STREAM.INFO.*"),
                    js("CONSUMER.INFO.*.*"),
                    js("STREAM.MSG.GET.*"),
                    js("DIRECT.GET.>"),
                ];
                for s in readable {
                    // Ordered consumers (unnamed, or named with a filter).
                    publish.push(js(&format!("CONSUMER.CREATE.{s}")));
                    publish.push(js(&format!("CONSUMER.CREATE.{s}.>")));
                    publish.push(js(&format!("CONSUMER.DELETE.{s}.>")));
                    publish.push(format!("$JS.FC.{s}.>"));
                }
                Permissions {
                    publish,
                    subscribe: vec![inbox, format!("{p}.stored.*")],
                }
            }
            Grant::LogCollector => {
                let d = n.log_collector();
                Permissions {
                    publish: vec![
                        js("INFO"),
                        js("STREAM.INFO.*"),
                        js(&format!("CONSUMER.INFO.{}.{}", d.stream, d.name)),
                        js(&format!("CONSUMER.MSG.NEXT.{}.{}", d.stream, d.name)),
                        format!("$JS.ACK.{}.{}.>", d.stream, d.name),
                        format!("{p}.stored.*"),
                    ],
                    subscribe: vec![inbox],
                }
            }
            Grant::Executor { id, queues } => executor_permissions(n, id.as_deref(), queues, inbox),
        }
    }
}

fn executor_permissions(
    n: &Names,
    id: Option<&str>,
    queues: &Option<Vec<QueueName>>,
    inbox: String,
) -> Permissions {
    let p = n.prefix();
    let js = |api: &str| format!("$JS.API.{api}");
    let dispatch = n.dispatch_stream();
    let me = id.map_or("*".to_owned(), token);
    // Queue tokens: each granted queue's, or `*` for every queue.
    let tokens: Vec<String> = match queues {
        Some(qs) => qs.iter().map(QueueName::token).collect(),
        None => vec!["*".into()],
    };
    let consumer = |t: &str| {
        if t == "*" {
            "*".to_owned()
        } else {
            format!("queue-{t}")
        }
    };
    let mut publish = vec![
        js("INFO"),
        // Stream settings and counts (not messages): the topology it binds to, and the
        // rescan's count of waiting dispatches by queue.
        js("STREAM.INFO.*"),
        // The last event of an attempt (a redelivered dispatch), live executors' heartbeats.
        js(&format!("STREAM.MSG.GET.{}", n.events_stream())),
        js(&format!("DIRECT.GET.{}.>", n.events_stream())),
        match id {
            Some(id) => format!("$KV.{}.{id}", n.executors_bucket()),
            None => format!("$KV.{}.>", n.executors_bucket()),
        },
        format!("$O.{}.>", n.results_bucket()),
    ];
    for t in &tokens {
        let c = consumer(t);
        publish.push(js(&format!("CONSUMER.INFO.{dispatch}.{c}")));
        publish.push(js(&format!("CONSUMER.MSG.NEXT.{dispatch}.{c}")));
        publish.push(format!("$JS.ACK.{dispatch}.{c}.>"));
        publish.push(format!("{p}.events.v2.{t}.*.{me}"));
        publish.push(format!("{p}.logs.{me}.{t}.*"));
        publish.push(format!("$KV.{}.{t}.>", n.claims_bucket()));
        let claims = Names::bucket_stream(&n.claims_bucket());
        publish.push(js(&format!(
            "DIRECT.GET.{claims}.$KV.{}.{t}.>",
            n.claims_bucket()
        )));
    }
    // Buckets it reads: heartbeats of claimants, termination requests watched with history.
    for s in [
        Names::bucket_stream(&n.executors_bucket()),
        Names::bucket_stream(&n.terminations_bucket()),
    ] {
        publish.push(js(&format!("CONSUMER.CREATE.{s}")));
        publish.push(js(&format!("CONSUMER.CREATE.{s}.>")));
        publish.push(js(&format!("CONSUMER.DELETE.{s}.>")));
        publish.push(format!("$JS.FC.{s}.>"));
        publish.push(js(&format!("DIRECT.GET.{s}.>")));
        publish.push(js(&format!("STREAM.MSG.GET.{s}")));
    }
    let results = format!("OBJ_{}", n.results_bucket());
    publish.push(js(&format!("STREAM.MSG.GET.{results}")));
    publish.push(js(&format!("DIRECT.GET.{results}.>")));
    publish.push(js(&format!("STREAM.PURGE.{results}")));
    let mut subscribe = vec![inbox, format!("{p}.control.{me}")];
    subscribe.extend(tokens.iter().map(|t| format!("{p}.ready.{t}")));
    Permissions { publish, subscribe }
}

/// Subjects a user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The prefix of a credential's reply subjects (`_INBOX_<name>`), which only it may read.
pub fn inbox_prefix(credential_name: &str) -> String {
    format!("_INBOX_{}", token(credential_name))
}

/// What a credentials file says of itself: its name and, for an executor, the queues it
/// may serve (read back from its permissions; `None`: every queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub name: String,
    /// The user's public key (what a revocation names).
    pub user: String,
    pub executor_queues: Option<Vec<QueueName>>,
}

impl CredentialInfo {
    pub fn read(path: &Path, names: &Names) -> anyhow::Result<CredentialInfo> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read credentials {}", path.display()))?;
        Self::parse(&text, names)
    }

    pub fn parse(creds: &str, names: &Names) -> anyhow::Result<CredentialInfo> {
        let jwt = creds
            .split("-----BEGIN NATS USER JWT-----")
            .nth(1)
            .and_then(|rest| rest.split("------END NATS USER JWT------").next())
            .map(str::trim)
            .context("no user JWT in the credentials")?;
        let body = jwt.split('.').nth(1).context("malformed user JWT")?;
        let claims: serde_json::Value = serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(body.as_bytes())
                .context("malformed user JWT")?,
        )
        .context("malformed user JWT")?;
        let name = claims["name"].as_str().unwrap_or_default().to_owned();
        let user = claims["sub"].as_str().unwrap_or_default().to_owned();
        let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.", names.dispatch_stream());
        let allowed: Vec<&str> = claims["nats"]["pub"]["allow"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let consumers: Vec<&str> = allowed
            .iter()
            .filter_map(|s| s.strip_prefix(next.as_str()))
            .collect();
        let executor_queues = if consumers.contains(&"*") || consumers.is_empty() {
            None
        } else {
            let qs: Option<Vec<QueueName>> = consumers
                .iter()
                .map(|c| c.strip_prefix("queue-").and_then(QueueName::from_token))
                .collect();
            Some(qs.context("unreadable queue in the credentials")?)
        };
        Ok(CredentialInfo {
            name,
            user,
            executor_queues,
        })
    }
}

/// The keys that sign: the operator's, the system account's and saltant's account's.
pub struct Authority {
    operator: KeyPair,
    system: KeyPair,
    account: KeyPair,
    /// Signed once and kept: servers cannot reload a changed operator, and need not reload
    /// the system account; only saltant's account changes (revocations).
    operator_jwt: String,
    system_jwt: String,
}

/// Files of an authority folder (`saltant admin nats-auth --dir`).
pub const SERVER_CONFIG_FILE: &str = "nats-auth.conf";
pub const ACCOUNT_KEY_FILE: &str = "account.nk";
const OPERATOR_KEY_FILE: &str = "operator.nk";
const OPERATOR_JWT_FILE: &str = "operator.jwt";
const SYSTEM_JWT_FILE: &str = "system.jwt";
const REVOKED_FILE: &str = "revoked.json";

/// Revoked users: public key → Unix time from which their JWTs no longer count.
type Revoked = std::collections::BTreeMap<String, i64>;
const SYSTEM_KEY_FILE: &str = "system.nk";

impl Authority {
    pub fn generate() -> anyhow::Result<Authority> {
        let operator = KeyPair::new_operator();
        let system = KeyPair::new_account();
        let claims: Operator = Operator::builder()
            .system_account(Some(
                system
                    .public_key()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ))
            .try_into()
            .map_err(|e| anyhow::anyhow!("operator claims: {e}"))?;
        let operator_jwt = Token::new(operator.public_key())
            .name("saltant")
            .claims(claims)
            .sign(&operator);
        // The system account has no JetStream.
        let system_claims: Account = Account::builder()
            .limits(Some(nats_io_jwt::OperatorLimits {
                disk_storage: 0,
                mem_storage: 0,
                ..Default::default()
            }))
            .try_into()
            .map_err(|e| anyhow::anyhow!("account claims: {e}"))?;
        let system_jwt = Token::new(system.public_key())
            .name("SYS")
            .claims(system_claims)
            .sign(&operator);
        Ok(Authority {
            operator,
            system,
            account: KeyPair::new_account(),
            operator_jwt,
            system_jwt,
        })
    }

    /// The account's key seed, which mints users (keep it secret).
    pub fn account_seed(&self) -> anyhow::Result<String> {
        self.account
            .seed()
            .map_err(|e| anyhow::anyhow!("account seed: {e}"))
    }

    /// The NATS server configuration fragment that trusts this authority (include it
    /// from every node's configuration): the operator, the system account, and both
    /// accounts preloaded into a memory resolver.
    pub fn server_config(&self) -> anyhow::Result<String> {
        self.server_config_revoking(&Revoked::new())
    }

    /// [`Authority::server_config`] whose account refuses the users in `revoked` (user
    /// public key → the time from which its JWTs no longer count).
    fn server_config_revoking(&self, revoked: &Revoked) -> anyhow::Result<String> {
        let revocations: std::collections::HashMap<nats_io_jwt::RevocationListKey, i64> = revoked
            .iter()
            .map(|(k, t)| {
                let key = k.as_str().try_into().map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok((key, *t))
            })
            .collect::<anyhow::Result<_>>()?;
        // Unlimited (JetStream included): the claims' defaults would allow nothing.
        let claims: Account = Account::builder()
            .limits(Some(nats_io_jwt::OperatorLimits::default()))
            .revocations((!revocations.is_empty()).then(|| revocations.into()))
            .try_into()
            .map_err(|e| anyhow::anyhow!("account claims: {e}"))?;
        let account_jwt = Token::new(self.account.public_key())
            .name("SALTANT")
            .claims(claims)
            .sign(&self.operator);
        let (operator_jwt, system_jwt) = (&self.operator_jwt, &self.system_jwt);
        Ok(format!(
            "# saltant's NATS authority (saltant admin nats-auth): include this file from\n\
             # every server's configuration. Generated; do not edit.\n\
             operator: \"{operator_jwt}\"\n\
             system_account: \"{sys}\"\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n  {sys}: \"{system_jwt}\"\n  {acc}: \"{account_jwt}\"\n}}\n",
            sys = self.system.public_key(),
            acc = self.account.public_key(),
        ))
    }

    /// A credentials file (`.creds`) for `grant`: a new user key, its JWT signed by the
    /// account, with the grant's permissions.
    pub fn credentials(&self, grant: &Grant, names: &Names) -> anyhow::Result<String> {
        if let Grant::Executor { id: Some(id), .. } = grant {
            Grant::check_executor_id(id)?;
        }
        if let Grant::Executor {
            queues: Some(qs), ..
        } = grant
            && qs.is_empty()
        {
            bail!("an executor credential needs at least one queue (or every queue)");
        }
        user_credentials(&self.account, grant, names)
    }

    /// Writes the authority into `dir` (keys readable by the owner only), the server
    /// fragment, and a credentials file per service plus a fleet executor credential.
    /// Keeps an existing folder as it is: returns false then.
    pub fn init_dir(dir: &Path, names: &Names) -> anyhow::Result<bool> {
        if dir.join(SERVER_CONFIG_FILE).exists() {
            return Ok(false);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let a = Authority::generate()?;
        let seed = |k: &KeyPair| k.seed().map_err(|e| anyhow::anyhow!("key seed: {e}"));
        write_secret(&dir.join(OPERATOR_JWT_FILE), &a.operator_jwt)?;
        write_secret(&dir.join(SYSTEM_JWT_FILE), &a.system_jwt)?;
        write_secret(&dir.join(OPERATOR_KEY_FILE), &seed(&a.operator)?)?;
        write_secret(&dir.join(SYSTEM_KEY_FILE), &seed(&a.system)?)?;
        write_secret(&dir.join(ACCOUNT_KEY_FILE), &seed(&a.account)?)?;
        for (file, grant) in [
            ("admin.creds", Grant::Admin),
            ("scheduler.creds", Grant::Scheduler),
            ("api.creds", Grant::Api),
            ("log-collector.creds", Grant::LogCollector),
            (
                "executor.creds",
                Grant::Executor {
                    id: None,
                    queues: None,
                },
            ),
        ] {
            write_secret(&dir.join(file), &a.credentials(&grant, names)?)?;
        }
        // Written last: its presence means the folder is complete.
        write_secret(&dir.join(SERVER_CONFIG_FILE), &a.server_config()?)?;
        Ok(true)
    }

    /// The authority kept in `dir` by [`Authority::init_dir`].
    pub fn load(dir: &Path) -> anyhow::Result<Authority> {
        let key = |file: &str| -> anyhow::Result<KeyPair> {
            let seed = std::fs::read_to_string(dir.join(file))
                .with_context(|| format!("read {}", dir.join(file).display()))?;
            KeyPair::from_seed(seed.trim()).map_err(|e| anyhow::anyhow!("{file}: {e}"))
        };
        let jwt = |file: &str| -> anyhow::Result<String> {
            Ok(std::fs::read_to_string(dir.join(file))
                .with_context(|| format!("read {}", dir.join(file).display()))?
                .trim()
                .to_owned())
        };
        Ok(Authority {
            operator: key(OPERATOR_KEY_FILE)?,
            system: key(SYSTEM_KEY_FILE)?,
            account: key(ACCOUNT_KEY_FILE)?,
            operator_jwt: jwt(OPERATOR_JWT_FILE)?,
            system_jwt: jwt(SYSTEM_JWT_FILE)?,
        })
    }

    /// Revokes these credentials (their users' keys, from now on) in the authority of
    /// `dir`: `revoked.json` records every revocation, and the server fragment is written
    /// again with them. The NATS servers refuse those users once they load it (a reload or
    /// a restart). Returns each credential's name and user key.
    pub fn revoke(
        dir: &Path,
        creds: &[String],
        names: &Names,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let authority = Authority::load(dir)?;
        let file = dir.join(REVOKED_FILE);
        let mut revoked: Revoked = match std::fs::read_to_string(&file) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("read {}", file.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Revoked::new(),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("read {}", file.display()))),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let mut done = Vec::new();
        for text in creds {
            let info = CredentialInfo::parse(text, names)?;
            if info.user.is_empty() {
                bail!("credentials of {:?} name no user key", info.name);
            }
            revoked.insert(info.user.clone(), now);
            done.push((info.name, info.user));
        }
        let config = authority.server_config_revoking(&revoked)?;
        replace_secret(&file, &serde_json::to_string_pretty(&revoked)?)?;
        replace_secret(&dir.join(SERVER_CONFIG_FILE), &config)?;
        Ok(done)
    }

    /// The account key of an authority folder, which is all that minting users needs.
    pub fn account_from_file(path: &Path) -> anyhow::Result<KeyPair> {
        let seed = std::fs::read_to_string(path)
            .with_context(|| format!("read account key {}", path.display()))?;
        KeyPair::from_seed(seed.trim()).map_err(|e| anyhow::anyhow!("account key: {e}"))
    }
}

/// A user credential for `grant`, signed by `account`.
pub fn user_credentials(account: &KeyPair, grant: &Grant, names: &Names) -> anyhow::Result<String> {
    let perms = grant.permissions(names);
    let user = KeyPair::new_user();
    let claims: User = User::builder()
        .pub_(Some(Permission::from(perms.publish)))
        .sub(Some(Permission::from(perms.subscribe)))
        .subs(-1)
        .data(-1)
        .payload(-1)
        .try_into()
        .map_err(|e| anyhow::anyhow!("user claims: {e}"))?;
    let jwt = Token::new(user.public_key())
        .name(grant.name())
        .claims(claims)
        .sign(account);
    let seed = user.seed().map_err(|e| anyhow::anyhow!("user seed: {e}"))?;
    Ok(format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    ))
}

/// Writes `text` to `path` in one step (a new file renamed over it), owner-only.
fn replace_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    write_secret(&tmp, text)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replace {}", path.display()))
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_say_their_name_and_queues() {
        let names = Names::default();
        let a = Authority::generate().expect("authority");
        let q = |s: &str| QueueName::parse(s).expect("valid");
        let grant = Grant::Executor {
            id: Some("gpu-1".into()),
            queues: Some(vec![q("gpu@lab"), q("cpu")]),
        };
        let creds = a.credentials(&grant, &names).expect("minted");
        let info = CredentialInfo::parse(&creds, &names).expect("readable");
        assert_eq!(info.name, "gpu-1");
        assert_eq!(info.executor_queues, Some(vec![q("gpu@lab"), q("cpu")]));
        let fleet = Grant::Executor {
            id: None,
            queues: None,
        };
        let info = CredentialInfo::parse(&a.credentials(&fleet, &names).expect("minted"), &names)
            .expect("readable");
        assert_eq!((info.name.as_str(), info.executor_queues), ("fleet", None));
        let api =
            CredentialInfo::parse(&a.credentials(&Grant::Api, &names).expect("minted"), &names)
                .expect("readable");
        assert_eq!((api.name.as_str(), api.executor_queues), ("api", None));
    }

    #[test]
    fn executor_permissions_name_only_its_queues_and_id() {
        let names = Names::default();
        let grant = Grant::Executor {
            id: Some("h1".into()),
            queues: Some(vec![QueueName::parse("a").expect("valid")]),
        };
        let p = grant.permissions(&names);
        for s in &p.publish {
            assert!(
                !s.contains(".b")
                    && (!s.contains("events")
                        || s.ends_with(".h1")
                        || s.contains("INFO")
                        || s.contains("GET")),
                "{s}"
            );
        }
        assert!(p.publish.contains(&"saltant.events.v2.a.*.h1".to_owned()));
        assert!(
            p.publish
                .contains(&"$JS.API.CONSUMER.MSG.NEXT.SALTANT_DISPATCH.queue-a".to_owned())
        );
        assert!(p.subscribe.contains(&"_INBOX_h1.>".to_owned()));
        assert!(!p.subscribe.iter().any(|s| s.starts_with("_INBOX.")));
        for bad in ["", "a.b", "api", "fleet", &"x".repeat(65)] {
            assert!(Grant::check_executor_id(bad).is_err(), "{bad}");
        }
    }
}
