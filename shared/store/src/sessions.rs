//! Browser sessions (cookie login for the web pages and the DRF-style `/api/auth/login/`)
//! and server-wide generated secrets.

use crate::users::User;
use crate::{Error, Store};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A session found by its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires: DateTime<Utc>,
}

/// A fresh random token (32 hex digits) for a login form's CSRF cookie.
pub fn login_csrf_token() -> String {
    random_hex(16)
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Store {
    /// Starts a session; returns the cookie value and the CSRF token that unsafe requests
    /// made with the cookie must echo.
    pub async fn create_session(
        &self,
        user_id: i64,
        expires: DateTime<Utc>,
    ) -> Result<(String, String), Error> {
        let key = random_hex(32);
        let csrf = random_hex(32);
        sqlx::query(
            "INSERT INTO sessions (key_sha256, user_id, csrf_token, expires) VALUES ($1, $2, $3, $4)",
        )
        .bind(Sha256::digest(key.as_bytes()).to_vec())
        .bind(user_id)
        .bind(&csrf)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        // Expired sessions are pruned as new ones start.
        sqlx::query("DELETE FROM sessions WHERE expires < now()")
            .execute(&self.pool)
            .await?;
        Ok((key, csrf))
    }

    pub async fn session(&self, key: &str) -> Result<Option<Session>, Error> {
        let row: Option<(i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT s.user_id, s.csrf_token, s.expires FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.key_sha256 = $1 AND s.expires > now() AND u.is_active",
        )
        .bind(Sha256::digest(key.as_bytes()).to_vec())
        .fetch_optional(&self.pool)
        .await?;
        let Some((user_id, csrf_token, expires)) = row else {
            return Ok(None);
        };
        Ok(self.user_by_id(user_id).await?.map(|user| Session {
            user,
            csrf_token,
            expires,
        }))
    }

    pub async fn end_session(&self, key: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM sessions WHERE key_sha256 = $1")
            .bind(Sha256::digest(key.as_bytes()).to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The named secret, generated (`len` random bytes) the first time any replica asks.
    pub async fn secret(&self, name: &str, len: usize) -> Result<Vec<u8>, Error> {
        let mut fresh = vec![0u8; len];
        rand::rng().fill_bytes(&mut fresh);
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
