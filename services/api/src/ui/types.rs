//! Task type pages of both classes: list with search, detail with the base command
//! preview, create, update and delete (owner or superuser), and the "new instance" form
//! prefilled with the type's defaults. Forms are validated by the API's code.

use super::form::{Errors, Form};
use super::instances::{
    TypeNames, capital, class_of, instance_table, instance_url, offered_queues, some_instances,
};
use super::layout::{
    Live, csrf, form_errors, input, live_page, page, pager, select, textarea, time,
};
use super::{Posted, UiError, UiResult, Viewer, one_page, see_other};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::resources::owned::{create_row, may_change, update_row};
use crate::resources::types::{Container, Executable};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use saltant_core::command::{ArgumentPassing, argument_passing};
use saltant_store::filter::Filter;
use saltant_store::types::{TaskTypeRow, TypeClass};
use serde_json::{Map, Value};

pub(crate) fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/types/{class}/", get(list))
        .route("/types/{class}/new/", get(new_form).post(create))
        .route("/types/{class}/{id}/", get(detail))
        .route("/types/{class}/{id}/edit/", get(edit_form).post(update))
        .route("/types/{class}/{id}/delete/", get(delete_form).post(delete))
        .route("/types/{class}/{id}/run/", get(run_form).post(run))
}

async fn found(s: &AppState, class: TypeClass, id: i64) -> UiResult<TaskTypeRow> {
    s.store
        .task_type(class, id)
        .await?
        .ok_or(UiError(ApiError::NotFound))
}

fn id_of(id: &str) -> UiResult<i64> {
    id.parse().map_err(|_| UiError(ApiError::NotFound))
}

/// The type a path names, if `user` may change or delete it (else 404 or 403).
async fn changeable(
    s: &AppState,
    user: &Auth,
    class: &str,
    id: &str,
) -> UiResult<(TypeClass, TaskTypeRow)> {
    let class = class_of(class)?;
    let t = found(s, class, id_of(id)?).await?;
    may_change_type(s, user, class, &t)?;
    Ok((class, t))
}

/// The API's create of a type of `class`.
async fn create_type(s: &AppState, user: &Auth, class: TypeClass, f: &Form) -> ApiResult<i64> {
    let p = f.payload();
    match class {
        TypeClass::Executable => create_row::<Executable>(s, user, &p).await,
        TypeClass::Container => create_row::<Container>(s, user, &p).await,
    }
}

/// The API's update (PUT) of a type of `class`.
async fn update_type(
    s: &AppState,
    user: &Auth,
    class: TypeClass,
    id: i64,
    f: &Form,
) -> ApiResult<()> {
    let p = f.payload();
    match class {
        TypeClass::Executable => update_row::<Executable>(s, user, id, &p, false).await,
        TypeClass::Container => update_row::<Container>(s, user, id, &p, false).await,
    }
}

/// Whether `user` may change or delete the type (the API's rule).
fn may_change_type(
    s: &AppState,
    user: &Auth,
    class: TypeClass,
    row: &TaskTypeRow,
) -> ApiResult<()> {
    match class {
        TypeClass::Executable => may_change::<Executable>(s, user, row),
        TypeClass::Container => may_change::<Container>(s, user, row),
    }
}

fn type_url(class: TypeClass, id: i64) -> String {
    format!("/types/{}/{id}/", class.kind())
}

async fn list(
    State(s): State<AppState>,
    v: Viewer,
    Path(class): Path<String>,
    uri: Uri,
) -> UiResult {
    let class = class_of(&class)?;
    let q = crate::query::Query::from_uri(&uri);
    let search = q.get("name__contains").unwrap_or_default().to_owned();
    let page_no: i64 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let search_q = crate::query::Query(vec![("name__contains".into(), search.clone())]);
    let filters = crate::query::filters(&search_q, class.listing().filters)
        .checked(&s.store)
        .await?;
    let (rows, more) = one_page(page_no, |page| {
        s.store.page::<TaskTypeRow>(class.listing(), &filters, page)
    })
    .await?;
    let title = format!("{} task types", capital(class.kind()));
    Ok(page(
        &title,
        Some(&v),
        html! {
            h1 { (title) }
            p { a.button href={ "/types/" (class.kind()) "/new/" } { "New " (class.kind()) " type" } }
            form.filters method="get" action="" role="search" {
                (input("Name contains", "name__contains", "search", &search, &Errors::default()))
                button type="submit" { "Search" }
            }
            @if rows.is_empty() { p.empty { "No task types." } } @else {
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "ID" } th scope="col" { "Name" } th scope="col" { "User" }
                        @if class == TypeClass::Container { th scope="col" { "Image" } }
                        th scope="col" { "Created" }
                    } }
                    tbody { @for t in &rows { tr {
                        td { (t.id) }
                        td { a href=(type_url(class, t.id)) { (t.name) } }
                        td { (t.username.as_deref().unwrap_or("—")) }
                        @if class == TypeClass::Container { td { (t.container_image.as_deref().unwrap_or("")) " (" (t.container_type.as_deref().unwrap_or("")) ")" } }
                        td { (time(t.datetime_created)) }
                    } } }
                } }
            }
            (pager(&q.0, page_no, more))
        },
    )
    .into_response())
}

/// The arguments a new instance starts with: each required argument's default, else the
/// placeholder `"value"` (the original's form).
fn starting_arguments(t: &TaskTypeRow) -> Map<String, Value> {
    let defaults = t.required_arguments_default_values.0.as_object();
    let mut args = Map::new();
    for name in t.required_arguments.0.as_array().into_iter().flatten() {
        if let Some(name) = name.as_str() {
            let v = defaults
                .and_then(|d| d.get(name))
                .cloned()
                .unwrap_or_else(|| Value::from("value"));
            args.insert(name.to_owned(), v);
        }
    }
    args
}

/// The command an instance runs, as the executor builds it, with the starting arguments.
pub(crate) fn base_command(t: &TaskTypeRow) -> String {
    let args = starting_arguments(t);
    match argument_passing(&args, t.json_file_option.as_deref()) {
        ArgumentPassing::None => t.command_to_run.clone(),
        ArgumentPassing::Positional(json) => format!("{} '{json}'", t.command_to_run),
        ArgumentPassing::File { option, .. } => {
            format!("{} {option} json_args_file.json", t.command_to_run)
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

async fn detail(
    State(s): State<AppState>,
    v: Viewer,
    Path((class, id)): Path<(String, String)>,
) -> UiResult {
    let class = class_of(&class)?;
    let t = found(&s, class, id_of(&id)?).await?;
    let column = match class {
        TypeClass::Executable => "i.executable_task_type_id",
        TypeClass::Container => "i.container_task_type_id",
    };
    let instances = some_instances(&s, class, &[Filter::IdEq(column, t.id)], 20).await?;
    let names = TypeNames::of(&s, &instances).await?;
    let may = may_change_type(&s, &v.auth, class, &t).is_ok();
    let url = type_url(class, t.id);
    Ok(live_page(
        &t.name,
        Some(&v),
        Live {
            events: Some("/api/events/".into()),
            poll_ms: None,
        },
        html! {
            h1 { (t.name) }
            p.actions {
                a.button href={ (url) "run/" } { "New instance" }
                @if may {
                    " " a.button href={ (url) "edit/" } { "Update" }
                    " " a.button.danger href={ (url) "delete/" } { "Delete" }
                }
            }
            dl.facts {
                dt { "ID" } dd { (t.id) }
                dt { "User" } dd { (t.username.as_deref().unwrap_or("—")) }
                dt { "Created" } dd { (time(t.datetime_created)) }
                @if class == TypeClass::Container {
                    dt { "Container" } dd { (t.container_image.as_deref().unwrap_or("")) " (" (t.container_type.as_deref().unwrap_or("")) ")" }
                    dt { "Logs path" } dd { (t.logs_path.as_deref().unwrap_or("none")) }
                    dt { "Results path" } dd { (t.results_path.as_deref().unwrap_or("none")) }
                } @else {
                    dt { "JSON file option" } dd { (t.json_file_option.as_deref().unwrap_or("none")) }
                }
            }
            h2 { "Description" }
            p.description { (t.description) }
            h2 { "Base command" }
            pre #base-command { (base_command(&t)) }
            h2 { "Required arguments" }
            pre.json { (pretty(&t.required_arguments.0)) }
            h2 { "Default values" }
            pre.json { (pretty(&t.required_arguments_default_values.0)) }
            h2 { "Required environment variables" }
            pre.json { (pretty(&t.environment_variables.0)) }
            h2 { "Latest instances" }
            div #type-instances data-live { (instance_table(&instances, &names, "No instances yet.")) }
        },
    )
    .into_response())
}

/// The type form's values: the posted form, else the row being edited, else empty.
fn type_form(
    v: &Viewer,
    class: TypeClass,
    action: &str,
    f: &Form,
    errors: &Errors,
    title: &str,
) -> Response {
    let ctypes = vec![
        ("docker".to_owned(), "docker".to_owned()),
        ("singularity".to_owned(), "singularity".to_owned()),
    ];
    let mut shown = vec![
        "name",
        "description",
        "command_to_run",
        "environment_variables",
        "required_arguments",
        "required_arguments_default_values",
    ];
    match class {
        TypeClass::Container => shown.extend([
            "container_image",
            "container_type",
            "logs_path",
            "results_path",
        ]),
        TypeClass::Executable => shown.push("json_file_option"),
    }
    page(
        title,
        Some(v),
        html! {
            h1 { (title) }
            form.card method="post" action=(action) novalidate {
                (csrf(v))
                (form_errors(errors, &shown))
                (input("Name", "name", "text", &f.text("name"), errors))
                (textarea("Description", "description", &f.text("description"), 3, errors))
                (input("Command to run", "command_to_run", "text", &f.text("command_to_run"), errors))
                @if class == TypeClass::Container {
                    (input("Container image", "container_image", "text", &f.text("container_image"), errors))
                    (select("Container type", "container_type", &ctypes, &[f.text("container_type")], false, errors))
                    (input("Logs path", "logs_path", "text", &f.text("logs_path"), errors))
                    (input("Results path", "results_path", "text", &f.text("results_path"), errors))
                } @else {
                    (input("JSON file option (e.g. --json-file)", "json_file_option", "text", &f.text("json_file_option"), errors))
                }
                (textarea("Required environment variables (JSON list)", "environment_variables", &f.text("environment_variables"), 2, errors))
                (textarea("Required arguments (JSON list)", "required_arguments", &f.text("required_arguments"), 3, errors))
                (textarea("Default values (JSON object)", "required_arguments_default_values", &f.text("required_arguments_default_values"), 4, errors))
                button type="submit" { "Save" }
            }
        },
    )
    .into_response()
}

fn row_form(t: &TaskTypeRow) -> Form {
    let mut f = vec![
        ("name", t.name.clone()),
        ("description", t.description.clone()),
        ("command_to_run", t.command_to_run.clone()),
        ("environment_variables", pretty(&t.environment_variables.0)),
        ("required_arguments", pretty(&t.required_arguments.0)),
        (
            "required_arguments_default_values",
            pretty(&t.required_arguments_default_values.0),
        ),
    ];
    for (k, v) in [
        ("container_image", &t.container_image),
        ("container_type", &t.container_type),
        ("logs_path", &t.logs_path),
        ("results_path", &t.results_path),
        ("json_file_option", &t.json_file_option),
    ] {
        if let Some(v) = v {
            f.push((k, v.clone()));
        }
    }
    Form(f.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A posted type form without blank optional fields (blank is "none", as the API's
/// nullable fields take it).
fn cleaned(f: &Form) -> Form {
    let nullable = ["logs_path", "results_path", "json_file_option"];
    Form(
        f.0.iter()
            .filter(|(k, v)| !(nullable.contains(&k.as_str()) && v.trim().is_empty()))
            .cloned()
            .collect(),
    )
}

async fn new_form(v: Viewer, Path(class): Path<String>) -> UiResult {
    let class = class_of(&class)?;
    let f = Form(vec![
        ("environment_variables".into(), "[]".into()),
        ("required_arguments".into(), "[]".into()),
        ("required_arguments_default_values".into(), "{}".into()),
    ]);
    let title = format!("New {} task type", class.kind());
    Ok(type_form(&v, class, "", &f, &Errors::default(), &title))
}

async fn create(State(s): State<AppState>, Path(class): Path<String>, p: Posted) -> UiResult {
    let class = class_of(&class)?;
    match create_type(&s, &p.viewer.auth, class, &cleaned(&p.form)).await {
        Ok(id) => Ok(see_other(&type_url(class, id))),
        Err(e) => {
            let errors = Errors::of(e)?;
            let title = format!("New {} task type", class.kind());
            Ok(type_form(&p.viewer, class, "", &p.form, &errors, &title))
        }
    }
}

async fn edit_form(
    State(s): State<AppState>,
    v: Viewer,
    Path((class, id)): Path<(String, String)>,
) -> UiResult {
    let (class, t) = changeable(&s, &v.auth, &class, &id).await?;
    let title = format!("Update {}", t.name);
    Ok(type_form(
        &v,
        class,
        "",
        &row_form(&t),
        &Errors::default(),
        &title,
    ))
}

async fn update(
    State(s): State<AppState>,
    Path((class, id)): Path<(String, String)>,
    p: Posted,
) -> UiResult {
    let class = class_of(&class)?;
    let id = id_of(&id)?;
    match update_type(&s, &p.viewer.auth, class, id, &cleaned(&p.form)).await {
        Ok(()) => Ok(see_other(&type_url(class, id))),
        Err(e) => {
            let errors = Errors::of(e)?;
            Ok(type_form(
                &p.viewer,
                class,
                "",
                &p.form,
                &errors,
                "Update task type",
            ))
        }
    }
}

async fn delete_form(
    State(s): State<AppState>,
    v: Viewer,
    Path((class, id)): Path<(String, String)>,
) -> UiResult {
    let (class, t) = changeable(&s, &v.auth, &class, &id).await?;
    Ok(page(
        "Delete task type",
        Some(&v),
        html! {
            h1 { "Delete " (t.name) "?" }
            p { "The type and every instance of it are deleted. This cannot be undone." }
            form.inline method="post" action="" {
                (csrf(&v))
                button.danger type="submit" { "Delete" }
            }
            " " a href=(type_url(class, t.id)) { "Cancel" }
        },
    )
    .into_response())
}

async fn delete(
    State(s): State<AppState>,
    Path((class, id)): Path<(String, String)>,
    p: Posted,
) -> UiResult {
    let (class, t) = changeable(&s, &p.viewer.auth, &class, &id).await?;
    s.store.delete(class.listing(), t.id).await?;
    Ok(see_other(&format!("/types/{}/", class.kind())))
}

fn run_page(
    v: &Viewer,
    t: &TaskTypeRow,
    queues: &[(String, String)],
    f: &Form,
    errors: &Errors,
) -> Markup {
    page(
        "New instance",
        Some(v),
        html! {
            h1 { "New instance of " (t.name) }
            form.card method="post" action="" novalidate {
                (csrf(v))
                (form_errors(errors, &["name", "task_queue", "arguments", "max_attempts", "run_timeout_secs", "queue_timeout_secs"]))
                (input("Name", "name", "text", &f.text("name"), errors))
                (select("Queue", "task_queue", queues, &[f.text("task_queue")], false, errors))
                (textarea("Arguments (JSON object)", "arguments", &f.text("arguments"), 8, errors))
                details {
                    summary { "Retries and time limits" }
                    (input("Attempts at most", "max_attempts", "number", &f.text("max_attempts"), errors))
                    (input("Run time-out (seconds)", "run_timeout_secs", "number", &f.text("run_timeout_secs"), errors))
                    (input("Queue time-out (seconds)", "queue_timeout_secs", "number", &f.text("queue_timeout_secs"), errors))
                }
                p { "Runs: " code { (base_command(t)) } }
                button type="submit" { "Create and run" }
            }
        },
    )
}

async fn queue_options(s: &AppState, v: &Viewer) -> UiResult<Vec<(String, String)>> {
    Ok(offered_queues(s, v)
        .await?
        .into_iter()
        .map(|q| (q.id.to_string(), q.name))
        .collect())
}

async fn run_form(
    State(s): State<AppState>,
    v: Viewer,
    Path((class, id)): Path<(String, String)>,
) -> UiResult {
    let class = class_of(&class)?;
    let t = found(&s, class, id_of(&id)?).await?;
    let queues = queue_options(&s, &v).await?;
    let f = Form(vec![(
        "arguments".into(),
        pretty(&Value::Object(starting_arguments(&t))),
    )]);
    Ok(run_page(&v, &t, &queues, &f, &Errors::default()).into_response())
}

async fn run(
    State(s): State<AppState>,
    Path((class, id)): Path<(String, String)>,
    p: Posted,
) -> UiResult {
    let class = class_of(&class)?;
    let t = found(&s, class, id_of(&id)?).await?;
    // Blank optional numbers are "not given"; the type is the page's.
    let optional = ["max_attempts", "run_timeout_secs", "queue_timeout_secs"];
    let mut fields: Vec<(String, String)> = p
        .form
        .0
        .iter()
        .filter(|(k, v)| !(optional.contains(&k.as_str()) && v.trim().is_empty()))
        .filter(|(k, _)| k != "task_type")
        .cloned()
        .collect();
    fields.push(("task_type".into(), t.id.to_string()));
    let payload = Form(fields).payload();
    match crate::resources::instances::create_row(class, &s, &p.viewer.auth, &payload).await {
        Ok(row) => Ok(see_other(&instance_url(&row))),
        Err(e) => {
            let errors = Errors::of(e)?;
            let queues = queue_options(&s, &p.viewer).await?;
            Ok(run_page(&p.viewer, &t, &queues, &p.form, &errors).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::types::Json;

    fn executable(json_file_option: Option<&str>) -> TaskTypeRow {
        TaskTypeRow {
            id: 1,
            username: None,
            user_id: None,
            name: "t".into(),
            description: String::new(),
            datetime_created: chrono::Utc::now(),
            command_to_run: "python run.py".into(),
            environment_variables: Json(serde_json::json!([])),
            required_arguments: Json(serde_json::json!(["n", "mode"])),
            required_arguments_default_values: Json(serde_json::json!({"n": 3})),
            logs_path: None,
            results_path: None,
            container_image: None,
            container_type: None,
            json_file_option: json_file_option.map(str::to_owned),
        }
    }

    #[test]
    fn base_command_shows_defaults_and_placeholders_as_the_executor_passes_them() {
        assert_eq!(
            base_command(&executable(None)),
            r#"python run.py '{"n": 3, "mode": "value"}'"#
        );
        assert_eq!(
            base_command(&executable(Some("--json"))),
            "python run.py --json json_args_file.json"
        );
    }
}
