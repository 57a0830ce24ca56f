//! Sending on the bus: one method per message kind, each owning the kind's subject (or
//! key), its message id and its headers. Every JetStream message carries a W3C trace
//! context: the current span's, or for output (chunks and their end) the attempt's,
//! worked out once per attempt rather than per chunk. See docs/bus.md, "Messages".

use crate::error::internal;
use crate::{
    Bus, Dispatch, Error, Event, Heartbeat, LogChunk, LogEnd, Names, RECORDED_HEADER, Submission,
    Termination, trace,
};
use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use futures::TryStreamExt;
use saltant_core::QueueName;
use std::collections::HashMap;

/// Adds an attempt's `traceparent` (output messages carry it rather than the current span's).
fn with_trace(headers: &mut HeaderMap, trace: Option<&str>) {
    if let Some(t) = trace {
        headers.insert("traceparent", t);
    }
}

/// A message as it goes out: subject, headers (message id, trace context, markers) and
/// payload.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
}

impl Outgoing {
    /// With the current span's trace context and a message id (JetStream drops a second
    /// message with the same id within the stream's duplicate window).
    fn traced(subject: String, id: String, payload: bytes::Bytes) -> Self {
        let mut headers = trace::headers();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        Outgoing {
            subject,
            headers,
            payload,
        }
    }

    fn submission(names: &Names, s: &Submission) -> Self {
        Self::traced(names.submit(), s.message_id(), s.encode())
    }

    fn dispatch(names: &Names, d: &Dispatch) -> Self {
        Self::traced(names.dispatch(&d.queue), d.message_id(), d.encode())
    }

    /// `recorded`: already written to PostgreSQL; the scheduler only acks it.
    fn event(names: &Names, source: &str, e: &Event, recorded: bool) -> Self {
        let mut m = Self::traced(
            names.event(&e.queue, e.uuid, source),
            e.message_id(),
            e.encode(),
        );
        if recorded {
            m.headers.insert(RECORDED_HEADER, "true");
        }
        m
    }

    fn log_end(
        names: &Names,
        source: &str,
        queue: &QueueName,
        e: &LogEnd,
        trace: Option<&str>,
    ) -> Self {
        let mut headers = HeaderMap::new();
        with_trace(&mut headers, trace);
        headers.insert(async_nats::header::NATS_MESSAGE_ID, e.message_id().as_str());
        headers.insert(crate::messages::log_headers::END, "1");
        Outgoing {
            subject: names.logs(source, queue, e.uuid),
            headers,
            payload: e.encode(),
        }
    }

    /// With the attempt's trace context, `trace`.
    fn log_chunk(
        names: &Names,
        source: &str,
        queue: &QueueName,
        c: &LogChunk,
        trace: Option<&str>,
    ) -> Self {
        let mut headers = c.headers();
        with_trace(&mut headers, trace);
        Outgoing {
            subject: names.logs(source, queue, c.uuid),
            headers,
            payload: c.data.clone(),
        }
    }
}

impl Bus {
    async fn send(&self, m: Outgoing, what: &'static str) -> Result<PublishAckFuture, Error> {
        self.js
            .publish_with_headers(m.subject, m.headers, m.payload)
            .await
            .map_err(internal(what))
    }

    /// api, sweep → scheduler. Returns the ack to await (alone or in a window).
    pub async fn publish_submission(&self, s: &Submission) -> Result<PublishAckFuture, Error> {
        self.send(Outgoing::submission(&self.names, s), "publish submission")
            .await
    }

    /// scheduler → executors of the dispatch's queue.
    pub async fn publish_dispatch(&self, d: &Dispatch) -> Result<PublishAckFuture, Error> {
        self.send(Outgoing::dispatch(&self.names, d), "publish dispatch")
            .await
    }

    /// A state change, for the scheduler to record (and for subscribers).
    pub async fn publish_event(&self, e: &Event) -> Result<PublishAckFuture, Error> {
        self.send(
            Outgoing::event(&self.names, &self.source, e, false),
            "publish event",
        )
        .await
    }

    /// A state change already recorded in PostgreSQL, for subscribers.
    pub async fn publish_recorded_event(&self, e: &Event) -> Result<PublishAckFuture, Error> {
        self.send(
            Outgoing::event(&self.names, &self.source, e, true),
            "publish event",
        )
        .await
    }

    /// executor → log-collector (and live readers); `trace`: the attempt's `traceparent`.
    pub async fn publish_log_chunk(
        &self,
        queue: &QueueName,
        c: &LogChunk,
        trace: Option<&str>,
    ) -> Result<PublishAckFuture, Error> {
        self.send(
            Outgoing::log_chunk(&self.names, &self.source, queue, c, trace),
            "publish log chunk",
        )
        .await
    }

    /// executor → log-collector, after an attempt's last chunk is stored.
    pub async fn publish_log_end(
        &self,
        queue: &QueueName,
        e: &LogEnd,
        trace: Option<&str>,
    ) -> Result<PublishAckFuture, Error> {
        self.send(
            Outgoing::log_end(&self.names, &self.source, queue, e, trace),
            "publish end of output",
        )
        .await
    }

    /// log-collector → live tails: output of these instances was stored. Core NATS, best
    /// effort (a tail also looks on its own every second).
    pub async fn signal_stored(&self, uuids: impl IntoIterator<Item = uuid::Uuid>) {
        for uuid in uuids {
            if let Err(e) = self
                .client
                .publish(self.names.stored(uuid), bytes::Bytes::new())
                .await
            {
                tracing::debug!(error = %e, "signal stored output");
            }
        }
    }

    /// Puts a termination request (key: the instance uuid) in the terminations bucket.
    pub async fn request_termination(&self, t: &Termination) -> Result<(), Error> {
        self.terminations_kv()
            .await?
            .put(t.uuid.to_string(), t.encode())
            .await
            .map_err(internal("put termination request"))?;
        Ok(())
    }

    /// Puts an executor's heartbeat (key: its id) in the executors bucket.
    pub async fn put_heartbeat(&self, h: &Heartbeat) -> Result<(), Error> {
        self.executors_kv()
            .await?
            .put(&h.executor, h.encode())
            .await
            .map_err(internal("put heartbeat"))?;
        Ok(())
    }

    /// The executors alive now (their heartbeats have not expired), by id, and the ids of
    /// live executors whose heartbeat does not decode (a newer wire version during a
    /// rolling upgrade, say): alive, running what this version cannot tell.
    pub async fn heartbeats(&self) -> Result<(HashMap<String, Heartbeat>, Vec<String>), Error> {
        let kv = self.executors_kv().await?;
        let mut keys = kv.keys().await.map_err(internal("list heartbeats"))?;
        let (mut alive, mut unreadable) = (HashMap::new(), Vec::new());
        while let Some(key) = keys.try_next().await.map_err(internal("list heartbeats"))? {
            // Expired between the listing and the read: not alive.
            if let Some(value) = kv.get(&key).await.map_err(internal("read heartbeat"))? {
                match Heartbeat::decode(&value) {
                    Ok(beat) => {
                        alive.insert(key, beat);
                    }
                    Err(_) => unreadable.push(key),
                }
            }
        }
        Ok((alive, unreadable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WIRE_VERSION;
    use opentelemetry::trace::TracerProvider as _;
    use saltant_core::{QueueName, State};
    use tracing_subscriber::layer::SubscriberExt;
    use uuid::Uuid;

    fn submission(attempt: u32) -> Submission {
        Submission {
            v: WIRE_VERSION,
            uuid: Uuid::nil(),
            attempt,
            queue: QueueName::parse("gpu@lab").expect("valid"),
            spec: serde_json::from_value(serde_json::json!({
                "kind": "executable", "command_to_run": "true",
                "environment_variables": [], "arguments": {}
            }))
            .expect("spec"),
            created_at: None,
        }
    }

    /// Runs `f` inside a span of a real tracer, with the W3C propagator installed.
    fn in_span<T>(f: impl FnOnce() -> T) -> T {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("resubmit").in_scope(f)
        })
    }

    fn id(m: &Outgoing) -> Option<&str> {
        m.headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str())
    }

    #[test]
    fn submissions_carry_the_trace_and_one_id_per_attempt() {
        let names = Names::default();
        let first = in_span(|| Outgoing::submission(&names, &submission(1)));
        assert_eq!(first.subject, "saltant.submit");
        assert_eq!(id(&first), Some(format!("{}.1", Uuid::nil()).as_str()));
        let tp = first
            .headers
            .get("traceparent")
            .expect("traceparent")
            .as_str();
        assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");
        // A repeat of the attempt has the same id (dropped), a retry a new one.
        let again = in_span(|| Outgoing::submission(&names, &submission(1)));
        assert_eq!(id(&again), id(&first));
        let retry = Outgoing::submission(&names, &submission(2));
        assert_eq!(id(&retry), Some(format!("{}.2", Uuid::nil()).as_str()));
        // Outside any span there is no context to carry.
        assert!(retry.headers.get("traceparent").is_none());
    }

    #[test]
    fn events_and_dispatches_name_their_subject_and_id() {
        let names = Names::default();
        let q = QueueName::parse("q").expect("valid");
        let e = Event::new(Uuid::nil(), q.clone(), 3, State::Running);
        let plain = in_span(|| Outgoing::event(&names, "api", &e, false));
        assert_eq!(plain.subject, names.event(&q, Uuid::nil(), "api"));
        assert_eq!(
            id(&plain),
            Some(format!("{}.3.running", Uuid::nil()).as_str())
        );
        assert!(plain.headers.get("traceparent").is_some());
        assert!(plain.headers.get(RECORDED_HEADER).is_none());
        let recorded = Outgoing::event(&names, "api", &e, true);
        assert_eq!(
            recorded.headers.get(RECORDED_HEADER).map(|v| v.as_str()),
            Some("true")
        );
        let s = submission(2);
        let d = Dispatch {
            v: WIRE_VERSION,
            uuid: s.uuid,
            queue: s.queue.clone(),
            attempt: 2,
            spec: s.spec,
            start_by: None,
            run_timeout_secs: None,
            created_at: None,
        };
        let m = Outgoing::dispatch(&names, &d);
        assert_eq!(m.subject, "saltant.dispatch.gpu=40lab");
        assert_eq!(id(&m), Some(format!("{}.2", Uuid::nil()).as_str()));
    }
}
