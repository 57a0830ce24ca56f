//! Users and their API tokens.

use crate::filter::{FilterField, Kind};
use crate::owned::Table;
use crate::{Error, Store};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub is_superuser: bool,
    pub is_active: bool,
    pub time_zone: String,
    pub date_joined: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, username, email, is_superuser, is_active, time_zone, date_joined";

/// Active users, by username.
pub const USERS: Table = Table {
    table: "users",
    select: "SELECT id, username, email, is_superuser, is_active, time_zone, date_joined \
             FROM users WHERE is_active",
    key: "id",
    order: "username",
    filters: &[
        FilterField {
            name: "username",
            column: "username",
            kind: Kind::Text,
        },
        FilterField {
            name: "email",
            column: "email",
            kind: Kind::Text,
        },
    ],
};

/// A new API token: 40 lower-case hex characters, as DRF's.
pub fn new_token() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::Internal(anyhow::anyhow!("encode salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("hash password: {e}")))
}

/// An argon2 hash of a random password, checked when the username is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdGFudGR1bW15c2FsdA$7bQ6O9H5n8i0v4H6oTQm2i3Q2mTgS9Qe2z6q0b1c2dE";

/// Checks a password against a stored argon2 hash (constant-time inside argon2).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        password: Option<&str>,
        superuser: bool,
    ) -> Result<User, Error> {
        let hash = match password {
            Some(p) => hash_password(p)?,
            None => String::new(),
        };
        let sql = format!(
            "INSERT INTO users (username, email, password, is_superuser, is_staff) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {USER_COLUMNS}"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(username)
            .bind(email)
            .bind(hash)
            .bind(superuser)
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The active user owning `token`. The lookup is by the token's SHA-256, so timing
    /// reveals nothing about stored tokens.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, Error> {
        let sql = format!(
            "SELECT {cols} FROM users u JOIN api_tokens t ON t.user_id = u.id \
             WHERE t.key_sha256 = $1 AND u.is_active",
            cols = USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token_digest(token))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The user if `password` is theirs and they are active.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT password FROM users WHERE username = $1 AND is_active")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        // argon2 is deliberately slow: verify off the async threads. An unknown user is
        // checked against a dummy hash so that timing does not tell which usernames exist.
        let hash = row.map(|(h,)| h);
        let known = hash.is_some();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let stored = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
            verify_password(&password, &stored)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("password check: {e}")))?;
        if ok && known {
            self.user_by_username(username).await
        } else {
            Ok(None)
        }
    }

    /// Issues a new token for the user, replacing any previous one (one token per user).
    pub async fn create_token(&self, user_id: i64) -> Result<String, Error> {
        let token = new_token();
        sqlx::query(
            "INSERT INTO api_tokens (key_sha256, user_id) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET key_sha256 = EXCLUDED.key_sha256, created = now()",
        )
        .bind(token_digest(&token))
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// Removes the user's token; returns whether there was one.
    pub async fn revoke_token(&self, user_id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn set_password(&self, user_id: i64, password: &str) -> Result<(), Error> {
        sqlx::query("UPDATE users SET password = $2 WHERE id = $1")
            .bind(user_id)
            .bind(hash_password(password)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_superuser(&self, user_id: i64, superuser: bool) -> Result<(), Error> {
        sqlx::query("UPDATE users SET is_superuser = $2, is_staff = $2 WHERE id = $1")
            .bind(user_id)
            .bind(superuser)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_40_lower_hex() {
        let t = new_token();
        assert_eq!(t.len(), 40);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_ne!(t, new_token());
    }

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret ", &h));
        assert!(!verify_password("s3cret", ""));
    }
}
