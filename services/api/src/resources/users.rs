//! `/api/users/`: read-only, looked up by username.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::io::{Listed, Listing, Page, PathUsername};
use crate::query::FilterField;
use crate::repr::UserRepr;
use crate::routes::{Methods, Routes};
use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use saltant_store::users::{USERS, User};

pub(crate) struct Users;

impl Listed for Users {
    const FILTERS: &'static [FilterField] = USERS.filters;
    const PAGE_SIZE: i64 = 100;
}

async fn list(
    State(s): State<AppState>,
    user: Auth,
    l: Listing<Users>,
) -> ApiResult<Page<UserRepr>> {
    let turn = s.list_turns.take(user.0.id).await?;
    let f = l.filters(&s.store).await?;
    let count = s.store.count(&USERS, &f).await?;
    l.page(count, turn, |page| {
        s.store
            .page::<User>(&USERS, &f, page)
            .map(|r| r.map(UserRepr::from))
            .boxed()
    })
}

async fn detail(
    State(s): State<AppState>,
    _: Auth,
    PathUsername(username): PathUsername,
) -> ApiResult<Json<UserRepr>> {
    if username.contains('.') {
        return Err(ApiError::NotFound);
    }
    let user = s
        .store
        .user_by_username(&username)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user.into()))
}

pub(crate) fn routes(r: Routes) -> Routes {
    r.both("/api/users", || {
        Methods::new().get(list, |o| o.summary("List users"))
    })
    .both("/api/users/{username}", || {
        Methods::new().get(detail, |o| o.summary("Read a user"))
    })
}
