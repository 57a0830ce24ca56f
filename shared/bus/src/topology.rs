//! Connecting to NATS and creating the streams, consumers and buckets (idempotently).

use crate::error::internal;
use crate::{Error, Names};
use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use saltant_core::QueueName;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to reach the bus. Part of every service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// NATS server URL(s), comma-separated.
    pub url: String,
    /// Prefix of every subject, stream and bucket name.
    pub prefix: String,
    /// Storage replicas of streams and buckets (3 in a 3-node cluster).
    pub replicas: usize,
    /// How long events stay in the events stream for subscribers and replays.
    pub events_max_age_secs: u64,
    /// How long log chunks stay in the logs stream (the log-collector persists them).
    pub logs_max_age_secs: u64,
    /// Size bound of the logs stream; the oldest chunks go first when reached.
    pub logs_max_bytes: i64,
    /// Seconds an executor may hold a dispatch without acking or reporting progress.
    pub dispatch_ack_wait_secs: u64,
    /// How long results (files of the logs and results folders) are kept.
    pub results_max_age_secs: u64,
    /// Size bound of the results bucket (new results are refused beyond it, and reported).
    pub results_max_bytes: i64,
    /// Most queues that can have work (one dispatch consumer each; NATS 2.15 would stop
    /// at 1,000 unless the stream says). An account limit below it fails the start-up.
    pub max_queues: i32,
    /// Credentials file (NATS decentralized auth), optional.
    pub credentials_file: Option<String>,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "saltant".into(),
            replicas: 1,
            events_max_age_secs: 7 * 24 * 3600,
            logs_max_age_secs: 7 * 24 * 3600,
            logs_max_bytes: 4 * 1024 * 1024 * 1024,
            dispatch_ack_wait_secs: 30,
            results_max_age_secs: 30 * 24 * 3600,
            results_max_bytes: 4 * 1024 * 1024 * 1024,
            max_queues: 100_000,
            credentials_file: None,
        }
    }
}

/// Which service connects: its client name, the source token of the events and output it
/// publishes, and whether it creates the topology (the scheduler) or waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    Api,
    Scheduler,
    LogCollector,
    /// An executor, by id.
    Executor(String),
}

impl Service {
    fn client_name(&self) -> String {
        match self {
            Service::Api => "saltant-api".into(),
            Service::Scheduler => "saltant-scheduler".into(),
            Service::LogCollector => "saltant-log-collector".into(),
            Service::Executor(id) => format!("saltant-executor {id}"),
        }
    }

    /// The last token of the event and output subjects it publishes.
    pub fn source(&self) -> &str {
        match self {
            Service::Api => crate::auth::API_SOURCE,
            Service::Scheduler => crate::auth::SCHEDULER_SOURCE,
            Service::LogCollector => "log-collector",
            Service::Executor(id) => id,
        }
    }
}

/// A connection to the bus with its names.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    /// Private: messages go out through the send methods (publish.rs), which own their
    /// subjects, ids and headers.
    pub(crate) js: jetstream::Context,
    pub names: Names,
    pub config: BusConfig,
    /// Who publishes: the last token of its event and output subjects.
    pub(crate) source: String,
    /// Buckets opened once (opening one is a round trip to the server), shared by clones.
    buckets: Arc<Mutex<HashMap<String, kv::Store>>>,
}

/// What to do when JetStream refuses a stream for lack of storage: streams reserve their
/// byte limits up front, against the server's `max_file_store` (by default 75% of the disk
/// free when it started).
fn storage_hint(e: &Error) -> &'static str {
    if format!("{e:#}").contains("insufficient storage") {
        "the NATS servers' JetStream storage is smaller than the logs and results streams \
         reserve (bus.logs_max_bytes + bus.results_max_bytes, on each of bus.replicas \
         nodes): lower those settings, or give JetStream more (max_file_store)"
    } else {
        ""
    }
}

/// A lease not renewed for this long is free for another holder.
pub const LEASE_TTL_SECS: u64 = 15;

/// How long a duplicate (same `Nats-Msg-Id`) is recognised on the work streams.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

impl Bus {
    /// Connects (retrying in the background if the server is not up yet is left to the
    /// client: `retry_on_initial_connect`); the scheduler then creates the topology, every
    /// other service waits until it exists (their credentials may not create it).
    pub async fn connect(config: &BusConfig, service: Service) -> Result<Bus, Error> {
        let names = Names::new(&config.prefix).map_err(|e| Error::Internal(anyhow::anyhow!(e)))?;
        let mut options = async_nats::ConnectOptions::new()
            .name(service.client_name())
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &config.credentials_file {
            // Replies come on the credential's own inbox prefix, the only one it may read.
            let info = crate::auth::CredentialInfo::read(std::path::Path::new(path), &names)
                .map_err(Error::Internal)?;
            options = options
                .credentials_file(path)
                .await
                .map_err(internal("read nats credentials file"))?
                .custom_inbox_prefix(crate::auth::inbox_prefix(&info.name));
        }
        // A cluster's nodes, comma-separated (async-nats takes a list, not one string).
        let servers: Vec<async_nats::ServerAddr> = config
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| u.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Internal(anyhow::anyhow!("bus.url {:?}: {e}", config.url)))?;
        let client = options
            .connect(servers)
            .await
            .map_err(|source| Error::Connect {
                url: config.url.clone(),
                source,
            })?;
        let js = jetstream::new(client.clone());
        let bus = Bus {
            client,
            js,
            names,
            config: config.clone(),
            source: service.source().to_owned(),
            buckets: Arc::default(),
        };
        if service == Service::Scheduler {
            bus.ensure_topology_patiently().await?;
        } else {
            bus.await_topology().await;
        }
        Ok(bus)
    }

    /// [`Bus::ensure_topology`], retried for a minute: a cluster that is starting answers
    /// JetStream requests only once it has elected its meta leader.
    async fn ensure_topology_patiently(&self) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match self.ensure_topology().await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %format!("{e:#}"), hint = storage_hint(&e), "create the bus topology; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    let hint = storage_hint(&e);
                    return Err(if hint.is_empty() {
                        e
                    } else {
                        Error::Internal(anyhow::anyhow!("{e:#}; {hint}"))
                    });
                }
            }
        }
    }

    /// Waits until the scheduler has made the topology: every stream and bucket answer.
    async fn await_topology(&self) {
        let mut waited = false;
        loop {
            match self.topology_present().await {
                Ok(()) => return,
                Err(e) if !waited => {
                    tracing::info!(error = %format!("{e:#}"), "waiting for the scheduler to create the bus topology");
                    waited = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn topology_present(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let n = &self.names;
        for s in self.streams() {
            self.js.get_stream(&s.name).await.context(s.name)?;
        }
        for b in [
            n.executors_bucket(),
            n.terminations_bucket(),
            n.claims_bucket(),
            n.leases_bucket(),
        ] {
            self.js
                .get_stream(Names::bucket_stream(&b))
                .await
                .context(b)?;
        }
        // Made last, after the log-collector's consumer (which not every credential may
        // look at): its presence means the topology is complete.
        self.js
            .get_stream(format!("OBJ_{}", n.results_bucket()))
            .await
            .context("results")?;
        Ok(())
    }

    /// Flushes what is published and closes the connection, at a service's end.
    pub async fn close(&self) {
        if let Err(e) = self.client.drain().await {
            tracing::warn!(error = %e, "drain nats connection");
        }
    }

    /// Creates or updates every stream and bucket. Safe to run from every process at once.
    pub async fn ensure_topology(&self) -> Result<(), Error> {
        for config in self.streams() {
            self.ensure_stream(config).await?;
        }
        self.ensure_buckets().await?;
        // The logs stream keeps chunks only for existing consumers: the log-collector's
        // durable consumer is part of the topology, so no chunk is published to nobody.
        self.log_collector_consumer().await?;
        self.ensure_results_store().await
    }

    /// The configuration of every stream.
    fn streams(&self) -> [stream::Config; 4] {
        let n = &self.names;
        let r = self.config.replicas;
        let work = |name: String, subject: String, description: &str| stream::Config {
            name,
            subjects: vec![subject],
            description: Some(description.to_owned()),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: r,
            ..Default::default()
        };
        [
            work(
                n.submit_stream(),
                n.submit(),
                "saltant: new instances, api to scheduler",
            ),
            // One consumer per queue: NATS 2.15 allows 1,000 consumers on a stream that
            // does not say, so the stream says how many queues there may be.
            stream::Config {
                max_consumers: self.config.max_queues,
                ..work(
                    n.dispatch_stream(),
                    n.dispatch_all(),
                    "saltant: attempts to run, scheduler to executors, one subject per queue",
                )
            },
            stream::Config {
                name: n.events_stream(),
                subjects: vec![n.events_all()],
                description: Some("saltant: every state change of every instance".into()),
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: Duration::from_secs(self.config.events_max_age_secs),
                duplicate_window: Duration::from_secs(120),
                num_replicas: r,
                ..Default::default()
            },
            // Interest retention: a chunk stays until the log-collector stored it (and live
            // tails read it); when the collector lags by `logs_max_bytes`, new chunks are
            // refused (executors back off, then report them lost and keep the files)
            // instead of unread ones being dropped.
            stream::Config {
                name: n.logs_stream(),
                subjects: vec![n.logs_all()],
                description: Some("saltant: live output of instances".into()),
                retention: stream::RetentionPolicy::Interest,
                storage: stream::StorageType::File,
                max_age: Duration::from_secs(self.config.logs_max_age_secs),
                max_bytes: self.config.logs_max_bytes,
                discard: stream::DiscardPolicy::New,
                duplicate_window: Duration::from_secs(120),
                num_replicas: r,
                ..Default::default()
            },
        ]
    }

    /// The key-value buckets: heartbeats, termination requests, claims, leases.
    async fn ensure_buckets(&self) -> Result<(), Error> {
        let n = &self.names;
        for (bucket, max_age, description) in [
            (
                n.executors_bucket(),
                Duration::from_secs(15),
                "saltant: executor heartbeats",
            ),
            (
                n.terminations_bucket(),
                Duration::from_secs(self.config.events_max_age_secs),
                "saltant: termination requests",
            ),
            (
                n.claims_bucket(),
                Duration::from_secs(self.config.events_max_age_secs),
                "saltant: attempts claimed by executors",
            ),
            (
                n.leases_bucket(),
                Duration::from_secs(LEASE_TTL_SECS),
                "saltant: leases of singleton duties",
            ),
        ] {
            self.js
                .create_or_update_key_value(kv::Config {
                    bucket,
                    description: description.into(),
                    history: 1,
                    max_age,
                    storage: stream::StorageType::File,
                    num_replicas: self.config.replicas,
                    ..Default::default()
                })
                .await
                .map_err(internal("create key-value bucket"))?;
        }
        Ok(())
    }

    /// The object store of instances' files, made once (its settings are kept).
    async fn ensure_results_store(&self) -> Result<(), Error> {
        let n = &self.names;
        if self.js.get_object_store(n.results_bucket()).await.is_err() {
            self.js
                .create_object_store(object_store::Config {
                    bucket: n.results_bucket(),
                    description: Some(
                        "saltant: files of instances' logs and results folders".into(),
                    ),
                    max_age: Duration::from_secs(self.config.results_max_age_secs),
                    max_bytes: self.config.results_max_bytes,
                    storage: stream::StorageType::File,
                    num_replicas: self.config.replicas,
                    compression: true,
                    ..Default::default()
                })
                .await
                .map_err(internal("create results bucket"))?;
        }
        Ok(())
    }

    /// Creates or updates a stream. What an existing stream made by an older version
    /// cannot change in place (retention policy, consumer limit) it keeps, with a warning:
    /// it goes on working as it is.
    async fn ensure_stream(&self, config: stream::Config) -> Result<(), Error> {
        let Err(e) = self.js.create_or_update_stream(config.clone()).await else {
            return Ok(());
        };
        let name = config.name.clone();
        let Ok(mut existing) = self.js.get_stream(&name).await else {
            return Err(internal("create or update stream")(e));
        };
        let old = existing
            .info()
            .await
            .map_err(internal("stream info"))?
            .config
            .clone();
        if old.retention == config.retention && old.max_consumers == config.max_consumers {
            return Err(internal("create or update stream")(e));
        }
        tracing::warn!(stream = %name, retention = ?old.retention, max_consumers = old.max_consumers,
            "stream kept with settings it cannot change in place; delete it to apply the new ones");
        let kept = stream::Config {
            retention: old.retention,
            max_consumers: old.max_consumers,
            ..config
        };
        self.js
            .create_or_update_stream(kept)
            .await
            .map_err(internal("update stream"))?;
        Ok(())
    }

    pub async fn results_store(&self) -> Result<object_store::ObjectStore, Error> {
        self.js
            .get_object_store(self.names.results_bucket())
            .await
            .map_err(internal("open results bucket"))
    }

    /// The durable pull consumer of a queue's dispatch subject, created if missing.
    pub async fn dispatch_consumer(
        &self,
        queue: &QueueName,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, Error> {
        let name = self.names.dispatch_consumer(queue);
        let stream = self
            .js
            .get_stream(self.names.dispatch_stream())
            .await
            .map_err(internal("get dispatch stream"))?;
        stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some(format!("saltant: executors of queue {queue}")),
                    filter_subject: self.names.dispatch(queue),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(self.config.dispatch_ack_wait_secs),
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(internal("create dispatch consumer"))
    }

    /// The log-collector's durable consumer of the logs stream.
    pub async fn log_collector_consumer(
        &self,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, Error> {
        self.durable_consumer(&self.names.log_collector(), Duration::from_secs(30))
            .await
    }

    /// A durable pull consumer on one of the streams, for a service's own use.
    pub async fn durable_consumer(
        &self,
        durable: &crate::names::Durable,
        ack_wait: Duration,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, Error> {
        let stream = self
            .js
            .get_stream(&durable.stream)
            .await
            .map_err(internal("get stream"))?;
        stream
            .get_or_create_consumer(
                durable.name,
                consumer::pull::Config {
                    durable_name: Some(durable.name.to_owned()),
                    filter_subject: durable.filter.clone(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait,
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(internal("create consumer"))
    }

    /// Executor heartbeats; see [`Bus::put_heartbeat`] and [`Bus::heartbeats`].
    pub async fn executors_kv(&self) -> Result<kv::Store, Error> {
        self.kv(self.names.executors_bucket()).await
    }

    /// Termination requests; see [`Bus::request_termination`].
    pub async fn terminations_kv(&self) -> Result<kv::Store, Error> {
        self.kv(self.names.terminations_bucket()).await
    }

    pub async fn claims_kv(&self) -> Result<kv::Store, Error> {
        self.kv(self.names.claims_bucket()).await
    }

    pub async fn leases_kv(&self) -> Result<kv::Store, Error> {
        self.kv(self.names.leases_bucket()).await
    }

    async fn kv(&self, bucket: String) -> Result<kv::Store, Error> {
        let known = self.lock_buckets().get(&bucket).cloned();
        if let Some(store) = known {
            return Ok(store);
        }
        let store = self.js.get_key_value(&bucket).await.map_err(|e| {
            Error::Internal(anyhow::Error::new(e).context(format!("open bucket {bucket}")))
        })?;
        self.lock_buckets().insert(bucket, store.clone());
        Ok(store)
    }

    fn lock_buckets(&self) -> std::sync::MutexGuard<'_, HashMap<String, kv::Store>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last event published for an instance, if the events stream still has one
    /// (`None` when it has none; an error when the stream could not be asked or the event
    /// does not decode).
    pub async fn last_event(
        &self,
        queue: &QueueName,
        uuid: uuid::Uuid,
    ) -> Result<Option<crate::Event>, Error> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let stream = self
            .js
            .get_stream_no_info(self.names.events_stream())
            .await
            .map_err(internal("get events stream"))?;
        match stream
            .get_last_raw_message_by_subject(&self.names.events_of_attempts(queue, uuid))
            .await
        {
            Ok(m) => crate::Event::decode(&m.payload).map(Some),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(internal("read the last event")(e)),
        }
    }
}
