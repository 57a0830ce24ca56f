//! Signing in and out (the API's browser session: same cookies, throttling and login CSRF)
//! and the account page: password change, API token created or revoked.

use super::form::{Errors, Form};
use super::layout::{csrf, form_errors, input, page};
use super::{Posted, UiError, UiResult, Viewer, see_other};
use crate::AppState;
use crate::error::ApiError;
use crate::resources::login::{end_session, login_csrf, login_form_cookie, start_session};
use crate::throttle::PeerIp;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use maud::html;

pub(crate) fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/login/", get(login_page).post(login))
        .route("/logout/", axum::routing::post(logout))
        .route("/account/", get(account))
        .route("/account/password/", axum::routing::post(change_password))
        .route("/account/token/", axum::routing::post(create_token))
        .route("/account/token/revoke/", axum::routing::post(revoke_token))
}

#[derive(serde::Deserialize)]
struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path of this site only (never `//host` or a URL).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn login_form(token: &str, next: &str, username: &str, errors: &Errors) -> maud::Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            form.card method="post" action="/login/" {
                (form_errors(errors, &["username", "password"]))
                input type="hidden" name="csrfmiddlewaretoken" value=(token);
                input type="hidden" name="next" value=(next);
                (input("Username", "username", "text", username, errors))
                (input("Password", "password", "password", "", errors))
                button type="submit" { "Sign in" }
            }
        },
    )
}

async fn login_page(State(s): State<AppState>, jar: CookieJar, Query(q): Query<Next>) -> Response {
    let (jar, token) = login_form_cookie(&s, jar);
    let next = safe_next(q.next.as_deref());
    (jar, login_form(&token, &next, "", &Errors::default())).into_response()
}

async fn login(
    State(s): State<AppState>,
    PeerIp(ip): PeerIp,
    jar: CookieJar,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> UiResult {
    let form = Form::parse(&body);
    let payload = form.payload();
    login_csrf(&jar, &headers, &payload)?;
    let next = safe_next(form.get("next"));
    let username = form.text("username");
    match start_session(&s, ip, jar.clone(), &username, &form.text("password")).await {
        Ok((jar, _, _)) => Ok((jar, see_other(&next)).into_response()),
        Err(e @ ApiError::Fields(_)) => {
            let (jar, token) = login_form_cookie(&s, jar);
            let errors = Errors::of(e)?;
            Ok((
                axum::http::StatusCode::OK,
                jar,
                login_form(&token, &next, &username, &errors),
            )
                .into_response())
        }
        Err(e) => Err(UiError(e)),
    }
}

async fn logout(State(s): State<AppState>, jar: CookieJar, _: Posted) -> UiResult {
    let jar = end_session(&s, jar).await?;
    Ok((jar, see_other("/login/")).into_response())
}

fn account_page(
    v: &Viewer,
    errors: &Errors,
    notice: Option<&str>,
    token: Option<&str>,
) -> Response {
    let u = v.user();
    page(
        "Account",
        Some(v),
        html! {
            h1 { "Account" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            dl.facts {
                dt { "Username" } dd { (u.username) }
                dt { "Email" } dd { (u.email) }
                dt { "Superuser" } dd { (if u.is_superuser { "yes" } else { "no" }) }
            }
            section {
                h2 { "Change password" }
                form.card method="post" action="/account/password/" {
                    (csrf(v))
                    (form_errors(errors, &["old_password", "new_password", "new_password2"]))
                    (input("Current password", "old_password", "password", "", errors))
                    (input("New password", "new_password", "password", "", errors))
                    (input("New password again", "new_password2", "password", "", errors))
                    button type="submit" { "Change password" }
                }
            }
            section {
                h2 { "API token" }
                p { "One token per user, sent as " code { "Authorization: Token <key>" } ". A new token replaces the old one; it is shown once." }
                @if let Some(t) = token {
                    p.notice role="status" { "Your new token: " code #new-token { (t) } }
                }
                form.inline method="post" action="/account/token/" {
                    (csrf(v))
                    button type="submit" { "Create a new token" }
                }
                " "
                form.inline method="post" action="/account/token/revoke/" {
                    (csrf(v))
                    button.danger type="submit" { "Revoke the token" }
                }
            }
        },
    )
    .into_response()
}

async fn account(v: Viewer) -> Response {
    account_page(&v, &Errors::default(), None, None)
}

async fn change_password(State(s): State<AppState>, p: Posted) -> UiResult {
    let f = &p.form;
    let new = f.text("new_password");
    let errors = if s
        .store
        .authenticate(&p.viewer.user().username, &f.text("old_password"))
        .await?
        .is_none()
    {
        Errors::one("old_password", "The current password is not right.")
    } else if new.chars().count() < 8 {
        Errors::one("new_password", "At least 8 characters.")
    } else if new != f.text("new_password2") {
        Errors::one("new_password2", "The two passwords differ.")
    } else {
        s.store.set_password(p.viewer.user().id, &new).await?;
        return Ok(account_page(
            &p.viewer,
            &Errors::default(),
            Some("Password changed."),
            None,
        ));
    };
    Ok(account_page(&p.viewer, &errors, None, None))
}

async fn create_token(State(s): State<AppState>, p: Posted) -> UiResult {
    // The token is shown once, on this answer (not after a redirect).
    let token = s.store.create_token(p.viewer.user().id).await?;
    Ok(account_page(
        &p.viewer,
        &Errors::default(),
        None,
        Some(&token),
    ))
}

async fn revoke_token(State(s): State<AppState>, p: Posted) -> UiResult {
    let had = s.store.revoke_token(p.viewer.user().id).await?;
    let notice = if had {
        "Token revoked."
    } else {
        "You had no token."
    };
    Ok(account_page(
        &p.viewer,
        &Errors::default(),
        Some(notice),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn sign_in_goes_back_only_to_this_site() {
        assert_eq!(
            safe_next(Some("/instances/executable/?state=failed")),
            "/instances/executable/?state=failed"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("javascript:alert(1)")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
