//! Native endpoints (not in the original API): status events as Server-Sent Events, for
//! everything, per queue and per instance, replayable (docs/events.md). Each event's `data`
//! is the event as published on the bus (schema version 1) and its `id` the events
//! stream's sequence number. Events of a private queue are for its owner and superusers.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::io::{PathId, PathUuid};
use crate::sse::{EventStream, Replay};
use axum::extract::State;
use axum::response::sse::Event as SseEvent;
use futures::StreamExt;
use futures::stream::BoxStream;
use saltant_bus::{Followed, StartAt};
use saltant_core::QueueName;
use saltant_store::Store;
use saltant_store::users::User;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Every instance's events (those of other users' private queues left out); from now on
/// unless a replay is asked for.
pub async fn all(
    State(s): State<AppState>,
    Auth(user): Auth,
    Replay(from): Replay,
) -> ApiResult<EventStream> {
    let events = s
        .bus
        .follow_events(s.bus.names.events_current(), from.unwrap_or(StartAt::New))
        .await?;
    let shown = Shown::Visible(Hidden::new(&user));
    Ok(EventStream::new(
        &s.closing,
        forward(s.store.clone(), events, shown),
    ))
}

/// One queue's events, from now on unless a replay is asked for. A private queue's are
/// for its owner and superusers (403 for others).
pub async fn of_queue(
    State(s): State<AppState>,
    Auth(user): Auth,
    PathId(id): PathId,
    Replay(from): Replay,
) -> ApiResult<EventStream> {
    let queue = s.store.queue(id).await?.ok_or(ApiError::NotFound)?;
    may_see(&user, queue.private, queue.user_id)?;
    let name = QueueName::parse(&queue.name).map_err(|_| ApiError::NotFound)?;
    let events = s
        .bus
        .follow_events(
            s.bus.names.events_of_queue(&name),
            from.unwrap_or(StartAt::New),
        )
        .await?;
    // Instances created on another queue that had this name before are not this queue's.
    Ok(EventStream::new(
        &s.closing,
        forward(s.store.clone(), events, Shown::OfQueue(id)),
    ))
}

/// One instance's events, from its first unless a replay says otherwise; the stream ends
/// (with an `end` event) once the instance is in a final state that no retry follows.
pub async fn of_instance(
    State(s): State<AppState>,
    Auth(user): Auth,
    PathUuid(id): PathUuid,
    Replay(from): Replay,
) -> ApiResult<EventStream> {
    let uuid: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let instance = s.store.instance(uuid).await?.ok_or(ApiError::NotFound)?;
    if let Some(queue) = s.store.queue(instance.task_queue_id).await? {
        may_see(&user, queue.private, queue.user_id)?;
    }
    let events = s
        .bus
        .follow_events(
            s.bus.names.events_of_instance(uuid),
            from.unwrap_or(StartAt::All),
        )
        .await?;
    Ok(EventStream::new(
        &s.closing,
        until_final(s.store.clone(), uuid, events),
    ))
}

/// Which events of the stream a client gets.
enum Shown {
    /// Those of queues it may see.
    Visible(Hidden),
    /// Those of this queue's instances.
    OfQueue(i64),
}

/// `events` as sent, but those not `shown`; the stream ends when the reader fails (the
/// client reconnects with its last id).
fn forward(
    store: Store,
    mut events: BoxStream<'static, Result<Followed, saltant_bus::Error>>,
    mut shown: Shown,
) -> impl futures::Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        let mut queues = QueueOf::default();
        while let Some(item) = events.next().await {
            let f = match item {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "events reader ended");
                    break;
                }
            };
            let show = match &mut shown {
                Shown::Visible(hidden) => hidden.shows(&store, &mut queues, f.event.uuid).await,
                Shown::OfQueue(id) => queues.get(&store, f.event.uuid).await == Some(*id),
            };
            if show {
                yield Ok(sse(&f));
            }
        }
    }
}

/// `events` until the instance's recorded state is final and its final event was sent (or
/// will not come: expired, or its publish failed after the state was recorded). The
/// recorder decides on retries and may lag the event: the state is read every 500 ms
/// once a final event was sent, every 2 s before.
fn until_final(
    store: Store,
    uuid: Uuid,
    mut events: BoxStream<'static, Result<Followed, saltant_bus::Error>>,
) -> impl futures::Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        // The latest attempt whose final event was sent.
        let mut final_sent = None::<u32>;
        let mut recorded_final_since = None::<Instant>;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                item = events.next() => match item {
                    Some(Ok(f)) => {
                        if f.event.state.is_final() {
                            final_sent = final_sent.max(Some(f.event.attempt));
                        }
                        yield Ok(sse(&f));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "events reader ended");
                        break;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    ticks += 1;
                    if final_sent.is_none() && recorded_final_since.is_none() && ticks % 4 != 1 {
                        continue;
                    }
                    let row = match store.instance(uuid).await {
                        Ok(row) => row,
                        Err(e) => {
                            tracing::debug!(error = %e, "read the instance's state");
                            continue;
                        }
                    };
                    let over = match &row {
                        None => true,
                        Some(i) if i.state.is_final() => {
                            let since = *recorded_final_since.get_or_insert_with(Instant::now);
                            final_sent >= Some(i.attempt as u32)
                                || since.elapsed() >= Duration::from_secs(3)
                        }
                        Some(_) => {
                            recorded_final_since = None;
                            false
                        }
                    };
                    if over {
                        let state = row.map(|i| i.state.to_string());
                        yield Ok(SseEvent::default()
                            .event("end")
                            .data(serde_json::json!({ "uuid": uuid, "state": state }).to_string()));
                        break;
                    }
                }
            }
        }
    }
}

/// An event as sent: `id` its stream sequence, `data` the bus payload.
fn sse(f: &Followed) -> SseEvent {
    SseEvent::default()
        .id(f.seq.to_string())
        .data(String::from_utf8_lossy(&f.event.encode()))
}

/// Events of a private queue are for its owner and superusers.
fn may_see(user: &User, private: bool, owner: i64) -> Result<(), ApiError> {
    if !private || user.is_superuser || user.id == owner {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied)
    }
}

/// The queue of each instance seen, read once (at most 10,000 kept).
#[derive(Default)]
struct QueueOf(HashMap<Uuid, Option<i64>>);

impl QueueOf {
    async fn get(&mut self, store: &Store, uuid: Uuid) -> Option<i64> {
        if let Some(q) = self.0.get(&uuid) {
            return *q;
        }
        match store.queue_of_instance(uuid).await {
            Ok(q) => {
                if self.0.len() >= 10_000 {
                    self.0.clear();
                }
                self.0.insert(uuid, q);
                q
            }
            Err(e) => {
                tracing::warn!(error = %e, "read an instance's queue");
                None
            }
        }
    }
}

/// The private queues of others (by id: names can change), as the events of everything
/// see them: read again every 10 s, so a queue made private (or public) is followed.
struct Hidden {
    user_id: i64,
    everything: bool,
    ids: HashSet<i64>,
    read_at: Option<Instant>,
}

impl Hidden {
    fn new(user: &User) -> Self {
        Hidden {
            user_id: user.id,
            everything: user.is_superuser,
            ids: HashSet::new(),
            read_at: None,
        }
    }

    /// Whether the events of `uuid` are for this user.
    async fn shows(&mut self, store: &Store, queues: &mut QueueOf, uuid: Uuid) -> bool {
        if self.everything {
            return true;
        }
        if self
            .read_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            match store.private_queues_of_others(self.user_id).await {
                Ok(ids) => {
                    self.ids = ids.into_iter().collect();
                    self.read_at = Some(Instant::now());
                }
                // Not known: nothing is shown until it is.
                Err(e) if self.read_at.is_none() => {
                    tracing::warn!(error = %e, "read private queues");
                    return false;
                }
                Err(e) => tracing::warn!(error = %e, "read private queues; using the last read"),
            }
        }
        // Most deployments have no private queue: no lookup then.
        if self.ids.is_empty() {
            return true;
        }
        match queues.get(store, uuid).await {
            Some(q) => !self.ids.contains(&q),
            None => false,
        }
    }
}
