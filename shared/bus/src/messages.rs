//! Message types on the bus. Every JSON message carries `v`, the schema version; a reader
//! rejects versions it does not know instead of guessing.

use crate::Error;
use chrono::{DateTime, Utc};
use saltant_core::{QueueName, State, TaskSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version this build writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// api → scheduler: an instance exists and should run. Message id: the instance uuid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub v: u32,
    pub uuid: Uuid,
    pub queue: QueueName,
    pub spec: TaskSpec,
    /// When the instance was created (queue time-outs count from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
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
}

/// A state change, from whoever caused it, on `events.<queue>.<uuid>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    pub uuid: Uuid,
    pub queue: QueueName,
    pub attempt: u32,
    pub state: State,
    pub at: DateTime<Utc>,
    /// The executor that ran (or runs) the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why a `failed` or `terminated` happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A `failed` that must not be retried whatever the instance's policy (queue time-out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_retry: bool,
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
}

impl ResultsManifest {
    /// The object holding the manifest of `uuid`'s last attempt.
    pub fn object_name(uuid: Uuid) -> String {
        format!("{uuid}/manifest")
    }
}

/// Which output stream a log chunk came from (header `Saltant-Stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            _ => None,
        }
    }
}

/// Header names of log chunk messages (whose payload is the raw output bytes).
/// Header of an event that is already recorded in PostgreSQL (the status endpoint writes
/// before it publishes); the scheduler does not record it again.
pub const RECORDED_HEADER: &str = "Saltant-Recorded";

pub mod log_headers {
    pub const STREAM: &str = "Saltant-Stream";
    pub const SEQ: &str = "Saltant-Seq";
    pub const ATTEMPT: &str = "Saltant-Attempt";
}

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
