//! Native endpoints (not in the original API): the output of an instance's attempts as
//! stored by the log-collector, named like the files the original's executor wrote.
//! `GET /api/taskinstances/{uuid}/logs/` lists them; `…/logs/{name}` downloads one, whole
//! or a single byte range, streamed from PostgreSQL (docs/api.md, "Logs").

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::io::{FilesUrl, PathUuid, QueryAttempt};
use crate::repr::opt_datetime;
use crate::resources::existing_instance;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use http_range_header::{RangeUnsatisfiableError, parse_range_header};
use saltant_store::logs::LogFile;
use serde::Serialize;
use uuid::Uuid;

mod tail;
pub use tail::tail;

const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// On a download of a truncated file: bytes its output limit dropped after the end.
const TRUNCATED_HEADER: &str = "saltant-truncated-bytes";

/// The name of an attempt's file: the original's `<uuid>-<stream>.txt` for the first
/// attempt, `<uuid>-attempt<n>-<stream>.txt` for a later one.
pub(crate) fn file_name(uuid: Uuid, attempt: i32, stream: &str) -> String {
    if attempt == 1 {
        format!("{uuid}-{stream}.txt")
    } else {
        format!("{uuid}-attempt{attempt}-{stream}.txt")
    }
}

/// The attempt (if the name gives one) and stream a file name stands for.
fn parse_name(uuid: Uuid, name: &str) -> Option<(Option<i32>, &'static str)> {
    let rest = name.strip_prefix(&format!("{uuid}-"))?;
    let rest = rest.strip_suffix(".txt")?;
    let (attempt, stream) = match rest.strip_prefix("attempt") {
        Some(r) => {
            let (digits, stream) = r.split_once('-')?;
            let n: i32 = digits.parse().ok().filter(|n| *n >= 2)?;
            // One name per file: no sign, no leading zero.
            (n.to_string() == digits).then_some((Some(n), stream))?
        }
        None => (None, rest),
    };
    STREAMS
        .into_iter()
        .find(|s| *s == stream)
        .map(|s| (attempt, s))
}

/// One log file in the listing.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LogFileRepr {
    /// The file's name (its download path under `…/logs/`).
    name: String,
    attempt: i32,
    /// `stdout` or `stderr`.
    stream: &'static str,
    /// Bytes stored.
    size: i64,
    /// Bytes the attempt's output limit dropped from this stream (0: none).
    truncated_bytes: i64,
    /// The attempt's output is all stored (its end was recorded).
    complete: bool,
    /// When its last output was stored (`null`: none).
    #[schemars(with = "Option<DateTime<Utc>>")]
    #[serde(serialize_with = "opt_datetime")]
    last_modified: Option<DateTime<Utc>>,
    url: String,
}

/// An instance's log files: both streams of every attempt that stored output.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LogFiles {
    uuid: Uuid,
    files: Vec<LogFileRepr>,
}

pub async fn list(
    State(s): State<AppState>,
    _: Auth,
    PathUuid(id): PathUuid,
    FilesUrl(base): FilesUrl,
) -> ApiResult<Json<LogFiles>> {
    let uuid = existing_instance(&s, &id).await?;
    let stored = s.store.log_files(uuid).await?;
    let ends = s.store.log_ends(uuid).await?;
    let mut attempts: Vec<i32> = stored.iter().map(|f| f.attempt).collect();
    attempts.extend(ends.iter().map(|e| e.attempt));
    attempts.sort_unstable();
    attempts.dedup();
    let files = attempts
        .into_iter()
        .flat_map(|attempt| STREAMS.map(|stream| (attempt, stream)))
        .map(|(attempt, stream)| {
            let f = stored
                .iter()
                .find(|f: &&LogFile| f.attempt == attempt && f.stream == stream);
            let name = file_name(uuid, attempt, stream);
            let end = ends.iter().find(|e| e.attempt == attempt);
            LogFileRepr {
                truncated_bytes: end.map_or(0, |e| e.dropped(stream)),
                complete: end.is_some(),
                url: format!("{base}/{name}"),
                name,
                attempt,
                stream,
                size: f.map_or(0, |f| f.size),
                last_modified: f.map(|f| f.modified),
            }
        })
        .collect();
    Ok(Json(LogFiles { uuid, files }))
}

/// `{uuid}` and `{name}` of a log file.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct LogFileName {
    uuid: String,
    /// The file's name in the listing (`<uuid>-stdout.txt`, `<uuid>-attempt2-stderr.txt`).
    name: String,
}

/// The instance, attempt and stream a log file's path and `?attempt=` name; 404 when the
/// instance or the attempt does not exist, or the name is not a log file's.
async fn locate(
    s: &AppState,
    LogFileName { uuid: id, name }: LogFileName,
    asked: Option<i32>,
) -> ApiResult<(Uuid, i32, &'static str)> {
    let uuid: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let instance = s.store.instance(uuid).await?.ok_or(ApiError::NotFound)?;
    let (named, stream) = parse_name(uuid, &name).ok_or(ApiError::NotFound)?;
    let attempt = match (named, asked) {
        (Some(a), Some(b)) if a != b => return Err(ApiError::NotFound),
        (a, b) => a.or(b).unwrap_or(1),
    };
    if attempt > instance.attempt.max(1) {
        return Err(ApiError::NotFound);
    }
    Ok((uuid, attempt, stream))
}

pub async fn download(
    State(s): State<AppState>,
    _: Auth,
    Path(file): Path<LogFileName>,
    QueryAttempt(asked): QueryAttempt,
    headers: HeaderMap,
) -> ApiResult<LogText> {
    let (uuid, attempt, stream) = locate(&s, file, asked).await?;
    let end = s.store.log_end(uuid, attempt).await?;
    // An attempt that printed nothing is listed (its end is stored): an empty file.
    let extent = match s.store.log_extent(uuid, attempt, stream).await? {
        Some(e) => e,
        None if end.is_some() => saltant_store::logs::LogExtent {
            len: 0,
            last_seq: -1,
            modified: None,
        },
        None => return Err(ApiError::NotFound),
    };
    let len = extent.len;
    let (status, range) = match requested_range(&headers, len) {
        Ok(Some(r)) => (StatusCode::PARTIAL_CONTENT, r),
        Ok(None) => (StatusCode::OK, 0..len),
        Err(()) => return Ok(LogText(unsatisfiable(len))),
    };
    let want = range.end - range.start;
    let body = s
        .store
        .log_bytes(uuid, attempt, stream, extent.last_seq, range.clone())
        .map(|part| part.map(bytes::Bytes::from).map_err(std::io::Error::other));
    // Never more than announced, should a missing chunk be stored meanwhile.
    let body = capped(body, want);
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(want));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {}-{}/{len}", range.start, range.end - 1);
        h.insert(header::CONTENT_RANGE, header_value(&v));
    }
    if let Some(m) = extent.modified {
        h.insert(header::LAST_MODIFIED, header_value(&http_date(m)));
    }
    if let Some(end) = end
        && end.dropped(stream) > 0
    {
        h.insert(TRUNCATED_HEADER, HeaderValue::from(end.dropped(stream)));
    }
    Ok(LogText(r))
}

/// The single range `Range` asks for, if it asks for one (RFC 9110 §14.2): a header that
/// does not parse, or asks for several ranges, is ignored (the whole file, 200); a range
/// past the end, or an empty file's non-suffix range, is unsatisfiable (`Err`, 416).
fn requested_range(headers: &HeaderMap, len: i64) -> Result<Option<std::ops::Range<i64>>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let size = u64::try_from(len).unwrap_or(0);
    let ranges = match parse_range_header(value).map(|p| p.validate(size)) {
        Ok(Ok(r)) => r,
        Ok(Err(RangeUnsatisfiableError::Invalid(_))) | Err(_) => return Ok(None),
        Ok(Err(_)) => return Err(()),
    };
    match ranges.as_slice() {
        [one] => Ok(Some(to_i64(*one.start())..to_i64(*one.end()) + 1)),
        _ => Ok(None),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsatisfiable(len: i64) -> Response {
    let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_RANGE,
        header_value(&format!("bytes */{len}")),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// `body` cut after `limit` bytes.
fn capped<S>(
    body: S,
    limit: i64,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>>
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>>,
{
    let mut left = usize::try_from(limit).unwrap_or(0);
    body.map(move |part| {
        part.map(|mut b| {
            b.truncate(left);
            left -= b.len();
            b
        })
    })
    .take_while(|part| futures::future::ready(!matches!(part, Ok(b) if b.is_empty())))
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// A log file's text (`text/plain; charset=utf-8`, the bytes as stored), whole (200), one
/// range of it (206), or 416 when the range is past its end.
pub struct LogText(Response);

impl IntoResponse for LogText {
    fn into_response(self) -> Response {
        self.0
    }
}

impl aide::OperationOutput for LogText {
    type Inner = String;

    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<aide::openapi::StatusCode>, aide::openapi::Response)> {
        String::inferred_responses(ctx, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let u = Uuid::nil();
        for (attempt, stream) in [(1, "stdout"), (1, "stderr"), (3, "stdout"), (12, "stderr")] {
            let name = file_name(u, attempt, stream);
            let named = (attempt > 1).then_some(attempt);
            assert_eq!(parse_name(u, &name), Some((named, stream)), "{name}");
        }
        for bad in [
            format!("{u}-stdin.txt"),
            format!("{u}-attempt1-stdout.txt"),
            format!("{u}-attempt02-stdout.txt"),
            format!("{u}-attempt-stdout.txt"),
            format!("{u}-stdout"),
            format!("{}-stdout.txt", Uuid::max()),
        ] {
            assert_eq!(parse_name(u, &bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::RANGE,
                HeaderValue::from_str(v).expect("header value"),
            );
            h
        };
        assert_eq!(requested_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(requested_range(&with("bytes=0-3"), 10), Ok(Some(0..4)));
        assert_eq!(requested_range(&with("bytes=4-"), 10), Ok(Some(4..10)));
        assert_eq!(requested_range(&with("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(requested_range(&with("bytes=5-100"), 10), Ok(Some(5..10)));
        assert_eq!(requested_range(&with("bytes=10-"), 10), Err(()));
        assert_eq!(requested_range(&with("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(requested_range(&with("bytes=5-2"), 10), Ok(None));
        assert_eq!(requested_range(&with("lines=1-2"), 10), Ok(None));
        assert_eq!(requested_range(&with("bytes=0-"), 0), Err(()));
    }

    #[test]
    fn caps_the_body() {
        let parts = futures::stream::iter(["abc", "def", "gh"].map(|s| Ok(bytes::Bytes::from(s))));
        let out: Vec<_> = futures::executor::block_on(capped(parts, 5).collect::<Vec<_>>());
        let out: Vec<u8> = out
            .into_iter()
            .flat_map(|b| b.expect("part").to_vec())
            .collect();
        assert_eq!(out, b"abcde");
    }
}
