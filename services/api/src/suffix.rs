//! DRF's format suffix on the router's paths (spec §2.1): `/api/users.json`,
//! `/api/users/admin.json`, `/api/executabletaskinstances/<uuid>/clone.json/`, `/api/.json`
//! are the same views as without it, in JSON (the only format served). Paths outside the
//! router (token, status, the native results) take no suffix, as in the original.
//!
//! The path is rewritten before routing; the request's own URI stays in `OriginalUri`
//! (for page links) and [`JsonSuffix`] marks it (for the API root's links).

use axum::extract::{OriginalUri, Request};
use axum::http::Uri;

/// The resources of the original's router, as the API root lists them.
pub(crate) const ROUTER: [&str; 7] = [
    "users",
    "containertaskinstances",
    "containertasktypes",
    "executabletaskinstances",
    "executabletasktypes",
    "taskqueues",
    "taskwhitelists",
];

/// Marks a request made with the `.json` suffix.
#[derive(Clone, Copy)]
pub(crate) struct JsonSuffix;

/// The router path a suffixed path stands for (with its trailing slash), if it is one.
/// DRF appends `\.(?P<format>[a-z0-9]+)/?$` to each router pattern (`^users/?$`,
/// `^users/(?P<username>[^/.]+)/?$`, …), so a `/` may stand before the suffix and no
/// segment after the resource's name holds a `.`.
fn unsuffixed(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let base = rest.strip_suffix(".json")?;
    if base.is_empty() {
        return Some("/api/".into());
    }
    let base = match base.strip_suffix('/') {
        Some(b) if !b.is_empty() => b,
        _ => base,
    };
    let mut segments = base.split('/');
    let first = segments.next()?;
    let lookups_ok = segments.all(|s| !s.is_empty() && !s.contains('.'));
    (ROUTER.contains(&first) && lookups_ok).then(|| format!("/api/{base}/"))
}

/// Rewrites a suffixed router path before routing.
pub(crate) async fn strip(mut req: Request) -> Request {
    let Some(path) = unsuffixed(req.uri().path()) else {
        return req;
    };
    let to = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    if let Ok(uri) = to.parse::<Uri>() {
        let original = std::mem::replace(req.uri_mut(), uri);
        req.extensions_mut().insert(OriginalUri(original));
        req.extensions_mut().insert(JsonSuffix);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::unsuffixed;

    #[test]
    fn only_router_paths_take_the_suffix() {
        for (path, expected) in [
            ("/api/users.json", Some("/api/users/")),
            ("/api/users.json/", Some("/api/users/")),
            ("/api/users/admin.json", Some("/api/users/admin/")),
            ("/api/.json", Some("/api/")),
            ("/api/taskqueues/3.json", Some("/api/taskqueues/3/")),
            (
                "/api/executabletaskinstances/u/clone.json",
                Some("/api/executabletaskinstances/u/clone/"),
            ),
            ("/api/users/.json", Some("/api/users/")),
            ("/api/users/.json/", Some("/api/users/")),
            ("/api/users/admin/.json", Some("/api/users/admin/")),
            ("/api/taskqueues/3/.json", Some("/api/taskqueues/3/")),
            ("/api/users/ad.min.json", None),
            ("/api/users//.json", None),
            ("/api//.json", None),
            ("/api/users.xml", None),
            ("/api/users", None),
            ("/api/token.json", None),
            ("/api/updatetaskinstancestatus/u.json", None),
            ("/api/taskinstances/u/results.json", None),
            ("/other/users.json", None),
        ] {
            assert_eq!(unsuffixed(path).as_deref(), expected, "{path}");
        }
    }
}
