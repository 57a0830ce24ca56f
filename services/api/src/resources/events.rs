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
use std::collections::HashSet;
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
        .follow_events(s.bus.names.events_v1(), from.unwrap_or(StartAt::New))
        .await?;
    let hidden = Hidden::new(s.store.clone(), &user);
    Ok(EventStream::new(&s.closing, forward(events, Some(hidden))))
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
    Ok(EventStream::new(&s.closing, forward(events, None)))
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

/// `events` as sent, but those `hidden` hides; the stream ends when the reader fails (the
/// client reconnects with its last id).
fn forward(
    mut events: BoxStream<'static, Result<Followed, saltant_bus::Error>>,
    mut hidden: Option<Hidden>,
) -> impl futures::Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        while let Some(item) = events.next().await {
            match item {
                Ok(f) => {
                    if let Some(h) = hidden.as_mut() && h.hides(&f.event.queue).await {
                        continue;
                    }
                    yield Ok(sse(&f));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "events reader ended");
                    break;
                }
            }
        }
    }
}

/// `events` until the instance's recorded state is final for the attempt of the last
/// final event sent (the recorder decides on retries; it may lag the event). An instance
/// final before any event is read (its events expired) ends after a second.
fn until_final(
    store: Store,
    uuid: Uuid,
    mut events: BoxStream<'static, Result<Followed, saltant_bus::Error>>,
) -> impl futures::Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        let started = Instant::now();
        let (mut seen, mut last_final) = (false, None::<u32>);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                item = events.next() => match item {
                    Some(Ok(f)) => {
                        seen = true;
                        last_final = f.event.state.is_final().then_some(f.event.attempt);
                        yield Ok(sse(&f));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "events reader ended");
                        break;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if seen && last_final.is_none() {
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
                            last_final == Some(i.attempt as u32)
                                || (!seen && started.elapsed() > Duration::from_secs(1))
                        }
                        Some(_) => false,
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

/// The private queues of others, as the events of everything see them: looked up again
/// every 10 s, so a queue made private (or public) is followed.
struct Hidden {
    store: Store,
    user_id: i64,
    everything: bool,
    names: HashSet<String>,
    read_at: Option<Instant>,
}

impl Hidden {
    fn new(store: Store, user: &User) -> Self {
        Hidden {
            store,
            user_id: user.id,
            everything: user.is_superuser,
            names: HashSet::new(),
            read_at: None,
        }
    }

    async fn hides(&mut self, queue: &QueueName) -> bool {
        if self.everything {
            return false;
        }
        if self
            .read_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            match self.store.private_queues_of_others(self.user_id).await {
                Ok(names) => {
                    self.names = names.into_iter().collect();
                    self.read_at = Some(Instant::now());
                }
                // Not known: nothing is shown until it is.
                Err(e) if self.read_at.is_none() => {
                    tracing::warn!(error = %e, "read private queues");
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "read private queues; using the last read"),
            }
        }
        self.names.contains(queue.as_str())
    }
}
