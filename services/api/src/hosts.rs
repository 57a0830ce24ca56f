//! Django's `ALLOWED_HOSTS`: the api answers only requests naming one of its host names,
//! since links in its answers (`next`, `previous`, the root, file URLs) are built from the
//! `Host` header. Anything else is 400 before any handler runs.

use crate::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct AllowedHosts {
    any: bool,
    exact: Vec<String>,
    /// `.example.com`: the domain and its subdomains (stored without the dot).
    domains: Vec<String>,
}

impl AllowedHosts {
    pub fn new(configured: &[String], listen: SocketAddr) -> Self {
        let mut exact = Vec::new();
        let mut domains = Vec::new();
        let mut any = false;
        for h in configured.iter().map(|h| h.trim().to_ascii_lowercase()) {
            match h.strip_prefix('.') {
                _ if h == "*" => any = true,
                Some(domain) => domains.push(domain.to_owned()),
                None => exact.push(h),
            }
        }
        // The address it listens on, when it is a specific one.
        let ip = listen.ip();
        if !ip.is_unspecified() {
            exact.push(match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            });
        }
        AllowedHosts {
            any,
            exact,
            domains,
        }
    }

    /// Whether `host` (a `Host` header's value, port included or not) is allowed. A value
    /// that is not a host name or bracketed address with an optional port is not (Django's
    /// pattern), whatever the list says: links are built from it.
    pub fn allows(&self, host: &str) -> bool {
        if !well_formed(host) {
            return false;
        }
        if self.any {
            return true;
        }
        let name = strip_port(host).to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        self.exact.iter().any(|h| h == name)
            || self.domains.iter().any(|d| {
                name == d
                    || name
                        .strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            })
    }
}

/// Django's `host_validation_re`: `name` or `[v6 address]`, then an optional `:port`.
fn well_formed(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        let ok = !addr.is_empty()
            && addr.contains(':')
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return false;
        }
        ("x", after)
    } else {
        match host.find(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    name_ok && port_ok
}

/// `example.com:8000` → `example.com`; `[::1]:8000` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Refuses requests whose host is not allowed.
pub async fn check(hosts: Arc<AllowedHosts>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if hosts.allows(&h) => next.run(req).await,
        other => {
            let shown: String = other
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            ApiError::BadRequest(ApiError::detail(&format!(
                "Invalid Host header: {shown:?}."
            )))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_like_djangos_allowed_hosts() {
        let listen: SocketAddr = "10.1.2.3:8000".parse().expect("addr");
        let h = AllowedHosts::new(
            &["localhost".into(), ".example.com".into(), "[::1]".into()],
            listen,
        );
        for ok in [
            "localhost",
            "LOCALHOST:8000",
            "example.com",
            "api.example.com:443",
            "a.b.example.com",
            "[::1]:8000",
            "10.1.2.3:8000",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "notexample.com",
            "example.com.evil.com",
            "127.0.0.1",
            "",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        let any = AllowedHosts::new(&["*".into()], "0.0.0.0:80".parse().expect("addr"));
        assert!(any.allows("anything.at.all"));
        assert!(!any.allows("x:@evil.example"), "malformed even under *");
    }
}
