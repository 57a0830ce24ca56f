//! Queue and whitelist pages: list, detail, create and update, validated and saved by
//! the API's code (the same permission rules: writes are the owner's or a superuser's).

use super::form::{Errors, Form};
use super::instances::{TypeNames, instance_table, latest_of_queue};
use super::layout::{Live, checkbox, csrf, form_errors, input, live_page, page, select, textarea};
use super::{Posted, UiError, UiResult, Viewer, see_other};
use crate::AppState;
use crate::error::ApiError;
use crate::resources::owned::{Owned, create_row, found, may_change, update_row};
use crate::resources::queues::{Queues, Whitelists};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::TryStreamExt;
use maud::html;
use saltant_store::filter::Page;
use saltant_store::queues::{QUEUES, QueueRow, WHITELISTS, WhitelistRow};
use saltant_store::types::{TaskTypeRow, TypeClass};

pub(crate) fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/queues/", get(queue_list))
        .route("/queues/new/", get(new::<Queues>).post(create::<Queues>))
        .route("/queues/{id}/", get(queue_detail))
        .route(
            "/queues/{id}/edit/",
            get(edit::<Queues>).post(update::<Queues>),
        )
        .route("/whitelists/", get(whitelist_list))
        .route(
            "/whitelists/new/",
            get(new::<Whitelists>).post(create::<Whitelists>),
        )
        .route("/whitelists/{id}/", get(whitelist_detail))
        .route(
            "/whitelists/{id}/edit/",
            get(edit::<Whitelists>).post(update::<Whitelists>),
        )
}

/// An owned resource with form pages at `/<SEGMENT>/new/` and `/<SEGMENT>/<id>/edit/`.
trait FormPages: Owned {
    /// `queues`, `whitelists`.
    const SEGMENT: &'static str;
    /// `queue`, `whitelist`.
    const WHAT: &'static str;
    fn name(row: &Self::Row) -> &str;
    /// What a new one's form starts with.
    fn fresh() -> Form;
    /// A row's values as its form holds them.
    fn values(row: &Self::Row) -> Form;
    /// The form page.
    fn form(
        s: &AppState,
        v: &Viewer,
        title: &str,
        f: &Form,
        errors: &Errors,
    ) -> impl Future<Output = UiResult> + Send;
}

async fn new<R: FormPages>(State(s): State<AppState>, v: Viewer) -> UiResult {
    let title = format!("New {}", R::WHAT);
    R::form(&s, &v, &title, &R::fresh(), &Errors::default()).await
}

async fn create<R: FormPages>(State(s): State<AppState>, p: Posted) -> UiResult {
    match save::<R>(&s, &p.viewer, None, &p.form).await? {
        Ok(id) => Ok(see_other(&format!("/{}/{id}/", R::SEGMENT))),
        Err(errors) => {
            let title = format!("New {}", R::WHAT);
            R::form(&s, &p.viewer, &title, &p.form, &errors).await
        }
    }
}

async fn edit<R: FormPages>(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> UiResult {
    let row = found::<R>(&s, id_of(&id)?).await?;
    may_change::<R>(&s, &v.auth, &row)?;
    let title = format!("Update {} {}", R::WHAT, R::name(&row));
    R::form(&s, &v, &title, &R::values(&row), &Errors::default()).await
}

async fn update<R: FormPages>(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Posted,
) -> UiResult {
    match save::<R>(&s, &p.viewer, Some(id_of(&id)?), &p.form).await? {
        Ok(id) => Ok(see_other(&format!("/{}/{id}/", R::SEGMENT))),
        Err(errors) => {
            let title = format!("Update {}", R::WHAT);
            R::form(&s, &p.viewer, &title, &p.form, &errors).await
        }
    }
}

impl FormPages for Queues {
    const SEGMENT: &'static str = "queues";
    const WHAT: &'static str = "queue";
    fn name(row: &QueueRow) -> &str {
        &row.name
    }
    fn fresh() -> Form {
        Form(vec![
            ("active".into(), "true".into()),
            ("runs_executable_tasks".into(), "true".into()),
            ("runs_docker_container_tasks".into(), "true".into()),
        ])
    }
    fn values(row: &QueueRow) -> Form {
        queue_values(row)
    }
    async fn form(s: &AppState, v: &Viewer, title: &str, f: &Form, errors: &Errors) -> UiResult {
        queue_form(s, v, title, f, errors).await
    }
}

impl FormPages for Whitelists {
    const SEGMENT: &'static str = "whitelists";
    const WHAT: &'static str = "whitelist";
    fn name(row: &WhitelistRow) -> &str {
        &row.name
    }
    fn fresh() -> Form {
        Form::default()
    }
    fn values(row: &WhitelistRow) -> Form {
        whitelist_values(row)
    }
    async fn form(s: &AppState, v: &Viewer, title: &str, f: &Form, errors: &Errors) -> UiResult {
        whitelist_form(s, v, title, f, errors).await
    }
}

const ALL: Page = Page {
    offset: 0,
    limit: None,
};

fn id_of(id: &str) -> UiResult<i64> {
    id.parse().map_err(|_| UiError(ApiError::NotFound))
}

async fn all<T>(s: &AppState, table: &'static saltant_store::owned::Table) -> UiResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + 'static,
{
    Ok(s.store.page::<T>(table, &[], ALL).try_collect().await?)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Creates (`id` None) or updates a row of `R` from a form; its id, or the form's errors.
async fn save<R: Owned>(
    s: &AppState,
    v: &Viewer,
    id: Option<i64>,
    f: &Form,
) -> UiResult<Result<i64, Errors>> {
    let p = f.payload();
    let saved = match id {
        None => create_row::<R>(s, &v.auth, &p).await,
        Some(id) => update_row::<R>(s, &v.auth, id, &p, false)
            .await
            .map(|()| id),
    };
    match saved {
        Ok(id) => Ok(Ok(id)),
        Err(e) => Ok(Err(Errors::of(e)?)),
    }
}

// ---- queues

async fn queue_list(State(s): State<AppState>, v: Viewer) -> UiResult {
    let queues: Vec<QueueRow> = all(&s, &QUEUES).await?;
    Ok(page(
        "Queues",
        Some(&v),
        html! {
            h1 { "Queues" }
            p { a.button href="/queues/new/" { "New queue" } }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "ID" } th scope="col" { "Name" } th scope="col" { "User" }
                    th scope="col" { "Private" } th scope="col" { "Active" }
                } }
                tbody { @for q in &queues { tr {
                    td { (q.id) }
                    td { a href={ "/queues/" (q.id) "/" } { (q.name) } }
                    td { (q.username.as_deref().unwrap_or("—")) }
                    td { (yes(q.private)) } td { (yes(q.active)) }
                } } }
            } }
        },
    )
    .into_response())
}

async fn queue_detail(State(s): State<AppState>, v: Viewer, Path(id): Path<String>) -> UiResult {
    let q = found::<Queues>(&s, id_of(&id)?).await?;
    let whitelists: Vec<WhitelistRow> = all(&s, &WHITELISTS).await?;
    let instances = latest_of_queue(&s, q.id, 20).await?;
    let names = TypeNames::of(&s, &instances).await?;
    let may = may_change::<Queues>(&s, &v.auth, &q).is_ok();
    Ok(live_page(
        &q.name,
        Some(&v),
        Live {
            // A private queue's events are its owner's and superusers' (docs/events.md).
            events: (!q.private || v.user().is_superuser || q.user_id == v.user().id)
                .then(|| format!("/api/taskqueues/{}/events/", q.id)),
            poll_ms: None,
        },
        html! {
            h1 { "Queue " (q.name) }
            @if may { p { a.button href={ "/queues/" (q.id) "/edit/" } { "Update" } } }
            dl.facts {
                dt { "ID" } dd { (q.id) }
                dt { "User" } dd { (q.username.as_deref().unwrap_or("—")) }
                dt { "Private" } dd { (yes(q.private)) }
                dt { "Active" } dd { (yes(q.active)) }
                dt { "Runs executable tasks" } dd { (yes(q.runs_executable_tasks)) }
                dt { "Runs Docker tasks" } dd { (yes(q.runs_docker_container_tasks)) }
                dt { "Runs Singularity tasks" } dd { (yes(q.runs_singularity_container_tasks)) }
            }
            h2 { "Description" }
            p.description { (q.description) }
            h2 { "Whitelists" }
            ul { @for w in whitelists.iter().filter(|w| q.whitelists.contains(&w.id)) {
                li { a href={ "/whitelists/" (w.id) "/" } { (w.name) } }
            } }
            h2 { "Latest instances" }
            div #queue-instances data-live { (instance_table(&instances, &names, "No instances yet.")) }
        },
    )
    .into_response())
}

async fn queue_form(s: &AppState, v: &Viewer, title: &str, f: &Form, errors: &Errors) -> UiResult {
    let whitelists: Vec<WhitelistRow> = all(s, &WHITELISTS).await?;
    let options: Vec<(String, String)> = whitelists
        .iter()
        .map(|w| (w.id.to_string(), w.name.clone()))
        .collect();
    let chosen: Vec<String> = f.all("whitelists").into_iter().map(str::to_owned).collect();
    let on = |k: &str| f.has(k, "true");
    let shown = [
        "name",
        "description",
        "private",
        "active",
        "runs_executable_tasks",
        "runs_docker_container_tasks",
        "runs_singularity_container_tasks",
        "whitelists",
    ];
    Ok(page(
        title,
        Some(v),
        html! {
            h1 { (title) }
            form.card method="post" action="" novalidate {
                (csrf(v))
                (form_errors(errors, &shown))
                (input("Name", "name", "text", &f.text("name"), errors))
                (textarea("Description", "description", &f.text("description"), 3, errors))
                (checkbox("Private (only you may use it)", "private", on("private"), errors))
                (checkbox("Active", "active", on("active"), errors))
                (checkbox("Runs executable tasks", "runs_executable_tasks", on("runs_executable_tasks"), errors))
                (checkbox("Runs Docker container tasks", "runs_docker_container_tasks", on("runs_docker_container_tasks"), errors))
                (checkbox("Runs Singularity container tasks", "runs_singularity_container_tasks", on("runs_singularity_container_tasks"), errors))
                (select("Whitelists", "whitelists", &options, &chosen, true, errors))
                button type="submit" { "Save" }
            }
        },
    )
    .into_response())
}

fn queue_values(q: &QueueRow) -> Form {
    let mut f = vec![
        ("name".to_owned(), q.name.clone()),
        ("description".to_owned(), q.description.clone()),
    ];
    for (k, b) in [
        ("private", q.private),
        ("active", q.active),
        ("runs_executable_tasks", q.runs_executable_tasks),
        ("runs_docker_container_tasks", q.runs_docker_container_tasks),
        (
            "runs_singularity_container_tasks",
            q.runs_singularity_container_tasks,
        ),
    ] {
        if b {
            f.push((k.to_owned(), "true".to_owned()));
        }
    }
    f.extend(
        q.whitelists
            .iter()
            .map(|w| ("whitelists".to_owned(), w.to_string())),
    );
    Form(f)
}

// ---- whitelists

async fn whitelist_list(State(s): State<AppState>, v: Viewer) -> UiResult {
    let lists: Vec<WhitelistRow> = all(&s, &WHITELISTS).await?;
    Ok(page(
        "Whitelists",
        Some(&v),
        html! {
            h1 { "Whitelists" }
            p { a.button href="/whitelists/new/" { "New whitelist" } }
            div.scroll { table {
                thead { tr { th scope="col" { "ID" } th scope="col" { "Name" } th scope="col" { "User" } th scope="col" { "Types" } } }
                tbody { @for w in &lists { tr {
                    td { (w.id) }
                    td { a href={ "/whitelists/" (w.id) "/" } { (w.name) } }
                    td { (w.username.as_deref().unwrap_or("—")) }
                    td { (w.whitelisted_executable_task_types.len() + w.whitelisted_container_task_types.len()) }
                } } }
            } }
        },
    )
    .into_response())
}

async fn type_options(s: &AppState, class: TypeClass) -> UiResult<Vec<(String, String)>> {
    let types: Vec<TaskTypeRow> = all(s, class.listing()).await?;
    Ok(types
        .into_iter()
        .map(|t| (t.id.to_string(), format!("{} (#{})", t.name, t.id)))
        .collect())
}

async fn whitelist_detail(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> UiResult {
    let w = found::<Whitelists>(&s, id_of(&id)?).await?;
    let may = may_change::<Whitelists>(&s, &v.auth, &w).is_ok();
    let exec = type_options(&s, TypeClass::Executable).await?;
    let cont = type_options(&s, TypeClass::Container).await?;
    let listed = |opts: &[(String, String)], ids: &[i64], class: &str| {
        html! { ul { @for (id, name) in opts.iter().filter(|(id, _)| ids.iter().any(|i| i.to_string() == *id)) {
            li { a href={ "/types/" (class) "/" (id) "/" } { (name) } }
        } } }
    };
    Ok(page(
        &w.name,
        Some(&v),
        html! {
            h1 { "Whitelist " (w.name) }
            @if may { p { a.button href={ "/whitelists/" (w.id) "/edit/" } { "Update" } } }
            dl.facts {
                dt { "ID" } dd { (w.id) }
                dt { "User" } dd { (w.username.as_deref().unwrap_or("—")) }
            }
            h2 { "Description" }
            p.description { (w.description) }
            h2 { "Executable task types" }
            (listed(&exec, &w.whitelisted_executable_task_types, "executable"))
            h2 { "Container task types" }
            (listed(&cont, &w.whitelisted_container_task_types, "container"))
        },
    )
    .into_response())
}

async fn whitelist_form(
    s: &AppState,
    v: &Viewer,
    title: &str,
    f: &Form,
    errors: &Errors,
) -> UiResult {
    let exec = type_options(s, TypeClass::Executable).await?;
    let cont = type_options(s, TypeClass::Container).await?;
    let chosen = |k: &str| -> Vec<String> { f.all(k).into_iter().map(str::to_owned).collect() };
    let shown = [
        "name",
        "description",
        "whitelisted_executable_task_types",
        "whitelisted_container_task_types",
    ];
    Ok(page(
        title,
        Some(v),
        html! {
            h1 { (title) }
            form.card method="post" action="" novalidate {
                (csrf(v))
                (form_errors(errors, &shown))
                (input("Name", "name", "text", &f.text("name"), errors))
                (textarea("Description", "description", &f.text("description"), 3, errors))
                (select("Executable task types", "whitelisted_executable_task_types", &exec, &chosen("whitelisted_executable_task_types"), true, errors))
                (select("Container task types", "whitelisted_container_task_types", &cont, &chosen("whitelisted_container_task_types"), true, errors))
                button type="submit" { "Save" }
            }
        },
    )
    .into_response())
}

fn whitelist_values(w: &WhitelistRow) -> Form {
    let mut f = vec![
        ("name".to_owned(), w.name.clone()),
        ("description".to_owned(), w.description.clone()),
    ];
    for (k, ids) in [
        (
            "whitelisted_executable_task_types",
            &w.whitelisted_executable_task_types,
        ),
        (
            "whitelisted_container_task_types",
            &w.whitelisted_container_task_types,
        ),
    ] {
        f.extend(ids.iter().map(|i| (k.to_owned(), i.to_string())));
    }
    Form(f)
}
