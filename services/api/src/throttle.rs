//! Failed logins, throttled per client address and per username (docs/security.md): after
//! `api.login_failures_per_minute` failures within a minute, further attempts of that
//! address or username answer 429 with `Retry-After` until the oldest failure is a minute
//! old, whatever the credentials. Kept in memory, per api process.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const WINDOW: Duration = Duration::from_secs(60);
/// Keys kept at most; beyond it, keys with no failure in the window are forgotten.
const MAX_KEYS: usize = 100_000;

pub struct FailedLogins {
    limit: usize,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailedLogins {
    pub fn new(limit: u32) -> Self {
        FailedLogins {
            limit: limit.max(1) as usize,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The username's key and the address's (an IPv6 address by its /64: one host has
    /// many).
    fn keys(ip: Option<IpAddr>, username: &str) -> Vec<String> {
        let mut keys = vec![format!("user:{username}")];
        keys.extend(ip.map(|ip| match ip {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            v4 => format!("ip:{v4}"),
        }));
        keys
    }

    /// 429 if the address or the username failed too often in the last minute; else the
    /// attempt counts as a failure at once (so a burst of concurrent guesses is counted
    /// before any is checked) until [`FailedLogins::succeeded`] takes it back.
    pub fn attempt(&self, ip: Option<IpAddr>, username: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let keys = Self::keys(ip, username);
        let mut wait = None;
        for key in &keys {
            let Some(times) = seen.get_mut(key) else {
                continue;
            };
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                times.pop_front();
            }
            if times.len() >= self.limit
                && let Some(oldest) = times.front()
            {
                wait = wait.max(Some(WINDOW - now.duration_since(*oldest)));
            }
        }
        if let Some(w) = wait {
            return Err(ApiError::Throttled(w.as_secs() + 1));
        }
        if seen.len() >= MAX_KEYS {
            seen.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
            if seen.len() >= MAX_KEYS {
                // Every key is recent: a flood. Refuse rather than grow without bound.
                return Err(ApiError::Throttled(WINDOW.as_secs()));
            }
        }
        for key in keys {
            seen.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// The attempt succeeded: it no longer counts.
    pub fn succeeded(&self, ip: Option<IpAddr>, username: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(ip, username) {
            if let Some(times) = seen.get_mut(&key) {
                times.pop_back();
                if times.is_empty() {
                    seen.remove(&key);
                }
            }
        }
    }
}

/// Turns per user: at most `per_user` of one user's lists run at once; the others wait
/// (up to `WAIT_FOR_TURN`, then 429), holding no database connection meanwhile.
pub struct Turns {
    per_user: usize,
    users: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

const WAIT_FOR_TURN: Duration = Duration::from_secs(30);

impl Turns {
    pub fn new(per_user: u32) -> Self {
        Turns {
            per_user: per_user.max(1) as usize,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// A turn of `user_id`'s, held as long as the permit lives.
    pub async fn take(&self, user_id: i64) -> Result<OwnedSemaphorePermit, ApiError> {
        let sem = self
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_user)))
            .clone();
        match tokio::time::timeout(WAIT_FOR_TURN, sem.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::Throttled(1)),
        }
    }
}

/// The client's address (the TCP peer: behind a proxy, the proxy's).
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

impl aide::OperationInput for PeerIp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_failure_in_a_minute_is_refused() {
        let t = FailedLogins::new(10);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        // A success does not count.
        assert!(t.attempt(ip, "bob").is_ok());
        t.succeeded(ip, "bob");
        // Ten attempts at once (none answered yet): the eleventh is refused.
        for _ in 0..10 {
            assert!(t.attempt(ip, "bob").is_ok());
        }
        assert!(
            matches!(t.attempt(ip, "bob"), Err(ApiError::Throttled(s)) if (1..=60).contains(&s))
        );
        // The same address for another user, and the same user from elsewhere.
        assert!(t.attempt(ip, "alice").is_err());
        assert!(t.attempt(Some(IpAddr::from([10, 0, 0, 1])), "bob").is_err());
        assert!(
            t.attempt(Some(IpAddr::from([10, 0, 0, 1])), "alice")
                .is_ok()
        );
    }
}
