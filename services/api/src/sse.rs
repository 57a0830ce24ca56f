//! Server-Sent Events: the answer type of the live streams (events, log tails) and the
//! request's starting point (`Last-Event-ID`, `?since=`, `?from_seq=`, `?offset=`).
//! docs/events.md and docs/logs.md describe the streams.

use crate::error::ApiError;
use crate::io::{param, schema_object};
use crate::query::Query;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse, StatusCode as DocStatus};
use aide::operation::{OperationInput, OperationOutput, add_parameters};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use indexmap::IndexMap;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A live stream (`text/event-stream`), with a comment every 15 s so that proxies and
/// clients see a quiet stream is alive. It ends when the api shuts down.
pub struct EventStream(Response);

impl EventStream {
    pub fn new(
        closing: &CancellationToken,
        events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    ) -> Self {
        let events = events.take_until(closing.clone().cancelled_owned());
        let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
        let mut r = sse.into_response();
        // Tell buffering proxies (nginx) to pass each event on at once.
        r.headers_mut().insert(
            "x-accel-buffering",
            axum::http::HeaderValue::from_static("no"),
        );
        EventStream(r)
    }
}

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        self.0
    }
}

impl OperationOutput for EventStream {
    type Inner = String;

    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        let schema = ctx.schema.subschema_for::<String>();
        let response = DocResponse {
            description: "Server-Sent Events (see docs/events.md, docs/logs.md)".into(),
            content: IndexMap::from_iter([(
                "text/event-stream".into(),
                MediaType {
                    schema: Some(schema_object(schema)),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        vec![(Some(DocStatus::Code(200)), response)]
    }
}

/// `Last-Event-ID`, the `id` of the last event a reconnecting client saw (our ids are
/// non-negative integers); anything else is a 400 naming the header.
fn last_event_id(parts: &Parts) -> Result<Option<u64>, ApiError> {
    parts
        .headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(bad_last_event_id)
        })
        .transpose()
}

fn bad_last_event_id() -> ApiError {
    ApiError::field("Last-Event-ID", "A valid integer is required.")
}

/// Where an events stream starts, if the request says: after `Last-Event-ID` (a stream
/// sequence number, as sent in each event's `id`), at `?from_seq=`, or at `?since=` (an
/// RFC 3339 time). A value that does not parse is a 400 naming it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay(pub Option<saltant_bus::StartAt>);

impl<S: Send + Sync> FromRequestParts<S> for Replay {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        use saltant_bus::StartAt;
        if let Some(last) = last_event_id(parts)? {
            let next = last.checked_add(1).ok_or_else(bad_last_event_id)?;
            return Ok(Replay(Some(StartAt::Seq(next))));
        }
        let q = Query::from_uri(&parts.uri);
        if let Some(v) = q.get("from_seq") {
            let n: u64 = v
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::field("from_seq", "A valid integer is required."))?;
            return Ok(Replay(Some(StartAt::Seq(n))));
        }
        if let Some(v) = q.get("since") {
            let t: DateTime<Utc> = DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::field(
                        "since",
                        "Datetime has wrong format. Use one of these formats instead: \
                         YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
                    )
                })?;
            return Ok(Replay(Some(StartAt::Time(t))));
        }
        Ok(Replay(None))
    }
}

impl OperationInput for Replay {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        add_parameters(
            ctx,
            op,
            [
                param(
                    "since",
                    false,
                    Some("Replay from the first event stored at or after this time.".into()),
                    json!({"type": "string", "format": "date-time"}),
                ),
                param(
                    "from_seq",
                    false,
                    Some(
                        "Replay from this events-stream sequence number (an event's `id`).".into(),
                    ),
                    json!({"type": "integer", "minimum": 1}),
                ),
            ],
        );
    }
}

/// `?offset=`: where a log tail starts, in bytes of the file; negative counts from the
/// end as it is when the tail starts. `Last-Event-ID` (an offset, as sent in each
/// event's `id`) wins over it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailFrom(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for TailFrom {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(last) = last_event_id(parts)? {
            let offset = i64::try_from(last).map_err(|_| bad_last_event_id())?;
            return Ok(TailFrom(Some(offset)));
        }
        match Query::from_uri(&parts.uri).get("offset") {
            None => Ok(TailFrom(None)),
            Some(v) => v
                .parse()
                .map(|n| TailFrom(Some(n)))
                .map_err(|_| ApiError::field("offset", "A valid integer is required.")),
        }
    }
}

impl OperationInput for TailFrom {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let about = "Byte offset to start from (negative: from the end); default 0. \
                     `Last-Event-ID` overrides it.";
        add_parameters(
            ctx,
            op,
            [param(
                "offset",
                false,
                Some(about.into()),
                json!({"type": "integer"}),
            )],
        );
    }
}
