//! Message types on the bus. Every JSON message carries `v`, the schema version; a reader
//! rejects versions it does not know instead of guessing.

use crate::Error;
use chrono::{DateTime, Utc};
use saltant_core::{QueueName, State, TaskSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod logs;
pub use logs::{LogChunk, LogEnd, LogMessage, LogStream, log_headers};

/// The schema version this build writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// api, sweep → scheduler: an instance exists and its attempt should run. Message id:
/// `<uuid>.<attempt>` ([`Submission::message_id`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub v: u32,
    pub uuid: Uuid,
    /// The attempt submitted (the scheduler dispatches the attempt PostgreSQL holds; this
    /// one names the message). Absent in older submissions: the first.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    pub queue: QueueName,
    pub spec: TaskSpec,
    /// When the instance was created (queue time-outs count from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

fn first_attempt() -> u32 {
    1
}

impl Submission {
    /// One message per instance and attempt: the sweep's repeat of a submission that did
    /// reach the stream is dropped within the duplicate window (the scheduler has it), a
    /// retry's submission (the next attempt) is new. See docs/bus.md, "Message ids".
    pub fn message_id(&self) -> String {
        format!("{}.{}", self.uuid, self.attempt)
    }
}

/// scheduler → executor, on the queue's dispatch subject: everything needed to run one
/// attempt, so an executor needs no database. Message id: `<uuid>.<attempt>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    pub v: u32,
    pub uuid: Uuid,
    pub queue: QueueName,
    /// Fencing token: events of an older attempt never overwrite a newer one's.
    pub attempt: u32,
    pub spec: TaskSpec,
    /// An executor taking the dispatch after this instant does not start it (queue
    /// time-out; the scheduler fails the instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_by: Option<DateTime<Utc>>,
    /// Seconds the attempt may run before the executor kills it and reports `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_timeout_secs: Option<u64>,
    /// When the instance was created (for the executor's start-latency metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// A state change, from whoever caused it, on `events.v2.<queue>.<uuid>.<source>`: the status
/// event subscribers read (docs/events.md; its JSON Schema, generated from this type, is
/// docs/events.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "saltant status event (version 1)")]
pub struct Event {
    /// Schema version: 1.
    #[schemars(range(min = 1, max = 1))]
    pub v: u32,
    /// The instance.
    pub uuid: Uuid,
    /// Its queue's name.
    #[schemars(with = "String")]
    pub queue: QueueName,
    /// The attempt (1, then 2, … for retries).
    #[schemars(range(min = 1))]
    pub attempt: u32,
    #[schemars(schema_with = "state_schema")]
    pub state: State,
    /// When it happened (RFC 3339, UTC).
    pub at: DateTime<Utc>,
    /// The executor that ran (or runs) the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// The task's exit status, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why a final state happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A `failed` that must not be retried whatever the instance's policy (queue time-out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_retry: bool,
    /// On the final event of an attempt that stored files: the digest (`sha256:<hex>`) of
    /// its results manifest. The api serves an attempt's files only under a manifest with
    /// the digest recorded from its final event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_digest: Option<String>,
}

/// The schema of an event's state: the names [`State::as_str`] gives.
fn state_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
    schemars::json_schema!({
        "description": "The instance's state.",
        "type": "string",
        "enum": names,
    })
}

impl Dispatch {
    /// One dispatch per instance and attempt, whoever submitted it and how often.
    pub fn message_id(&self) -> String {
        format!("{}.{}", self.uuid, self.attempt)
    }
}

impl Event {
    pub fn new(uuid: Uuid, queue: QueueName, attempt: u32, state: State) -> Self {
        Event {
            v: WIRE_VERSION,
            uuid,
            queue,
            attempt,
            state,
            at: Utc::now(),
            executor: None,
            exit_code: None,
            reason: None,
            no_retry: false,
            results_digest: None,
        }
    }

    /// Its message id: one event per instance, attempt and state.
    pub fn message_id(&self) -> String {
        format!("{}.{}.{}", self.uuid, self.attempt, self.state)
    }
}

/// A request to terminate an instance: the value of its key (the uuid) in the terminations
/// bucket. Whoever runs the instance kills it; if it has not started it never will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    pub v: u32,
    pub uuid: Uuid,
    pub queue: QueueName,
    pub at: DateTime<Utc>,
    /// Username of whoever asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The W3C `traceparent` of the request's span in the instance's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// What an attempt left in its logs and results folders: the value of object
/// `<uuid>/manifest` in the results bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsManifest {
    pub v: u32,
    pub uuid: Uuid,
    pub attempt: u32,
    pub executor: String,
    pub files: Vec<ResultFile>,
    /// Set when not every file could be stored, with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// One stored file: `name` is `logs/<path>` or `results/<path>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    pub name: String,
    pub size: u64,
    /// Its object in the results bucket.
    pub object: String,
    /// The digest of its content (`sha256:<hex>`), checked as it is served; absent in
    /// manifests stored before digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ResultsManifest {
    /// The object holding the manifest of one attempt of `uuid`. Per attempt, so that an
    /// executor that reports late (cut off, then back) cannot replace the files of the
    /// attempt that counts: readers take the attempt PostgreSQL recorded.
    pub fn object_name(uuid: Uuid, attempt: u32) -> String {
        format!("{uuid}/{attempt}/manifest")
    }

    /// Where versions before per-attempt manifests kept the last attempt's (read only when
    /// an attempt has none, and only if it names that attempt).
    pub fn legacy_object_name(uuid: Uuid) -> String {
        format!("{uuid}/manifest")
    }
}

/// Header of an event that is already recorded in PostgreSQL (the status endpoint writes
/// before it publishes); the scheduler does not record it again.
pub const RECORDED_HEADER: &str = "Saltant-Recorded";

/// An executor's heartbeat, the value of its key in the executors bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub v: u32,
    pub executor: String,
    pub host: String,
    /// Queue names served; empty means every queue.
    pub queues: Vec<String>,
    pub slots: u32,
    pub running: Vec<Uuid>,
    /// What it can run: `executable`, `docker`, `singularity`.
    pub capabilities: Vec<String>,
    /// Engine versions by capability (`docker` → `20.10.24`); absent in older heartbeats.
    #[serde(default)]
    pub engines: std::collections::BTreeMap<String, String>,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

pub(crate) trait Versioned {
    const WHAT: &'static str;
    fn version(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl Versioned for $t {
            const WHAT: &'static str = $what;
            fn version(&self) -> u32 { self.v }
        }
        impl $t {
            /// Decodes a message, rejecting unknown schema versions.
            pub fn decode(payload: &[u8]) -> Result<Self, Error> {
                decode(payload)
            }
            pub fn encode(&self) -> bytes::Bytes {
                serde_json::to_vec(self).expect("bus messages always serialize").into()
            }
        }
    )*};
}

versioned!(
    Submission => "submission",
    Dispatch => "dispatch",
    Event => "event",
    Heartbeat => "heartbeat",
    Termination => "termination",
    ResultsManifest => "results manifest",
    LogEnd => "end of output",
);

fn decode<T: DeserializeOwned + Versioned>(payload: &[u8]) -> Result<T, Error> {
    let msg: T = serde_json::from_slice(payload).map_err(|source| Error::Decode {
        what: T::WHAT,
        source,
    })?;
    if msg.version() != WIRE_VERSION {
        return Err(Error::Version {
            what: T::WHAT,
            version: msg.version(),
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_chunks_need_their_headers() {
        let id = Uuid::new_v4();
        let subject = format!("saltant.logs.{id}");
        let chunk = LogChunk {
            uuid: id,
            attempt: 2,
            seq: 7,
            stream: LogStream::Stderr,
            data: bytes::Bytes::from_static(b"x"),
        };
        let mut h = chunk.headers();
        let back = LogChunk::decode(&subject, Some(&h), &chunk.data).expect("valid chunk");
        assert_eq!(back, chunk);
        assert!(LogChunk::decode(&subject, None, &chunk.data).is_err());
        assert!(LogChunk::decode("saltant.logs.nope", Some(&h), &chunk.data).is_err());
        h.insert(log_headers::STREAM, "stdin");
        let err = LogChunk::decode(&subject, Some(&h), &chunk.data).expect_err("stdin");
        assert!(err.to_string().contains("unknown stream"), "{err}");
    }

    #[test]
    fn ends_of_output_are_told_from_chunks() {
        let id = Uuid::new_v4();
        let subject = format!("saltant.logs.{id}");
        let end = LogEnd {
            v: WIRE_VERSION,
            uuid: id,
            attempt: 1,
            chunks: 3,
            dropped_stdout: 10,
            dropped_stderr: 0,
            lost: vec![1],
        };
        let mut h = async_nats::HeaderMap::new();
        h.insert(log_headers::END, "1");
        let back = LogMessage::decode(&subject, Some(&h), &end.encode()).expect("an end");
        assert_eq!(back, LogMessage::End(end));
        assert!(LogMessage::decode(&subject, Some(&h), &bytes::Bytes::from_static(b"x")).is_err());
    }

    #[test]
    fn submissions_of_older_writers_are_first_attempts() {
        let q = QueueName::parse("q").expect("valid");
        let spec: TaskSpec = serde_json::from_value(serde_json::json!({
            "kind": "executable", "command_to_run": "true",
            "environment_variables": [], "arguments": {}
        }))
        .expect("spec");
        let old = serde_json::json!({"v": 1, "uuid": Uuid::nil(), "queue": q, "spec": spec});
        let s = Submission::decode(old.to_string().as_bytes()).expect("decodes");
        assert_eq!(s.attempt, 1);
        assert_eq!(s.message_id(), format!("{}.1", Uuid::nil()));
    }

    /// docs/events.schema.json is this type's schema; `SALTANT_WRITE_SCHEMA=1` rewrites it.
    #[test]
    fn the_documented_event_schema_is_the_types() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.schema.json");
        let schema =
            serde_json::to_string_pretty(&schemars::schema_for!(Event)).expect("json") + "\n";
        if std::env::var_os("SALTANT_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &schema).expect("write the schema");
        }
        let documented = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            documented == schema,
            "docs/events.schema.json is not Event's schema; rerun with SALTANT_WRITE_SCHEMA=1"
        );
    }

    #[test]
    fn events_round_trip_and_versions_are_checked() {
        let q = QueueName::parse("q").expect("valid");
        let mut e = Event::new(Uuid::new_v4(), q, 2, State::Failed);
        e.exit_code = Some(1);
        let back = Event::decode(&e.encode()).expect("decodes");
        assert_eq!(back, e);

        let mut v2 = serde_json::to_value(&e).expect("json");
        v2["v"] = 2.into();
        let err = Event::decode(v2.to_string().as_bytes()).expect_err("version 2");
        assert!(matches!(err, Error::Version { version: 2, .. }));
        assert!(Event::decode(b"not json").is_err());
    }
}
