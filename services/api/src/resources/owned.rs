//! The owned resources (task types of both classes, queues, whitelists): one set of
//! handlers for list, create, detail, update and partial update. Writes are the owner's or
//! a superuser's; the owner stays the owner; a unique-name race maps to DRF's field error.

use crate::AppState;
use crate::auth::Auth;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult, name_taken};
use crate::fields::{Fields, Text};
use crate::io::{Created, Input, Listed, Listing, Page, PathId, Status};
use crate::query::FilterField;
use crate::routes::{Methods, Routes};
use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use saltant_store::owned::Table;
use saltant_store::{Error as StoreError, Store};
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use std::future::Future;

/// One kind of owned resource: its store rows, validated fields and representation.
/// Implemented with [`owned_resource!`].
pub(crate) trait Owned: Send + Sync + 'static {
    /// The list path, without its trailing slash.
    const PATH: &'static str;
    /// Django's verbose name, in "<name> with this name already exists."
    const VERBOSE: &'static str;
    /// Whether PATCH (partial update) is served.
    const PATCH: bool;
    /// The table, as lists and reads see it.
    const TABLE: &'static Table;
    /// Its rows are code run on executors' machines (executable task types): writes follow
    /// `api.executable_types_by`.
    const HOST_CODE: bool = false;
    type Row: for<'r> FromRow<'r, PgRow> + Send + Sync + Unpin + 'static;
    type Fields: Send + Sync;
    type Repr: From<Self::Row> + Serialize + JsonSchema + Send + 'static;
    /// The request body, as documented.
    type Input: JsonSchema;

    fn owner(row: &Self::Row) -> Option<i64>;
    /// Inserts (`id` None, owned by `owner`) or replaces; the id saved.
    fn save(
        s: &Store,
        id: Option<i64>,
        owner: i64,
        f: &Self::Fields,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Validates a body; `existing` is the row an update changes (its values stand for
    /// fields a partial update leaves out).
    fn read(
        s: &AppState,
        p: &Payload,
        partial: bool,
        existing: Option<&Self::Row>,
    ) -> impl Future<Output = ApiResult<Self::Fields>> + Send;
}

impl<R: Owned> Listed for R {
    const FILTERS: &'static [FilterField] = R::TABLE.filters;
    const PAGE_SIZE: i64 = 100;
}

/// Implements [`Owned`] for `$res` from its parts: the store's table, the list path,
/// Django's verbose name, whether PATCH is served, the row, fields, representation and
/// documented body types, the owner of a row, the store's save (`fn(&Store, Option<i64>,
/// i64, &Fields)`) and the body's validation (`fn(&AppState, &Payload, partial,
/// Option<&Row>)`).
macro_rules! owned_resource {
    ($res:ty {
        table: $table:expr,
        path: $path:literal,
        verbose: $verbose:literal,
        patch: $patch:literal,
        row: $row:ty,
        fields: $fields:ty,
        repr: $repr:ty,
        input: $input:ty,
        owner: $owner:expr,
        save: $save:expr,
        read: $read:expr
        $(, host_code: $host_code:expr)? $(,)?
    }) => {
        impl $crate::resources::owned::Owned for $res {
            const TABLE: &'static saltant_store::owned::Table = $table;
            $(const HOST_CODE: bool = $host_code;)?
            const PATH: &'static str = $path;
            const VERBOSE: &'static str = $verbose;
            const PATCH: bool = $patch;
            type Row = $row;
            type Fields = $fields;
            type Repr = $repr;
            type Input = $input;

            fn owner(row: &$row) -> Option<i64> {
                $owner(row)
            }
            async fn save(
                s: &saltant_store::Store,
                id: Option<i64>,
                owner: i64,
                f: &$fields,
            ) -> Result<i64, saltant_store::Error> {
                $save(s, id, owner, f).await
            }
            async fn read(
                s: &$crate::AppState,
                p: &$crate::body::Payload,
                partial: bool,
                existing: Option<&$row>,
            ) -> $crate::error::ApiResult<$fields> {
                $read(s, p, partial, existing).await
            }
        }
    };
}
pub(crate) use owned_resource;

/// Checks the `name` read (if it was read without error): it passes `check` and is not
/// the name of another row of `table` (a race is decided by the database's unique index:
/// see `name_taken`).
pub(crate) async fn check_name(
    s: &AppState,
    f: &mut Fields<'_>,
    name: &Option<String>,
    (table, verbose): (&Table, &str),
    except: Option<i64>,
    check: impl FnOnce(&str) -> Result<(), String>,
) -> ApiResult<()> {
    if let Some(n) = name
        && !f.has_error("name")
    {
        if let Err(e) = check(n) {
            f.error("name", e);
        } else if s.store.name_taken(table, n, except).await? {
            f.error("name", format!("{verbose} with this name already exists."));
        }
    }
    Ok(())
}

/// The name (at most 50 characters, checked by `check`, unique) and the description of a
/// queue or whitelist, as given.
pub(crate) async fn read_named<R: Owned>(
    s: &AppState,
    f: &mut Fields<'_>,
    except: Option<i64>,
    check: impl FnOnce(&str) -> Result<(), String>,
) -> ApiResult<(Option<String>, Option<String>)> {
    let name = f.string("name", Text::required(50));
    check_name(s, f, &name, (R::TABLE, R::VERBOSE), except, check).await?;
    let description = f.string("description", Text::optional(usize::MAX));
    Ok((name, description))
}

/// A field's new value, else the existing row's (a PUT keeps what it leaves out), else
/// the default.
pub(crate) fn kept<T: Default, E>(
    new: Option<T>,
    existing: Option<&E>,
    old: impl FnOnce(&E) -> T,
) -> T {
    new.or_else(|| existing.map(old)).unwrap_or_default()
}

pub(crate) async fn found<R: Owned>(s: &AppState, id: i64) -> ApiResult<R::Row> {
    s.store
        .one::<R::Row>(R::TABLE, id)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn list<R: Owned>(
    State(s): State<AppState>,
    user: Auth,
    l: Listing<R>,
) -> ApiResult<Page<R::Repr>> {
    let turn = s.list_turns.take(user.0.id).await?;
    let f = l.filters(&s.store).await?;
    let count = s.store.count(R::TABLE, &f).await?;
    l.page(count, turn, |page| {
        s.store
            .page::<R::Row>(R::TABLE, &f, page)
            .map(|r| r.map(R::Repr::from))
            .boxed()
    })
}

/// Validates `p` and inserts a row owned by `user`; its id. The API and the web pages'
/// forms both create through here.
pub(crate) async fn create_row<R: Owned>(s: &AppState, user: &Auth, p: &Payload) -> ApiResult<i64> {
    may_write_host_code::<R>(s, user)?;
    let fields = R::read(s, p, false, None).await?;
    name_taken(
        R::save(&s.store, None, user.0.id, &fields).await,
        R::VERBOSE,
    )
}

async fn create<R: Owned>(
    State(s): State<AppState>,
    user: Auth,
    Input(p, _): Input<R::Input>,
) -> ApiResult<Created<R::Repr>> {
    let id = create_row::<R>(&s, &user, &p).await?;
    Ok(Status(found::<R>(&s, id).await?.into()))
}

async fn detail<R: Owned>(
    State(s): State<AppState>,
    _: Auth,
    PathId(id): PathId,
) -> ApiResult<Json<R::Repr>> {
    Ok(Json(found::<R>(&s, id).await?.into()))
}

/// Checks that `user` may change row `id` of `R`, validates `p` and saves it (the API's
/// PUT and PATCH, and the web pages' edit forms).
pub(crate) async fn update_row<R: Owned>(
    s: &AppState,
    user: &Auth,
    id: i64,
    p: &Payload,
    partial: bool,
) -> ApiResult<()> {
    let existing = found::<R>(s, id).await?;
    let owner = R::owner(&existing);
    may_change::<R>(s, user, &existing)?;
    let fields = R::read(s, p, partial, Some(&existing)).await?;
    let owner = owner.unwrap_or(user.0.id);
    name_taken(
        R::save(&s.store, Some(id), owner, &fields).await,
        R::VERBOSE,
    )?;
    Ok(())
}

/// Whether `user` may change (or delete) `row`: its owner or a superuser, and for code run
/// on executors' machines whoever `api.executable_types_by` allows.
pub(crate) fn may_change<R: Owned>(s: &AppState, user: &Auth, row: &R::Row) -> ApiResult<()> {
    user.may_change(R::owner(row))?;
    may_write_host_code::<R>(s, user)
}

async fn update<R: Owned, const PARTIAL: bool>(
    State(s): State<AppState>,
    user: Auth,
    PathId(id): PathId,
    Input(p, _): Input<R::Input, PARTIAL>,
) -> ApiResult<Json<R::Repr>> {
    update_row::<R>(&s, &user, id, &p, PARTIAL).await?;
    Ok(Json(found::<R>(&s, id).await?.into()))
}

/// Writes of code run on executors' machines, when only superusers may make them.
pub(crate) fn may_write_host_code<R: Owned>(s: &AppState, user: &Auth) -> Result<(), ApiError> {
    if R::HOST_CODE
        && s.config.executable_types_by == crate::WhoMay::Superusers
        && !user.0.is_superuser
    {
        return Err(ApiError::PermissionDenied);
    }
    Ok(())
}

/// The list and detail routes of `R`.
pub(crate) fn routes<R: Owned>(r: Routes) -> Routes {
    r.both(R::PATH, || {
        Methods::new()
            .get(list::<R>, |o| o.summary("List"))
            .post(create::<R>, |o| o.summary("Create; the requester owns it"))
    })
    .both(&format!("{}/{{id}}", R::PATH), || {
        let m = Methods::new()
            .get(detail::<R>, |o| o.summary("Read"))
            .put(update::<R, false>, |o| {
                o.summary("Update (owner or superuser)")
            });
        if R::PATCH {
            m.patch(update::<R, true>, |o| {
                o.summary("Update the given fields (owner or superuser)")
            })
        } else {
            m
        }
    })
}
