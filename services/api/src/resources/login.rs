//! Obtaining credentials other than the API token: JWT (`POST /api/token/`,
//! `POST /api/token/refresh/`, as simplejwt answered) and browser sessions
//! (`/api/auth/login/`, `/api/auth/logout/`, as DRF's session login for the web pages).
//! These paths are outside the original's router: they require the trailing slash and
//! answer 301 to it without.

use super::inputs::{LoginInput, TokenObtainInput, TokenRefreshInput};
use crate::AppState;
use crate::auth::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};
use crate::body::Payload;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Fields, Text};
use crate::io::Input;
use crate::jwt::{self, JwtError, TokenType};
use crate::throttle::PeerIp;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde_json::json;
use subtle::ConstantTimeEq;

/// A JWT pair (simplejwt's obtain answer).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct TokenPair {
    refresh: String,
    access: String,
}

/// A new access token (simplejwt's refresh answer).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct AccessToken {
    access: String,
}

fn jwt_error(e: jsonwebtoken::errors::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("sign token: {e}"))
}

/// Username and password from a JSON or form body, DRF's required-field errors.
fn credentials(p: &Payload) -> ApiResult<(String, String)> {
    let mut f = Fields::new(p, false);
    let username = f.string("username", Text::required(150));
    let password = f.raw_string("password", 4096);
    f.finish()?;
    match (username, password) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(ApiError::Internal(anyhow::anyhow!(
            "validated credentials missing"
        ))),
    }
}

/// `POST /api/token/` → 200 `{"refresh","access"}`; wrong credentials → 401.
pub async fn obtain(
    State(s): State<AppState>,
    PeerIp(ip): PeerIp,
    Input(p, _): Input<TokenObtainInput>,
) -> ApiResult<Json<TokenPair>> {
    let (username, password) = credentials(&p)?;
    s.failed_logins.attempt(ip, &username)?;
    let Some(user) = s.store.authenticate(&username, &password).await? else {
        return Err(ApiError::Unauthorized(ApiError::detail(
            "No active account found with the given credentials",
        )));
    };
    s.failed_logins.succeeded(ip, &username);
    let secret = s.jwt_secret().await?;
    let c = &s.config;
    Ok(Json(TokenPair {
        refresh: jwt::issue(
            &secret,
            user.id,
            TokenType::Refresh,
            c.jwt_refresh_lifetime_secs,
        )
        .map_err(jwt_error)?,
        access: jwt::issue(
            &secret,
            user.id,
            TokenType::Access,
            c.jwt_access_lifetime_secs,
        )
        .map_err(jwt_error)?,
    }))
}

/// `POST /api/token/refresh/` → 200 `{"access"}` (no rotation).
pub async fn refresh(
    State(s): State<AppState>,
    Input(p, _): Input<TokenRefreshInput>,
) -> ApiResult<Json<AccessToken>> {
    let mut f = Fields::new(&p, false);
    let token = f.raw_string("refresh", 8192);
    f.finish()?;
    let token = token.unwrap_or_default();
    let secret = s.jwt_secret().await?;
    let claims = jwt::verify(&secret, &token, TokenType::Refresh).map_err(|e| {
        let detail = match e {
            JwtError::Invalid => "Token is invalid or expired",
            JwtError::WrongType => "Token has wrong type",
        };
        ApiError::Unauthorized(json!({"detail": detail, "code": "token_not_valid"}))
    })?;
    match s.store.user_by_id(claims.user_id).await? {
        Some(u) if u.is_active => {}
        _ => {
            return Err(ApiError::Unauthorized(json!({
                "detail": "Token is invalid or expired",
                "code": "token_not_valid"
            })));
        }
    }
    let access = jwt::issue(
        &secret,
        claims.user_id,
        TokenType::Access,
        s.config.jwt_access_lifetime_secs,
    )
    .map_err(jwt_error)?;
    Ok(Json(AccessToken { access }))
}

/// The token of a login form (its `csrftoken` cookie), as the login form is served.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct LoginForm {
    csrftoken: String,
}

/// `GET /api/auth/login/`: the CSRF cookie (`csrftoken`) a login must send back in
/// `X-CSRFToken` or the form field `csrfmiddlewaretoken`, as Django's login page sets it.
/// An existing well-formed cookie is kept.
pub async fn login_form(State(s): State<AppState>, jar: CookieJar) -> (CookieJar, Json<LoginForm>) {
    let (jar, token) = login_form_cookie(&s, jar);
    (jar, Json(LoginForm { csrftoken: token }))
}

/// The login form's CSRF cookie, kept if the browser has a well-formed one; the jar to
/// answer with and the token the form must echo (API and web sign-in page).
pub(crate) fn login_form_cookie(s: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let token = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(saltant_store::sessions::login_csrf_token);
    let cookie = Cookie::build((CSRF_COOKIE, token.clone()))
        .path("/")
        .same_site(SameSite::Lax)
        .secure(s.config.secure_cookies)
        .max_age(time_duration(s.config.session_lifetime_secs));
    (jar.add(cookie), token)
}

/// A login must echo its form's CSRF cookie (login CSRF: no site may log a visitor in as
/// someone else). DRF's texts.
pub(crate) fn login_csrf(
    jar: &CookieJar,
    headers: &HeaderMap,
    p: &Payload,
) -> Result<(), ApiError> {
    let forbidden =
        |why: &str| ApiError::Forbidden(ApiError::detail(&format!("CSRF Failed: {why}")));
    let Some(cookie) = jar
        .get(CSRF_COOKIE)
        .filter(|c| c.value().len() == 32 && c.value().bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Err(forbidden("CSRF cookie not set."));
    };
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            p.get("csrfmiddlewaretoken")
                .and_then(|v| v.as_str().map(str::to_owned))
        });
    let Some(sent) = sent else {
        return Err(forbidden("CSRF token missing."));
    };
    if bool::from(sent.as_bytes().ct_eq(cookie.value().as_bytes())) {
        Ok(())
    } else {
        Err(forbidden("CSRF token incorrect."))
    }
}

/// `POST /api/auth/login/`: starts a browser session (cookies `sessionid`, HttpOnly, and
/// `csrftoken`, which unsafe requests echo in `X-CSRFToken`). The login form's CSRF
/// cookie (`GET` first) must be echoed.
pub async fn login(
    State(s): State<AppState>,
    PeerIp(ip): PeerIp,
    jar: CookieJar,
    headers: HeaderMap,
    Input(p, _): Input<LoginInput>,
) -> ApiResult<Response> {
    login_csrf(&jar, &headers, &p)?;
    let (username, password) = credentials(&p)?;
    let (jar, csrf, user) = start_session(&s, ip, jar, &username, &password).await?;
    Ok((
        jar,
        Json(json!({"username": user.username, "csrftoken": csrf})),
    )
        .into_response())
}

/// Checks the credentials (throttled per address and username) and starts a session: the
/// jar with its cookies (`sessionid` HttpOnly, `csrftoken`), the session's CSRF token and
/// the user. Wrong credentials are DRF's `non_field_errors`.
pub(crate) async fn start_session(
    s: &AppState,
    ip: Option<std::net::IpAddr>,
    jar: CookieJar,
    username: &str,
    password: &str,
) -> ApiResult<(CookieJar, String, saltant_store::users::User)> {
    s.failed_logins.attempt(ip, username)?;
    let Some(user) = s.store.authenticate(username, password).await? else {
        return Err(ApiError::field(
            "non_field_errors",
            "Unable to log in with provided credentials.",
        ));
    };
    s.failed_logins.succeeded(ip, username);
    let lifetime = s.config.session_lifetime_secs;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(lifetime as i64);
    let (key, csrf) = s.store.create_session(user.id, expires).await?;
    let max_age = time_duration(lifetime);
    let session = Cookie::build((SESSION_COOKIE, key))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(s.config.secure_cookies)
        .max_age(max_age);
    let csrf_cookie = Cookie::build((CSRF_COOKIE, csrf.clone()))
        .path("/")
        .same_site(SameSite::Lax)
        .secure(s.config.secure_cookies)
        .max_age(max_age);
    Ok((jar.add(session).add(csrf_cookie), csrf, user))
}

fn time_duration(secs: u64) -> time::Duration {
    time::Duration::seconds(secs.min(i64::MAX as u64) as i64)
}

/// `POST /api/auth/logout/`: ends the session of the cookie, if any.
pub async fn logout(State(s): State<AppState>, jar: CookieJar) -> ApiResult<Response> {
    let jar = end_session(&s, jar).await?;
    Ok((jar, Json(ApiError::detail("Logged out."))).into_response())
}

/// Ends the session of the jar's cookie, if any; the jar without the session's cookies.
pub(crate) async fn end_session(s: &AppState, jar: CookieJar) -> ApiResult<CookieJar> {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        s.store.end_session(c.value()).await?;
    }
    Ok(jar
        .remove(Cookie::build(SESSION_COOKIE).path("/"))
        .remove(Cookie::build(CSRF_COOKIE).path("/")))
}
