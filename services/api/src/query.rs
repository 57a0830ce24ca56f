//! List queries: pagination with the original page sizes and URLs, and django-filter's
//! lookups mapped onto bound SQL conditions.

use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use saltant_store::{Filter, Page};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The query string as ordered key/value pairs.
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn from_uri(uri: &Uri) -> Query {
        Query(
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }
    /// The last value of a key (Django's `QueryDict.get`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

use saltant_store::Store;
pub use saltant_store::filter::{FilterField, IdTable, Kind};

const FK_INVALID: &str = "Select a valid choice. That choice is not one of the available choices.";

/// Filters read from a query, before the ids they name are checked.
pub struct Parsed {
    pub filters: Vec<Filter>,
    /// Each id filter's parameter, table and ids.
    refs: Vec<(String, IdTable, Vec<i64>)>,
    /// django-filter's messages for the values that could not be read.
    errors: Map<String, Value>,
}

impl Parsed {
    /// django-filter's model choice fields: an id that names no row is a 400, as a
    /// malformed one is.
    pub async fn checked(self, store: &Store) -> ApiResult<Vec<Filter>> {
        let mut errors = self.errors;
        for (param, table, ids) in &self.refs {
            if !store.missing_ids(*table, ids).await?.is_empty() {
                errors.insert(param.clone(), json!([FK_INVALID]));
            }
        }
        if errors.is_empty() {
            Ok(self.filters)
        } else {
            Err(ApiError::Fields(errors))
        }
    }
}

/// Turns query parameters into filters. Unknown parameters and empty values are ignored,
/// as django-filter does; invalid values give its 400 errors (with those of ids that name
/// no row, once checked).
pub fn filters(q: &Query, fields: &[FilterField]) -> Parsed {
    let mut parsed = Parsed {
        filters: Vec::new(),
        refs: Vec::new(),
        errors: Map::new(),
    };
    for (param, value) in &q.0 {
        if value.is_empty() {
            continue;
        }
        let (base, lookup) = match param.rsplit_once("__") {
            Some((b, l)) if fields.iter().any(|f| f.name == b) => (b, l),
            _ => (param.as_str(), "exact"),
        };
        let Some(field) = fields.iter().find(|f| f.name == base) else {
            continue;
        };
        match filter(field, lookup, value) {
            Ok(None) => {}
            Ok(Some(f)) => {
                if let (Kind::Fk(table), Filter::IdEq(_, id)) = (field.kind, &f) {
                    parsed.refs.push((param.clone(), table, vec![*id]));
                }
                if let (Kind::Fk(table), Filter::IdIn(_, ids)) = (field.kind, &f) {
                    parsed.refs.push((param.clone(), table, ids.clone()));
                }
                parsed.filters.push(f);
            }
            Err(message) => {
                parsed.errors.insert(param.clone(), json!([message]));
            }
        }
    }
    parsed
}

/// The longest regular expression a filter takes.
const MAX_REGEX_CHARS: usize = 200;

/// One parameter's filter; `None` for a lookup the field does not have (django-filter
/// ignores the parameter) or a boolean it cannot read; `Err` with django-filter's message.
fn filter(field: &FilterField, lookup: &str, value: &str) -> Result<Option<Filter>, &'static str> {
    let c = field.column;
    let text = || value.to_owned();
    let list = || value.split(',').map(str::to_owned).collect::<Vec<_>>();
    let time = |wrap: fn(&'static str, DateTime<Utc>) -> Filter| {
        parse_time(value)
            .map(|t| Some(wrap(c, t)))
            .ok_or("Enter a valid date/time.")
    };
    Ok(Some(match (field.kind, lookup) {
        (Kind::Text, "exact") => Filter::TextEq(c, text()),
        (Kind::Text | Kind::Choice(_), "in") => Filter::TextIn(c, list()),
        (Kind::Text, "contains") => Filter::TextContains(c, text()),
        (Kind::Text, "startswith") => Filter::TextStartsWith(c, text()),
        (Kind::Text, "endswith") => Filter::TextEndsWith(c, text()),
        // A bound on what one pattern may ask of the database (the statement time-out
        // bounds the rest: docs/security.md).
        (Kind::Text, "regex") if value.chars().count() > MAX_REGEX_CHARS => {
            return Err("Ensure this value has at most 200 characters.");
        }
        (Kind::Text, "regex") => Filter::TextRegex(c, text()),
        (Kind::Choice(choices), "exact") if choices.contains(&value) => Filter::TextEq(c, text()),
        // The literal %(value)s is the original's (an upstream bug clients see).
        (Kind::Choice(_), "exact") => {
            return Err("Select a valid choice. %(value)s is not one of the available choices.");
        }
        (Kind::Bool, "exact") => match value {
            "true" | "True" | "1" => Filter::BoolEq(c, true),
            "false" | "False" | "0" => Filter::BoolEq(c, false),
            _ => return Ok(None),
        },
        (Kind::Fk(_), "exact") => Filter::IdEq(c, value.trim().parse().map_err(|_| FK_INVALID)?),
        (Kind::Fk(_), "in") => Filter::IdIn(
            c,
            value
                .split(',')
                .map(|v| v.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| FK_INVALID)?,
        ),
        (Kind::Time, "year") => {
            Filter::TimeYear(c, value.trim().parse().map_err(|_| "Enter a number.")?)
        }
        (Kind::Time, "range") => {
            let parts: Vec<_> = value.split(',').collect();
            match (
                parts.len(),
                parts.first().and_then(|a| parse_time(a)),
                parts.get(1).and_then(|b| parse_time(b)),
            ) {
                (2, Some(a), Some(b)) => Filter::TimeRange(c, a, b),
                _ => return Err("Enter a valid date/time."),
            }
        }
        (Kind::Time, "exact") => return time(Filter::TimeEq),
        (Kind::Time, "lt") => return time(Filter::TimeLt),
        (Kind::Time, "lte") => return time(Filter::TimeLte),
        (Kind::Time, "gt") => return time(Filter::TimeGt),
        (Kind::Time, "gte") => return time(Filter::TimeGte),
        // A lookup this field does not have: django-filter ignores the parameter.
        _ => return Ok(None),
    }))
}

/// A full ISO 8601 date-time; naive ones are UTC (the server's time zone).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// Which page a request asks for, resolved against the row count.
pub struct Pagination {
    pub page: Page,
    pub next: Option<String>,
    pub previous: Option<String>,
}

/// Resolves `page`/`page_size` as DRF's PageNumberPagination with an unbounded page size.
pub fn paginate(
    q: &Query,
    uri: &Uri,
    headers: &HeaderMap,
    default_size: i64,
    count: i64,
) -> ApiResult<Pagination> {
    let size = q
        .get("page_size")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default_size);
    let pages = if count == 0 {
        1
    } else {
        (count - 1) / size + 1
    };
    let page = match q.get("page") {
        None => 1,
        Some("last") => pages,
        Some(p) => p.trim().parse::<i64>().map_err(|_| ApiError::InvalidPage)?,
    };
    if page < 1 || page > pages {
        return Err(ApiError::InvalidPage);
    }
    let offset = (page - 1).checked_mul(size).ok_or(ApiError::InvalidPage)?;
    let url = |p: Option<i64>| {
        let mut pairs: Vec<(String, String)> =
            q.0.iter().filter(|(k, _)| k != "page").cloned().collect();
        if let Some(p) = p {
            pairs.push(("page".into(), p.to_string()));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        absolute_url(uri, headers, &pairs)
    };
    Ok(Pagination {
        page: Page {
            offset,
            limit: (size < i64::MAX - offset).then_some(size),
        },
        next: (page < pages).then(|| url(Some(page + 1))),
        previous: match page {
            1 => None,
            2 => Some(url(None)),
            p => Some(url(Some(p - 1))),
        },
    })
}

/// `http://<host><path>?<query>` from the request, as Django's `build_absolute_uri`.
pub fn absolute_url(uri: &Uri, headers: &HeaderMap, pairs: &[(String, String)]) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    let mut url = format!("{scheme}://{host}{}", uri.path());
    if !pairs.is_empty() {
        url.push('?');
        url.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish(),
        );
    }
    url
}

/// Streams `{"count","next","previous","results":[…]}` row by row: memory stays bounded
/// however large the page.
pub fn stream_page<T: Serialize + Send + 'static>(
    count: i64,
    p: Pagination,
    rows: BoxStream<'static, Result<T, saltant_store::Error>>,
) -> Response {
    let head = format!(
        "{{\"count\":{count},\"next\":{},\"previous\":{},\"results\":[",
        Value::from(p.next),
        Value::from(p.previous)
    );
    let mut first = true;
    let body =
        futures::stream::once(
            async move { Ok::<_, std::io::Error>(axum::body::Bytes::from(head)) },
        )
        .chain(rows.map(move |row| {
            let row = row.map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "stream list rows");
                std::io::Error::other("list aborted")
            })?;
            let mut buf = if first {
                Vec::with_capacity(256)
            } else {
                b",".to_vec()
            };
            first = false;
            serde_json::to_writer(&mut buf, &row).map_err(std::io::Error::other)?;
            Ok(axum::body::Bytes::from(buf))
        }))
        .chain(futures::stream::once(async {
            Ok(axum::body::Bytes::from_static(b"]}"))
        }));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::from_uri(&format!("/x?{s}").parse::<Uri>().expect("uri"))
    }

    #[test]
    fn pages_follow_drf() {
        let uri: Uri = "/api/users/?page_size=1&username__startswith=non"
            .parse()
            .expect("uri");
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "srv:8000".parse().expect("host"));
        let p = paginate(
            &q("page_size=1&username__startswith=non&page=2"),
            &uri,
            &h,
            100,
            3,
        )
        .expect("page 2");
        assert_eq!(p.page.offset, 1);
        assert_eq!(
            p.previous.as_deref(),
            Some("http://srv:8000/api/users/?page_size=1&username__startswith=non")
        );
        assert_eq!(
            p.next.as_deref(),
            Some("http://srv:8000/api/users/?page=3&page_size=1&username__startswith=non")
        );
        let huge =
            paginate(&q("page=1&page_size=9223372036854775807"), &uri, &h, 10, 5).expect("huge");
        assert_eq!(
            (huge.page.offset, huge.page.limit, huge.next),
            (0, None, None)
        );
        assert!(matches!(
            paginate(&q("page=2"), &uri, &h, 10, 5),
            Err(ApiError::InvalidPage)
        ));
        assert!(matches!(
            paginate(&q("page=0"), &uri, &h, 10, 5),
            Err(ApiError::InvalidPage)
        ));
        assert!(matches!(
            paginate(&q("page=x"), &uri, &h, 10, 5),
            Err(ApiError::InvalidPage)
        ));
        assert!(paginate(&q("page=1"), &uri, &h, 10, 0).is_ok());
        let last = paginate(&q("page=last&page_size=-3"), &uri, &h, 10, 25).expect("last");
        assert_eq!(last.page.offset, 20);
    }

    #[test]
    fn filters_follow_django_filter() {
        const F: &[FilterField] = &[
            FilterField {
                name: "name",
                column: "n",
                kind: Kind::Text,
            },
            FilterField {
                name: "state",
                column: "s",
                kind: Kind::Choice(&["created", "failed"]),
            },
            FilterField {
                name: "task_type",
                column: "t",
                kind: Kind::Fk(IdTable::Queues),
            },
            FilterField {
                name: "datetime_created",
                column: "d",
                kind: Kind::Time,
            },
            FilterField {
                name: "active",
                column: "a",
                kind: Kind::Bool,
            },
        ];
        let got = filters(
            &q("name__startswith=sdk&state__in=created,failed&name__icontains=x&active=Yes&name="),
            F,
        );
        assert!(got.errors.is_empty());
        assert_eq!(got.filters.len(), 2);
        let ids = filters(&q("task_type__in=3,4&task_type=5"), F);
        assert_eq!(
            ids.refs,
            [
                ("task_type__in".to_owned(), IdTable::Queues, vec![3, 4]),
                ("task_type".to_owned(), IdTable::Queues, vec![5])
            ]
        );
        assert_eq!(filters(&q("task_type=abc"), F).errors.len(), 1);
        assert_eq!(filters(&q("state=bogus"), F).errors.len(), 1);
        assert_eq!(
            filters(&q("datetime_created__gt=2018-12-14"), F)
                .errors
                .len(),
            1
        );
        assert_eq!(
            filters(&q("datetime_created__gt=2018-12-14T05:00:00Z"), F)
                .filters
                .len(),
            1
        );
    }
}
