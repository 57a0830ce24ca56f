//! Every subject, stream, consumer and bucket name, derived from one prefix so that
//! deployments (and tests) can share a NATS account without meeting each other.

use saltant_core::QueueName;
use saltant_core::names::token;
use uuid::Uuid;

/// Names on the bus. The default prefix is `saltant`: subjects `saltant.submit`,
/// `saltant.dispatch.<queue>`, `saltant.events.v2.<queue>.<uuid>.<source>` (the
/// subscribers' scheme, docs/events.md), `saltant.logs.<source>.<queue>.<uuid>`,
/// `saltant.stored.<uuid>`;
/// streams `SALTANT_SUBMIT`, `SALTANT_DISPATCH`, `SALTANT_EVENTS`, `SALTANT_LOGS`; key-value
/// buckets `saltant_executors`, `saltant_terminations`, `saltant_claims`, `saltant_leases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    upper: String,
}

impl Names {
    /// A prefix is lower-case ASCII letters, digits and `_`, starting with a letter.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let ok = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok || prefix.len() > 32 {
            return Err(format!(
                "bus prefix {prefix:?} must be 1-32 lower-case letters, digits or _, starting with a letter"
            ));
        }
        Ok(Names {
            prefix: prefix.to_owned(),
            upper: prefix.to_ascii_uppercase(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    // --- subjects

    pub fn submit(&self) -> String {
        format!("{}.submit", self.prefix)
    }
    pub fn dispatch(&self, queue: &QueueName) -> String {
        format!("{}.dispatch.{}", self.prefix, queue.token())
    }
    pub fn dispatch_all(&self) -> String {
        format!("{}.dispatch.>", self.prefix)
    }
    /// An event of `uuid`, published by `source`: `api`, `scheduler`, or an executor's id.
    /// The source is part of the subject so that the broker can hold a publisher to its
    /// own (docs/security.md: an executor's credentials allow only its id here).
    pub fn event(&self, queue: &QueueName, uuid: Uuid, source: &str) -> String {
        format!(
            "{}.events.v2.{}.{}.{}",
            self.prefix,
            queue.token(),
            uuid,
            token(source)
        )
    }
    /// Every event published by `source` (a filter, and what its credential may publish).
    pub fn event_of_source_any(&self, source: &str) -> String {
        format!("{}.events.v2.*.*.{}", self.prefix, token(source))
    }
    /// Every event of one instance whoever published it (a filter).
    pub fn events_of_attempts(&self, queue: &QueueName, uuid: Uuid) -> String {
        format!("{}.events.v2.{}.{}.*", self.prefix, queue.token(), uuid)
    }
    /// Every event, whatever its scheme version (the events stream's subjects).
    pub fn events_all(&self) -> String {
        format!("{}.events.>", self.prefix)
    }
    /// Events of the current subject scheme (version 2): every instance's.
    pub fn events_current(&self) -> String {
        format!("{}.events.v2.>", self.prefix)
    }
    /// Events of one queue's instances.
    pub fn events_of_queue(&self, queue: &QueueName) -> String {
        format!("{}.events.v2.{}.>", self.prefix, queue.token())
    }
    /// Events of one instance.
    pub fn events_of_instance(&self, uuid: Uuid) -> String {
        format!("{}.events.v2.*.{}.*", self.prefix, uuid)
    }
    /// The queue, instance and source token of an event subject of the current scheme.
    pub fn event_parts<'s>(&self, subject: &'s str) -> Option<(QueueName, Uuid, &'s str)> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".events.v2.")?;
        let mut parts = rest.split('.');
        let (queue, uuid, source) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some((QueueName::from_token(queue)?, uuid.parse().ok()?, source))
    }
    /// Whether `subject` is where `e` may come from: the event's own queue and instance, and
    /// for a state an executor reports, that executor's own source token (the one its
    /// credentials hold it to). The services (`api`, `scheduler`) may publish on behalf of
    /// an executor (a lost executor's failure).
    pub fn check_event_subject(&self, subject: &str, e: &crate::Event) -> Result<(), String> {
        let Some((queue, uuid, source)) = self.event_parts(subject) else {
            return Err(format!("not an event subject: {subject}"));
        };
        if queue != e.queue || uuid != e.uuid {
            return Err(format!("event of {}/{} on {subject}", e.queue, e.uuid));
        }
        let service = [crate::auth::API_SOURCE, crate::auth::SCHEDULER_SOURCE].contains(&source);
        if !service && e.executor.as_deref().map(token).as_deref() != Some(source) {
            return Err(format!(
                "event of executor {:?} published by {source:?}",
                e.executor
            ));
        }
        Ok(())
    }
    /// Output of `uuid` (of `queue`) sent by `source` (an executor's id): credentials hold
    /// an executor to its own id and its queues here.
    pub fn logs(&self, source: &str, queue: &QueueName, uuid: Uuid) -> String {
        format!(
            "{}.logs.{}.{}.{}",
            self.prefix,
            token(source),
            queue.token(),
            uuid
        )
    }
    pub fn logs_all(&self) -> String {
        format!("{}.logs.>", self.prefix)
    }
    /// Core NATS (not stored): the log-collector stored output of `uuid`; live tails wake.
    pub fn stored(&self, uuid: Uuid) -> String {
        format!("{}.stored.{}", self.prefix, uuid)
    }
    /// "Queue has work" signals, scheduler → executors, core NATS (no payload): one per
    /// queue per dispatched batch, published after the batch's dispatches are stored, so
    /// that executors pull only from queues with work instead of waiting on every queue.
    pub fn ready(&self, queue: &QueueName) -> String {
        format!("{}.ready.{}", self.prefix, queue.token())
    }
    pub fn ready_all(&self) -> String {
        format!("{}.ready.*", self.prefix)
    }
    /// The queue a [`Names::ready`] or [`Names::dispatch`] subject names.
    pub fn queue_of(&self, subject: &str) -> Option<QueueName> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('.')?;
        let token = rest
            .strip_prefix("ready.")
            .or_else(|| rest.strip_prefix("dispatch."))?;
        QueueName::from_token(token)
    }
    /// Control messages for one executor (termination requests), core NATS.
    pub fn control(&self, executor: &str) -> String {
        format!("{}.control.{}", self.prefix, token(executor))
    }

    // --- streams

    pub fn submit_stream(&self) -> String {
        format!("{}_SUBMIT", self.upper)
    }
    pub fn dispatch_stream(&self) -> String {
        format!("{}_DISPATCH", self.upper)
    }
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.upper)
    }
    pub fn logs_stream(&self) -> String {
        format!("{}_LOGS", self.upper)
    }

    // --- durable consumers

    /// The scheduler replicas' consumer of submissions.
    pub fn scheduler_submit(&self) -> Durable {
        Durable::new(self.submit_stream(), "scheduler-submit", self.submit())
    }
    /// The scheduler replicas' consumer of every event.
    pub fn scheduler_events(&self) -> Durable {
        Durable::new(self.events_stream(), "scheduler-events", self.events_all())
    }
    /// The log-collector replicas' consumer of every log chunk.
    pub fn log_collector(&self) -> Durable {
        Durable::new(self.logs_stream(), "log-collector", self.logs_all())
    }
    /// The scheduler's consumer of the terminations bucket's stream.
    pub fn scheduler_terminations(&self) -> Durable {
        let bucket = self.terminations_bucket();
        Durable::new(
            Names::bucket_stream(&bucket),
            "scheduler-terminations",
            Names::bucket_subjects(&bucket),
        )
    }
    /// The one durable consumer of a queue, shared by every executor serving it.
    pub fn dispatch_consumer(&self, queue: &QueueName) -> String {
        format!("queue-{}", queue.token())
    }

    // --- key-value buckets

    /// Executor heartbeats: executor id → [`crate::Heartbeat`], entries expire.
    pub fn executors_bucket(&self) -> String {
        format!("{}_executors", self.prefix)
    }
    /// Termination requests: instance uuid → [`crate::Termination`]. Executors watch it
    /// (with history, so a request made while they were disconnected is not missed); the
    /// scheduler consumes its stream to end instances that have not started.
    pub fn terminations_bucket(&self) -> String {
        format!("{}_terminations", self.prefix)
    }
    /// Claims of attempts: `<uuid>.<attempt>` → executor id, created (compare-and-set) by
    /// the executor that starts the attempt, so a redelivered dispatch never runs twice.
    pub fn claims_bucket(&self) -> String {
        format!("{}_claims", self.prefix)
    }
    /// The key of an attempt's claim: `<queue>.<uuid>.<attempt>` (the queue first, so that
    /// an executor's credentials can allow its queues' claims only).
    pub fn claim_key(&self, queue: &QueueName, uuid: Uuid, attempt: u32) -> String {
        format!("{}.{uuid}.{attempt}", queue.token())
    }
    /// Leases of singleton duties (`scheduler`: sweeps and lost-executor checks).
    pub fn leases_bucket(&self) -> String {
        format!("{}_leases", self.prefix)
    }
    /// Object store of instances' files: `<uuid>/manifest` (a [`crate::ResultsManifest`])
    /// and `<uuid>/<attempt>/<logs|results>/<path>`.
    pub fn results_bucket(&self) -> String {
        format!("{}_results", self.prefix)
    }
    /// The JetStream stream behind a key-value bucket.
    pub fn bucket_stream(bucket: &str) -> String {
        format!("KV_{bucket}")
    }
    /// Every key's subject of a key-value bucket.
    pub fn bucket_subjects(bucket: &str) -> String {
        format!("$KV.{bucket}.>")
    }
}

/// A service's durable pull consumer: its stream, name and filter subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    pub stream: String,
    pub name: &'static str,
    pub filter: String,
}

impl Durable {
    fn new(stream: String, name: &'static str, filter: String) -> Self {
        Durable {
            stream,
            name,
            filter,
        }
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::new("saltant").expect("the default prefix is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_prefix() {
        let n = Names::default();
        let q = QueueName::parse("gpu@lab").expect("valid");
        let id = Uuid::nil();
        assert_eq!(n.submit(), "saltant.submit");
        assert_eq!(n.dispatch(&q), "saltant.dispatch.gpu=40lab");
        assert_eq!(
            n.event(&q, id, "host.a-1"),
            "saltant.events.v2.gpu=40lab.00000000-0000-0000-0000-000000000000.host=2Ea-1"
        );
        assert_eq!(
            n.event_parts(&n.event(&q, id, "api")),
            Some((q.clone(), id, "api"))
        );
        assert_eq!(n.events_of_queue(&q), "saltant.events.v2.gpu=40lab.>");
        assert_eq!(
            n.events_of_instance(id),
            "saltant.events.v2.*.00000000-0000-0000-0000-000000000000.*"
        );
        assert_eq!(n.event_parts("saltant.events.v1.q.x"), None);
        assert_eq!(
            n.logs("h1", &q, id),
            "saltant.logs.h1.gpu=40lab.00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(n.submit_stream(), "SALTANT_SUBMIT");
        assert_eq!(n.executors_bucket(), "saltant_executors");
        assert_eq!(n.dispatch_consumer(&q), "queue-gpu=40lab");
        assert_eq!(n.ready(&q), "saltant.ready.gpu=40lab");
        assert_eq!(n.queue_of(&n.ready(&q)), Some(q.clone()));
        assert_eq!(n.queue_of(&n.dispatch(&q)), Some(q.clone()));
        assert_eq!(n.queue_of("other.ready.gpu=40lab"), None);
        assert_eq!(n.queue_of("saltant.events.gpu=40lab.x"), None);
        let t = Names::new("t_1a2b").expect("valid");
        assert_eq!(t.events_stream(), "T_1A2B_EVENTS");
    }

    #[test]
    fn prefixes_are_checked() {
        for bad in ["", "Saltant", "1abc", "a.b", "a-b", "a>"] {
            assert!(Names::new(bad).is_err(), "{bad}");
        }
    }
}
