//! `GET /api/taskinstances/{uuid}/logs/{name}/tail`: a log file live, as Server-Sent
//! Events, from PostgreSQL (what the log-collector stored) and woken by its `stored`
//! signals. Only the gap-free prefix of the attempt's chunks is read, so byte offsets never
//! move; each `output` event's `id` is the offset after its text, and a client that
//! reconnects with it as `Last-Event-ID` misses nothing and sees nothing twice. The stream
//! ends (`end`) once the attempt's end of output is stored and every chunk before it, or,
//! not complete, when chunks stay missing or the attempt is over with no end of output.

use super::{LogFileName, locate};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::io::QueryAttempt;
use crate::sse::{EventStream, TailFrom};
use axum::extract::{Path, State};
use axum::response::sse::Event;
use futures::StreamExt;
use saltant_store::Store;
use saltant_store::logs::{Cursor, LOG_PAGE};
use serde_json::json;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a tail waits without a new chunk for chunks still missing (a killed
/// log-collector's unacked batch is redelivered after its 30 s ack wait).
const MISSING_WAIT: Duration = Duration::from_secs(60);
/// How long the tail of an attempt that is over but never started waits for output.
const NEVER_RAN_WAIT: Duration = Duration::from_secs(2);
/// A tail looks for new output at least this often, signal or not.
const POLL: Duration = Duration::from_secs(1);

pub async fn tail(
    State(s): State<AppState>,
    _: Auth,
    Path(file): Path<LogFileName>,
    QueryAttempt(asked): QueryAttempt,
    TailFrom(from): TailFrom,
) -> ApiResult<EventStream> {
    let (uuid, attempt, stream) = locate(&s, file, asked).await?;
    // Subscribed before the first read: no store between them goes unnoticed.
    let signals = s.bus.stored_signals(uuid).await?;
    let file = File {
        store: s.store.clone(),
        uuid,
        attempt,
        stream,
    };
    let start = file.start(from).await?;
    Ok(EventStream::new(&s.closing, file.follow(start, signals)))
}

/// The log file followed.
struct File {
    store: Store,
    uuid: Uuid,
    attempt: i32,
    stream: &'static str,
}

/// Where a tail is: the last chunk of the gap-free prefix known, the read cursor and the
/// offset of the next byte to read.
struct Position {
    prefix_end: i64,
    at: Cursor,
    offset: i64,
}

impl File {
    /// The position of byte `from` (0 by default; negative: from the current end).
    async fn start(&self, from: Option<i64>) -> Result<Position, saltant_store::Error> {
        let (s, u, a, st) = (&self.store, self.uuid, self.attempt, self.stream);
        let prefix_end = s.contiguous_end(u, a, 0).await?;
        let offset = match from.unwrap_or(0) {
            n if n >= 0 => n,
            n => (s.log_seek(u, a, st, prefix_end, i64::MAX).await?.end + n).max(0),
        };
        let at = s.log_seek(u, a, st, prefix_end, offset).await?;
        Ok(Position {
            prefix_end,
            at,
            offset,
        })
    }

    fn follow(
        self,
        mut pos: Position,
        mut signals: async_nats::Subscriber,
    ) -> impl futures::Stream<Item = Result<Event, Infallible>> {
        async_stream::stream! {
            // Bytes of a UTF-8 character cut by a chunk's end wait for the rest.
            let mut held: Vec<u8> = Vec::new();
            let mut quiet = Quiet::new(pos.prefix_end);
            let (mut signalled, mut first) = (true, true);
            loop {
                // Everything stored up to the prefix's end (nothing to read if it did not
                // grow since the last look).
                let mut full = quiet.grew(pos.prefix_end) | std::mem::take(&mut first);
                while full {
                    let page = match self.store.log_page(
                        self.uuid, self.attempt, self.stream, pos.prefix_end,
                        pos.offset..i64::MAX, pos.at,
                    ).await {
                        Ok(p) => p,
                        Err(e) => { yield Ok(failure(&e)); return; }
                    };
                    full = page.len() as i64 == LOG_PAGE;
                    for (seq, end, part) in page {
                        pos.at = Cursor { after: seq, end };
                        pos.offset = end;
                        held.extend_from_slice(&part);
                        let keep = incomplete_tail(&held);
                        let text = String::from_utf8_lossy(&held[..held.len() - keep]).into_owned();
                        held.drain(..held.len() - keep);
                        if !text.is_empty() {
                            yield Ok(output(end - keep as i64, &text));
                        }
                    }
                }
                match self.finished(&pos, &quiet).await {
                    Ok(Some(end)) => {
                        if !held.is_empty() {
                            yield Ok(output(pos.offset, &String::from_utf8_lossy(&held)));
                        }
                        for e in end {
                            yield Ok(e);
                        }
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => { yield Ok(failure(&e)); return; }
                }
                tokio::select! {
                    s = signals.next(), if signalled => signalled = s.is_some(),
                    _ = tokio::time::sleep(POLL) => {}
                }
                match self.store.contiguous_end(self.uuid, self.attempt, pos.prefix_end + 1).await {
                    Ok(e) => pos.prefix_end = e,
                    Err(e) => { yield Ok(failure(&e)); return; }
                }
            }
        }
    }

    /// The events ending the tail, once everything is read:
    /// - the attempt's end of output is stored and the prefix holds every chunk it
    ///   announced (`complete`); chunks still missing are waited for [`MISSING_WAIT`] with
    ///   no new chunk (a killed collector's batch is redelivered after its ack wait);
    /// - no end of output, and the attempt is over: it never started ([`NEVER_RAN_WAIT`])
    ///   or its executor was lost ([`MISSING_WAIT`] without a new chunk): not complete.
    async fn finished(
        &self,
        pos: &Position,
        quiet: &Quiet,
    ) -> Result<Option<Vec<Event>>, saltant_store::Error> {
        let size = pos.at.end;
        if let Some(end) = self.store.log_end(self.uuid, self.attempt).await? {
            if pos.prefix_end + 1 >= end.chunks {
                let mut events = Vec::new();
                let dropped = end.dropped(self.stream);
                if dropped > 0 {
                    events.push(
                        Event::default()
                            .event("truncated")
                            .data(json!({ "dropped_bytes": dropped }).to_string()),
                    );
                }
                events.push(ending(size, true));
                return Ok(Some(events));
            }
            return Ok((quiet.for_() >= MISSING_WAIT).then(|| vec![ending(size, false)]));
        }
        if quiet.for_() < NEVER_RAN_WAIT {
            return Ok(None);
        }
        let (over, started) = match self.store.instance(self.uuid).await? {
            None => (true, false),
            Some(i) => (
                i.attempt > self.attempt || i.state.is_final(),
                i.attempt > self.attempt || i.datetime_started.is_some(),
            ),
        };
        let wait = if started {
            MISSING_WAIT
        } else {
            NEVER_RAN_WAIT
        };
        Ok((over && quiet.for_() >= wait).then(|| vec![ending(size, false)]))
    }
}

/// Since when the gap-free prefix has not grown.
struct Quiet {
    prefix_end: i64,
    since: Instant,
}

impl Quiet {
    fn new(prefix_end: i64) -> Self {
        Quiet {
            prefix_end,
            since: Instant::now(),
        }
    }

    /// Whether the prefix grew since the last look (the quiet then starts again).
    fn grew(&mut self, prefix_end: i64) -> bool {
        let grew = prefix_end > self.prefix_end;
        if grew {
            self.prefix_end = prefix_end;
            self.since = Instant::now();
        }
        grew
    }

    fn for_(&self) -> Duration {
        self.since.elapsed()
    }
}

/// Text of the file; `id` is the offset after it.
fn output(next: i64, text: &str) -> Event {
    Event::default()
        .event("output")
        .id(next.to_string())
        .data(json!({ "text": text }).to_string())
}

/// The tail is over: `size` bytes were read; `complete`: the end of output was stored.
fn ending(size: i64, complete: bool) -> Event {
    Event::default()
        .event("end")
        .data(json!({ "size": size, "complete": complete }).to_string())
}

/// The database failed mid-stream: the client reconnects with its last id.
fn failure(e: &saltant_store::Error) -> Event {
    tracing::warn!(error = %e, "log tail");
    Event::default()
        .event("error")
        .data(json!({ "detail": "The log could not be read; reconnect to resume." }).to_string())
}

/// How many bytes at the end of `buf` begin a UTF-8 character that is not complete.
fn incomplete_tail(buf: &[u8]) -> usize {
    for back in 1..=buf.len().min(3) {
        let b = buf[buf.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::incomplete_tail;

    #[test]
    fn cut_characters_wait_for_their_rest() {
        let e = "é".as_bytes(); // 2 bytes
        let euro = "€".as_bytes(); // 3 bytes
        let crab = "🦀".as_bytes(); // 4 bytes
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(b""), 0);
        assert_eq!(incomplete_tail(e), 0);
        assert_eq!(incomplete_tail(&e[..1]), 1);
        assert_eq!(incomplete_tail(&[b"ab", &euro[..2]].concat()), 2);
        assert_eq!(incomplete_tail(euro), 0);
        assert_eq!(incomplete_tail(&crab[..3]), 3);
        assert_eq!(incomplete_tail(crab), 0);
        // Not UTF-8 at all: shown (replaced), not held.
        assert_eq!(incomplete_tail(&[0x80, 0x80, 0x80, 0x80]), 0);
    }
}
