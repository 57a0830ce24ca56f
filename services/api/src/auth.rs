//! Authentication, in DRF's order and with its answers: `Authorization: Token <key>`, and
//! 403 (not 401) with the original bodies when credentials are missing or wrong.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use saltant_store::users::User;

/// The authenticated user of a request.
pub struct Auth(pub User);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let no_credentials = || {
            ApiError::Forbidden(ApiError::detail(
                "Authentication credentials were not provided.",
            ))
        };
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(no_credentials());
        };
        let header = header.to_str().map_err(|_| {
            ApiError::Forbidden(ApiError::detail(
                "Invalid token header. Token string should not contain invalid characters.",
            ))
        })?;
        let mut words = header.split_whitespace();
        let scheme = words.next().unwrap_or("");
        if !scheme.eq_ignore_ascii_case("token") {
            // Other schemes are not ours to judge: DRF then finds no credentials at all.
            return Err(no_credentials());
        }
        let Some(key) = words.next() else {
            return Err(ApiError::Forbidden(ApiError::detail(
                "Invalid token header. No credentials provided.",
            )));
        };
        if words.next().is_some() {
            return Err(ApiError::Forbidden(ApiError::detail(
                "Invalid token header. Token string should not contain spaces.",
            )));
        }
        match state.store.user_by_token(key).await? {
            Some(user) => Ok(Auth(user)),
            None => Err(ApiError::Forbidden(ApiError::detail("Invalid token."))),
        }
    }
}
