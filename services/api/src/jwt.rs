//! JSON Web Tokens as the original issued them (djangorestframework-simplejwt 4.3): HS256,
//! claims `token_type` (`access`/`refresh`), `exp`, `jti`, `user_id`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    pub exp: i64,
    pub jti: String,
    pub user_id: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Bad signature, malformed, expired.
    Invalid,
    /// A valid token of the other type.
    WrongType,
}

/// A signed token for `user_id` that expires `lifetime_secs` from now.
pub fn issue(
    secret: &[u8],
    user_id: i64,
    token_type: TokenType,
    lifetime_secs: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        token_type,
        exp: chrono::Utc::now().timestamp() + lifetime_secs as i64,
        jti: Uuid::new_v4().simple().to_string(),
        user_id,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret)?,
    )
}

/// Verifies signature and expiry (no leeway), then the token type.
pub fn verify(secret: &[u8], token: &str, expected: TokenType) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let key = DecodingKey::from_secret(secret).map_err(|_| JwtError::Invalid)?;
    let data =
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|_| JwtError::Invalid)?;
    if data.claims.token_type != expected {
        return Err(JwtError::WrongType);
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_by_type_secret_and_expiry() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let access = issue(secret, 7, TokenType::Access, 60).expect("issue");
        let refresh = issue(secret, 7, TokenType::Refresh, 60).expect("issue");
        assert_eq!(
            verify(secret, &access, TokenType::Access)
                .expect("valid")
                .user_id,
            7
        );
        assert_eq!(
            verify(secret, &access, TokenType::Refresh).err(),
            Some(JwtError::WrongType)
        );
        assert!(verify(secret, &refresh, TokenType::Refresh).is_ok());
        assert_eq!(
            verify(
                b"another secret, another server!",
                &access,
                TokenType::Access
            )
            .err(),
            Some(JwtError::Invalid)
        );
        assert_eq!(
            verify(secret, "not.a.jwt", TokenType::Access).err(),
            Some(JwtError::Invalid)
        );
        // Expired: issued with a lifetime in the past.
        let claims = Claims {
            token_type: TokenType::Access,
            exp: chrono::Utc::now().timestamp() - 5,
            jti: "x".into(),
            user_id: 7,
        };
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret).expect("key"),
        )
        .expect("encode");
        assert_eq!(
            verify(secret, &old, TokenType::Access).err(),
            Some(JwtError::Invalid)
        );
        // The payload names the claims simplejwt clients read.
        let payload = access.split('.').nth(1).expect("payload");
        use base64::Engine;
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64"),
        )
        .expect("json");
        assert_eq!(json["token_type"], "access");
        assert_eq!(json["user_id"], 7);
        assert!(json["jti"].as_str().is_some_and(|j| j.len() == 32));
    }
}
