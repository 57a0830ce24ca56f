//! `/api/users/`: read-only, looked up by username.

use super::both;
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::query::{FilterField, Kind, Query, filters, paginate, stream_page};
use crate::repr::UserRepr;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;

pub(crate) const FILTERS: &[FilterField] = &[
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
];

async fn list(
    State(s): State<AppState>,
    _: Auth,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = Query::from_uri(&uri);
    let f = filters(&q, FILTERS)?;
    let count = s.store.count_users(&f).await?;
    let p = paginate(&q, &uri, &headers, 100, count)?;
    let rows = s
        .store
        .list_users(&f, p.page)
        .map(|r| r.map(UserRepr::from))
        .boxed();
    Ok(stream_page(count, p, rows))
}

async fn detail(
    State(s): State<AppState>,
    _: Auth,
    Path(username): Path<String>,
) -> ApiResult<Json<UserRepr>> {
    let user = s
        .store
        .user_by_username(&username)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user.into()))
}

pub fn routes(r: axum::Router<AppState>) -> Router<AppState> {
    let r = both(r, "/api/users", get(list));
    both(r, "/api/users/{username}", get(detail))
}
