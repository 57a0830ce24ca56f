//! The REST API over HTTP: JSON requests with the configured credentials, answers mapped to
//! [`Error`]s (unreachable, authentication, permission, not found, field errors), lists
//! read page by page, and Server-Sent Events streams.

use crate::config::{self, Config};
use crate::error::{Error, Result};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// A list is read in pages of this many.
const PAGE: u32 = 500;

#[derive(Clone)]
pub struct Client {
    pub cfg: Config,
    /// The token sent, replaced when a JWT is refreshed.
    token: std::sync::Arc<std::sync::RwLock<Option<String>>>,
    http: reqwest::Client,
    /// Without a total time-out, for streams and downloads (idle reads still time out).
    streams: reqwest::Client,
}

impl Client {
    pub fn new(cfg: Config) -> Result<Client> {
        let agent = concat!("saltant-cli/", env!("CARGO_PKG_VERSION"));
        let http = reqwest::Client::builder()
            .user_agent(agent)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| anyhow::anyhow!("build http client: {e}"))?;
        // The api sends a comment every 15 s on idle streams.
        let streams = reqwest::Client::builder()
            .user_agent(agent)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(45))
            .build()
            .map_err(|e| anyhow::anyhow!("build http client: {e}"))?;
        Ok(Client {
            token: std::sync::Arc::new(std::sync::RwLock::new(cfg.token.clone())),
            cfg,
            http,
            streams,
        })
    }

    /// `path` under the API base (`containertasktypes/`), or an absolute URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}/{}", self.cfg.url, path.trim_start_matches('/'))
        }
    }

    fn authorization(&self) -> Option<String> {
        let token = self.token.read().unwrap_or_else(|p| p.into_inner());
        token.as_ref().map(|t| {
            // A JWT (three dot-separated parts) goes as Bearer, an API token as Token.
            if t.split('.').count() == 3 {
                format!("Bearer {t}")
            } else {
                format!("Token {t}")
            }
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> Error {
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        Error::Unreachable {
            url: self.cfg.url.clone(),
            cause,
        }
    }

    /// Sends a request (refreshing an expired JWT once when a refresh token is known);
    /// a 2xx answer, else the error it means.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        stream: bool,
        headers: &[(&str, String)],
    ) -> Result<reqwest::Response> {
        let mut refreshed = false;
        loop {
            let client = if stream { &self.streams } else { &self.http };
            let mut rb = client.request(method.clone(), self.url(path));
            if let Some(a) = self.authorization() {
                rb = rb.header("Authorization", a);
            }
            for (k, v) in headers {
                rb = rb.header(*k, v);
            }
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let r = rb.send().await.map_err(|e| self.unreachable(&e))?;
            if r.status().is_success() {
                return Ok(r);
            }
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let expired = body["code"] == "token_not_valid";
            if expired && !refreshed && self.cfg.refresh_token.is_some() {
                refreshed = true;
                self.refresh().await?;
                continue;
            }
            return Err(error_of(status, &body, path));
        }
    }

    /// Obtains a new access token from the refresh token and saves it in the file the
    /// credentials came from.
    async fn refresh(&self) -> Result<()> {
        let refresh = self.cfg.refresh_token.clone().unwrap_or_default();
        let r = self
            .http
            .post(self.url("token/refresh/"))
            .json(&serde_json::json!({ "refresh": refresh }))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let Some(access) = body["access"].as_str().filter(|_| status.is_success()) else {
            return Err(Error::Auth(
                "the saved login has expired: run `saltant login` again".into(),
            ));
        };
        *self.token.write().unwrap_or_else(|p| p.into_inner()) = Some(access.to_owned());
        if let Some(path) = &self.cfg.file {
            let mut f = config::read(path)?;
            f.auth_token = Some(access.to_owned());
            config::write(path, &f)?;
        }
        Ok(())
    }

    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let r = self.send(method, path, body, false, &[]).await?;
        r.json()
            .await
            .map_err(|e| Error::Server(format!("answer of {path} is not JSON: {e}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None).await
    }

    /// Every object of a paginated list, following `next`, or at most `limit`.
    pub async fn list(
        &self,
        path: &str,
        query: &[(String, String)],
        limit: Option<usize>,
    ) -> Result<Vec<Value>> {
        let page_size = limit.map_or(PAGE, |l| (l.clamp(1, PAGE as usize)) as u32);
        let mut url = reqwest::Url::parse(&self.url(path))
            .map_err(|e| Error::Usage(format!("invalid URL for {path}: {e}")))?;
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("page_size", &page_size.to_string());
        let mut next = Some(url.to_string());
        let mut out = Vec::new();
        while let Some(u) = next.take() {
            let page = self.get(&u).await?;
            if let Some(items) = page["results"].as_array() {
                out.extend(items.iter().cloned());
            }
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            next = page["next"].as_str().map(str::to_owned);
        }
        Ok(out)
    }
}

/// The error a non-2xx answer means.
pub fn error_of(status: StatusCode, body: &Value, path: &str) -> Error {
    let detail = body["detail"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    match status.as_u16() {
        400 => Error::invalid(body),
        401 => Error::Auth(detail),
        403 if detail.contains("permission") => Error::Permission(detail),
        403 => Error::Auth(detail),
        404 => Error::NotFound(format!("not found: {path}")),
        s if s >= 500 => Error::Server(format!("{status}: {detail}")),
        _ => Error::Internal(anyhow::anyhow!("{path}: {status}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;
    use serde_json::json;

    #[test]
    fn answers_map_to_exit_codes() {
        let e =
            |s: u16, b: Value| error_of(StatusCode::from_u16(s).expect("status"), &b, "p/").code();
        assert_eq!(e(403, json!({"detail": "Invalid token."})), code::AUTH);
        assert_eq!(
            e(
                403,
                json!({"detail": "Authentication credentials were not provided."})
            ),
            code::AUTH
        );
        assert_eq!(
            e(
                403,
                json!({"detail": "You do not have permission to perform this action."})
            ),
            code::PERMISSION
        );
        assert_eq!(e(401, json!({"detail": "No active account"})), code::AUTH);
        assert_eq!(e(404, json!({"detail": "Not found."})), code::NOT_FOUND);
        assert_eq!(e(400, json!({"name": ["x"]})), code::INVALID);
        assert_eq!(e(503, json!({"detail": "db"})), code::SERVER);
    }
}
