//! Following the bus as a reader outside the services: the events stream from a chosen
//! point (an ordered consumer, gone with the connection), and the log-collector's signals
//! that an instance's output was stored. The api's live streams use these.

use crate::error::internal;
use crate::{Bus, Error, Event};
use async_nats::jetstream::consumer::{self, DeliverPolicy};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

/// Where a reader of the events stream starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StartAt {
    /// Events published from now on.
    New,
    /// Every event the stream still holds.
    All,
    /// From this stream sequence number on.
    Seq(u64),
    /// From the first event stored at or after this time.
    Time(DateTime<Utc>),
}

/// An event as read from the stream.
#[derive(Debug, Clone)]
pub struct Followed {
    /// Its sequence number in the events stream (a reader resumes after it).
    pub seq: u64,
    /// Events matching the reader's subject still to come after this one, as of now.
    pub pending: u64,
    /// The subject it was published on.
    pub subject: String,
    pub event: Event,
}

impl Bus {
    /// Events on `subject` (a filter of the events stream, see [`crate::Names::events_current`])
    /// from `start` on, in stream order. Events this build cannot decode are skipped.
    pub async fn follow_events(
        &self,
        subject: String,
        start: StartAt,
    ) -> Result<BoxStream<'static, Result<Followed, Error>>, Error> {
        let stream = self
            .js
            .get_stream_no_info(self.names.events_stream())
            .await
            .map_err(internal("get events stream"))?;
        let deliver_policy = match start {
            StartAt::New => DeliverPolicy::New,
            StartAt::All => DeliverPolicy::All,
            StartAt::Seq(n) => DeliverPolicy::ByStartSequence {
                start_sequence: n.max(1),
            },
            StartAt::Time(t) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    t.timestamp_nanos_opt().unwrap_or(0).into(),
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            },
        };
        let messages = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(internal("create events reader"))?
            .messages()
            .await
            .map_err(internal("read events"))?;
        Ok(messages
            .filter_map(|m| async move {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => return Some(Err(internal("read events")(e))),
                };
                let info = m.info().ok()?;
                let (seq, pending) = (info.stream_sequence, info.pending);
                match Event::decode(&m.payload) {
                    Ok(event) => Some(Ok(Followed {
                        seq,
                        pending,
                        subject: m.subject.to_string(),
                        event,
                    })),
                    Err(e) => {
                        tracing::debug!(error = %e, seq, "skipping an event this build cannot read");
                        None
                    }
                }
            })
            .boxed())
    }

    /// A signal each time output of `uuid` is stored (core NATS, best effort).
    pub async fn stored_signals(&self, uuid: Uuid) -> Result<async_nats::Subscriber, Error> {
        self.client
            .subscribe(self.names.stored(uuid))
            .await
            .map_err(internal("subscribe to stored output"))
    }
}
