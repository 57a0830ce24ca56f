//! saltant's bus on NATS JetStream: every subject, stream, consumer and bucket is named
//! here (and documented in docs/bus.md), created idempotently at start-up, with versioned
//! message types and W3C trace context carried in message headers.

pub mod auth;
pub mod digest;
mod error;
mod follow;
pub mod messages;
mod names;
mod publish;
mod status;
mod topology;
pub mod trace;
pub mod work;

pub use error::Error;
pub use follow::{Followed, StartAt};
pub use messages::{
    Dispatch, Event, Heartbeat, LogChunk, LogEnd, LogMessage, LogStream, RECORDED_HEADER,
    ResultFile, ResultsManifest, Submission, Termination, WIRE_VERSION,
};
pub use names::{Durable, Names};
pub use status::ConsumerLag;
pub use topology::{Bus, BusConfig, LEASE_TTL_SECS, Service};
pub use work::{fetch_batch, fetch_batch_bytes, fetch_now};

pub use async_nats;
