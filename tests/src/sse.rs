//! A Server-Sent Events client for the live streams, parsed by `eventsource-stream`.

use crate::Stack;
use eventsource_stream::{Event, Eventsource};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::time::Duration;

/// An open event stream.
pub struct Sse {
    events: BoxStream<'static, Event>,
}

impl Sse {
    /// The next event, or `None` if the stream ended or nothing came within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.events.next())
            .await
            .ok()
            .flatten()
    }

    /// Events until one named `last` (included), the stream's end, or `within` passes.
    pub async fn until(&mut self, last: &str, within: Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.next()).await {
            let done = e.event == last;
            out.push(e);
            if done {
                break;
            }
        }
        out
    }
}

impl Stack {
    /// Opens `path` (under `/api/`) as an event stream with `token` and extra headers; the
    /// status and, when it is 200, the stream (else the body).
    pub async fn sse(
        &self,
        token: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Result<Sse, String>) {
        let mut rb = self
            .http
            .get(format!("{}/{path}", self.url))
            .header("Authorization", format!("Token {token}"))
            .header("Accept", "text/event-stream");
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.expect("send request");
        let status = r.status().as_u16();
        if status != 200 {
            return (status, Err(r.text().await.unwrap_or_default()));
        }
        let events = r
            .bytes_stream()
            .eventsource()
            .take_while(|e| std::future::ready(e.is_ok()))
            .filter_map(|e| std::future::ready(e.ok()))
            .boxed();
        (status, Ok(Sse { events }))
    }
}
