//! Authentication, in DRF's order and with its answers: a session cookie (web pages),
//! `Authorization: Token <key>`, `Authorization: Bearer <JWT access token>`; 403 (not 401)
//! with the original bodies when credentials are missing or wrong.

use crate::AppState;
use crate::error::ApiError;
use crate::jwt;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use saltant_store::users::User;
use serde_json::json;
use subtle::ConstantTimeEq;

/// The session cookie's name (Django's).
pub const SESSION_COOKIE: &str = "sessionid";
/// The CSRF cookie's name; unsafe requests authenticated by the session cookie must send
/// its value in the `X-CSRFToken` header (Django's double-submit rule).
pub const CSRF_COOKIE: &str = "csrftoken";
pub const CSRF_HEADER: &str = "x-csrftoken";

/// The authenticated user of a request.
pub struct Auth(pub User);

impl Auth {
    /// Writes to an owned object: its owner or a superuser only (DRF's 403 otherwise).
    pub fn may_change(&self, owner: impl Into<Option<i64>>) -> Result<(), ApiError> {
        if self.0.is_superuser || owner.into() == Some(self.0.id) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied)
        }
    }
}

fn forbidden(detail: &str) -> ApiError {
    ApiError::Forbidden(ApiError::detail(detail))
}

/// simplejwt's body for a Bearer token that does not verify: its message says whether it
/// was not valid at all or valid but not an access token (a refresh token).
fn bad_bearer(e: jwt::JwtError) -> ApiError {
    let message = match e {
        jwt::JwtError::WrongType => "Token has wrong type",
        _ => "Token is invalid or expired",
    };
    ApiError::Forbidden(json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{
            "token_class": "AccessToken",
            "token_type": "access",
            "message": message
        }]
    }))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = session_user(parts, state).await? {
            return Ok(Auth(user));
        }
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(forbidden("Authentication credentials were not provided."));
        };
        let header = header.to_str().map_err(|_| {
            forbidden("Invalid token header. Token string should not contain invalid characters.")
        })?;
        let mut words = header.split_whitespace();
        let scheme = words.next().unwrap_or("");
        let key = words.next();
        let extra = words.next().is_some();
        if scheme.eq_ignore_ascii_case("token") {
            let Some(key) = key else {
                return Err(forbidden("Invalid token header. No credentials provided."));
            };
            if extra {
                return Err(forbidden(
                    "Invalid token header. Token string should not contain spaces.",
                ));
            }
            return match state.store.user_by_token(key).await? {
                Some(user) => Ok(Auth(user)),
                None => Err(forbidden("Invalid token.")),
            };
        }
        if scheme == "Bearer" {
            let Some(token) = key else {
                return Err(forbidden(
                    "Authorization header must contain two space-delimited values",
                ));
            };
            if extra {
                return Err(forbidden(
                    "Authorization header must contain two space-delimited values",
                ));
            }
            let secret = state.jwt_secret().await?;
            let claims = jwt::verify(&secret, token, jwt::TokenType::Access).map_err(bad_bearer)?;
            return match state.store.user_by_id(claims.user_id).await? {
                Some(user) if user.is_active => Ok(Auth(user)),
                // simplejwt: a token whose user is gone or inactive.
                _ => Err(ApiError::Forbidden(json!({
                    "detail": "User not found",
                    "code": "user_not_found"
                }))),
            };
        }
        // Other schemes are not ours to judge: DRF then finds no credentials at all.
        Err(forbidden("Authentication credentials were not provided."))
    }
}

/// The user of a valid session cookie. Unsafe methods must also carry the CSRF token;
/// an unknown or expired cookie counts as no session (DRF: anonymous, try the next scheme).
async fn session_user(parts: &Parts, state: &AppState) -> Result<Option<User>, ApiError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = state.store.session(cookie.value()).await? else {
        return Ok(None);
    };
    if !parts.method.is_safe() {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok: bool = sent.as_bytes().ct_eq(session.csrf_token.as_bytes()).into();
        if !ok {
            return Err(forbidden("CSRF Failed: CSRF token missing or incorrect."));
        }
    }
    Ok(Some(session.user))
}
