//! Messages of the logs stream: chunks of output and each attempt's end of output.

use crate::Error;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
pub mod log_headers {
    pub const STREAM: &str = "Saltant-Stream";
    pub const SEQ: &str = "Saltant-Seq";
    pub const ATTEMPT: &str = "Saltant-Attempt";
    /// Marks a [`LogEnd`](super::LogEnd) (JSON payload) among the chunks.
    pub const END: &str = "Saltant-End";
}

/// The end of an attempt's output, on `logs.<uuid>` after its last chunk (header
/// `Saltant-End`, JSON payload): how many chunks the attempt sent, and how many bytes of
/// each stream its output limit dropped. Message id `<uuid>.<attempt>.end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEnd {
    pub v: u32,
    pub uuid: Uuid,
    pub attempt: u32,
    /// Chunks sent: their `seq` are `0..chunks`.
    pub chunks: i64,
    /// Bytes of stdout not kept (the output limit was reached).
    #[serde(default)]
    pub dropped_stdout: i64,
    #[serde(default)]
    pub dropped_stderr: i64,
    /// Chunks sent but never stored on the bus (their bytes are in the capture files):
    /// readers skip these numbers instead of waiting for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<i64>,
}

impl LogEnd {
    pub fn message_id(&self) -> String {
        format!("{}.{}.end", self.uuid, self.attempt)
    }
}

/// A message of the logs stream: a chunk of output or the end of an attempt's.
#[derive(Debug, Clone, PartialEq)]
pub enum LogMessage {
    Chunk(LogChunk),
    End(LogEnd),
}

impl LogMessage {
    pub fn decode(
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &bytes::Bytes,
    ) -> Result<Self, Error> {
        if headers.is_some_and(|h| h.get(log_headers::END).is_some()) {
            return LogEnd::decode(payload).map(LogMessage::End);
        }
        LogChunk::decode(subject, headers, payload).map(LogMessage::Chunk)
    }
}

/// A piece of an attempt's output, on `logs.<uuid>`: the raw bytes as payload, the rest in
/// headers. No message id: a chunk published twice is stored once by the log-collector
/// (keyed by instance, attempt and `seq`), and the stream need not remember every id.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChunk {
    pub uuid: Uuid,
    pub attempt: u32,
    /// Shared by stdout and stderr of the attempt, so their order is kept.
    pub seq: i64,
    pub stream: LogStream,
    pub data: bytes::Bytes,
}

impl LogChunk {
    pub(crate) fn headers(&self) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        h.insert(log_headers::STREAM, self.stream.as_str());
        h.insert(log_headers::SEQ, self.seq.to_string().as_str());
        h.insert(log_headers::ATTEMPT, self.attempt.to_string().as_str());
        h
    }

    /// Reads a chunk from its message: the uuid from the subject, the rest from headers.
    pub fn decode(
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &bytes::Bytes,
    ) -> Result<Self, Error> {
        let malformed = |reason: &str| Error::Malformed {
            what: "log chunk",
            reason: reason.to_owned(),
        };
        let header = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str())
                .ok_or_else(|| malformed(&format!("no {name} header")))
        };
        let uuid = subject.rsplit('.').next().and_then(|u| u.parse().ok());
        Ok(LogChunk {
            uuid: uuid.ok_or_else(|| malformed("no instance uuid in the subject"))?,
            attempt: header(log_headers::ATTEMPT)?
                .parse()
                .map_err(|_| malformed("bad attempt"))?,
            seq: header(log_headers::SEQ)?
                .parse()
                .map_err(|_| malformed("bad sequence number"))?,
            stream: LogStream::parse(header(log_headers::STREAM)?)
                .ok_or_else(|| malformed("unknown stream"))?,
            data: payload.clone(),
        })
    }
}
