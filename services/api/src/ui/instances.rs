//! Instance pages: the list with filters (the API's filters and store query), the detail
//! page (arguments, state timeline per attempt, live log tail, results, trace link) and
//! its actions: rename, clone, terminate, with the API's permission rules.

use super::form::Errors;
use super::layout::{
    Live, csrf, form_errors, input, live_page, maybe_time, pager, path_escape, select, state_badge,
    time,
};
use super::{Posted, UiError, UiResult, Viewer, one_page, see_other};
use crate::AppState;
use crate::error::ApiError;
use crate::resources::instances::{clone_row, find, terminate_row};
use crate::resources::logs::file_name;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::NaiveDate;
use futures::TryStreamExt;
use maud::{Markup, html};
use saltant_core::State as InstanceState;
use saltant_store::filter::{Filter, Page};
use saltant_store::instance_filters::instance_filters;
use saltant_store::instances::InstanceRow;
use saltant_store::queues::{QUEUES, QueueRow};
use saltant_store::types::TypeClass;
use std::collections::HashMap;

pub(crate) fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/instances/{class}/", get(list))
        .route("/instances/{class}/{uuid}/", get(detail))
        .route("/instances/{class}/{uuid}/rename/", post(rename))
        .route("/instances/{class}/{uuid}/clone/", post(clone))
        .route("/instances/{class}/{uuid}/terminate/", post(terminate))
}

/// The class named in a path (`executable`, `container`).
pub(crate) fn class_of(name: &str) -> Result<TypeClass, UiError> {
    match name {
        "executable" => Ok(TypeClass::Executable),
        "container" => Ok(TypeClass::Container),
        _ => Err(UiError(ApiError::NotFound)),
    }
}

pub(crate) fn instance_url(i: &InstanceRow) -> String {
    format!("/instances/{}/{}/", i.kind.kind(), i.uuid)
}

/// The newest `limit` instances of both classes in `state` (the API's list query).
pub(crate) async fn latest(
    s: &AppState,
    state: InstanceState,
    limit: i64,
) -> Result<Vec<InstanceRow>, saltant_store::Error> {
    latest_where(
        s,
        &[Filter::TextEq("i.state", state.as_str().to_owned())],
        limit,
    )
    .await
}

/// The newest `limit` instances of both classes in queue `id`.
pub(crate) async fn latest_of_queue(
    s: &AppState,
    id: i64,
    limit: i64,
) -> Result<Vec<InstanceRow>, saltant_store::Error> {
    latest_where(s, &[Filter::IdEq("i.task_queue_id", id)], limit).await
}

async fn latest_where(
    s: &AppState,
    filters: &[Filter],
    limit: i64,
) -> Result<Vec<InstanceRow>, saltant_store::Error> {
    let page = Page {
        offset: 0,
        limit: Some(limit),
    };
    let mut rows = Vec::new();
    for class in [TypeClass::Executable, TypeClass::Container] {
        let mut some: Vec<InstanceRow> = s
            .store
            .list_instances(class, filters, page)
            .try_collect()
            .await?;
        rows.append(&mut some);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.datetime_created));
    rows.truncate(limit as usize);
    Ok(rows)
}

/// The names of instances' task types (rows hold the type's id; pages show its name).
#[derive(Default)]
pub(crate) struct TypeNames(HashMap<(TypeClass, i64), String>);

impl TypeNames {
    /// The names of the types of `rows`: one lookup per class.
    pub(crate) async fn of<'a>(
        s: &AppState,
        rows: impl IntoIterator<Item = &'a InstanceRow>,
    ) -> UiResult<TypeNames> {
        let mut ids: HashMap<TypeClass, Vec<i64>> = HashMap::new();
        for i in rows {
            ids.entry(i.kind).or_default().push(i.task_type_id);
        }
        let mut names = HashMap::new();
        for (class, mut ids) in ids {
            ids.sort_unstable();
            ids.dedup();
            for (id, name) in s.store.task_type_names(class, &ids).await? {
                names.insert((class, id), name);
            }
        }
        Ok(TypeNames(names))
    }

    /// A link to the type of `i`, by name (by class and id if it has none or is gone).
    pub(crate) fn link(&self, i: &InstanceRow) -> Markup {
        let name = self
            .0
            .get(&(i.kind, i.task_type_id))
            .filter(|n| !n.is_empty());
        html! {
            a href={ "/types/" (i.kind.kind()) "/" (i.task_type_id) "/" } {
                @match name {
                    Some(name) => (name),
                    None => { (i.kind.kind()) " #" (i.task_type_id) },
                }
            }
        }
    }
}

/// A table of instances, `empty` when there are none; `names` holds their types' names.
pub(crate) fn instance_table(rows: &[InstanceRow], names: &TypeNames, empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { (empty) }
        } @else {
            div.scroll {
                table.instances {
                    thead { tr {
                        th scope="col" { "Instance" } th scope="col" { "State" }
                        th scope="col" { "Type" } th scope="col" { "Queue" }
                        th scope="col" { "User" } th scope="col" { "Created" }
                    } }
                    tbody {
                        @for i in rows {
                            tr data-uuid=(i.uuid) {
                                td {
                                    a href=(instance_url(i)) {
                                        @if i.name.is_empty() { code { (short(i)) } } @else { (i.name) }
                                    }
                                }
                                td { (state_badge(i.state)) }
                                td { (names.link(i)) }
                                td { a href={ "/queues/" (i.task_queue_id) "/" } { (i.queue_name.as_str()) } }
                                td { (i.username.as_deref().unwrap_or("—")) }
                                td { (time(i.datetime_created)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(i: &InstanceRow) -> String {
    i.uuid.simple().to_string()[..8].to_owned()
}

/// Active queues the user may submit to: their own first, then the others' public ones,
/// alphabetically (the original's order).
pub(crate) async fn offered_queues(s: &AppState, v: &Viewer) -> UiResult<Vec<QueueRow>> {
    let page = Page {
        offset: 0,
        limit: None,
    };
    let mut queues: Vec<QueueRow> = s
        .store
        .page::<QueueRow>(&QUEUES, &[Filter::BoolEq("q.active", true)], page)
        .try_collect()
        .await?;
    let me = v.user().id;
    queues.retain(|q| !q.private || q.user_id == me);
    queues.sort_by(|a, b| (a.user_id != me, &a.name).cmp(&(b.user_id != me, &b.name)));
    Ok(queues)
}

/// The list page's filter fields, as the API's filter parameters.
fn api_filters(q: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in q {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "name__contains" | "state" | "task_type" | "task_queue" => {
                out.push((k.clone(), v.to_owned()))
            }
            // Dates of the form: from the first day's start to the last day's end (UTC).
            "from" | "to" => {
                let (key, day) = match (k.as_str(), NaiveDate::parse_from_str(v, "%Y-%m-%d")) {
                    ("from", Ok(d)) => ("datetime_created__gte", Some(d)),
                    (_, Ok(d)) => ("datetime_created__lt", d.succ_opt()),
                    (key, Err(_)) => (key, None),
                };
                match day {
                    Some(d) => out.push((key.to_owned(), format!("{d}T00:00:00"))),
                    // Not a date: the API's own error for the parameter.
                    None => out.push((
                        if key == "from" {
                            "datetime_created__gte"
                        } else {
                            "datetime_created__lt"
                        }
                        .to_owned(),
                        v.to_owned(),
                    )),
                }
            }
            _ => {}
        }
    }
    out
}

async fn list(
    State(s): State<AppState>,
    v: Viewer,
    Path(class): Path<String>,
    uri: Uri,
) -> UiResult {
    let class = class_of(&class)?;
    let q = crate::query::Query::from_uri(&uri).0;
    let get = |k: &str| {
        q.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let page_no: i64 = get("page").parse().unwrap_or(1).max(1);
    let filters = crate::query::filters(
        &crate::query::Query(api_filters(&q)),
        instance_filters(class),
    )
    .checked(&s.store)
    .await;
    // The user, by id: the list then reads the index of that user's instances, newest
    // first, whether they have many or none (by name it would scan every instance).
    let user = get("user__username");
    let user = match user.trim() {
        "" => None,
        name => Some(s.store.user_by_username(name).await?),
    };
    let filters = filters.map(|mut f| {
        if let Some(Some(u)) = &user {
            f.push(Filter::IdEq("i.user_id", u.id));
        }
        f
    });
    let (rows, more, errors) = match filters {
        Ok(_) if matches!(user, Some(None)) => (Vec::new(), false, Errors::default()),
        Ok(f) => {
            let (rows, more) =
                one_page(page_no, |page| s.store.list_instances(class, &f, page)).await?;
            (rows, more, Errors::default())
        }
        Err(e) => (Vec::new(), false, Errors::of(e)?),
    };
    let names = TypeNames::of(&s, &rows).await?;
    let queues = offered_queues(&s, &v).await?;
    let states: Vec<(String, String)> = InstanceState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), s.as_str().to_owned()))
        .collect();
    let queue_options: Vec<(String, String)> = queues
        .iter()
        .map(|q| (q.id.to_string(), q.name.clone()))
        .collect();
    let title = format!("{} instances", capital(class.kind()));
    let body = html! {
        h1 { (title) }
        form.filters method="get" action="" role="search" {
            (input("Name contains", "name__contains", "search", &get("name__contains"), &errors))
            (select("State", "state", &states, &[get("state")], false, &errors))
            (input("Type id", "task_type", "number", &get("task_type"), &errors))
            (select("Queue", "task_queue", &queue_options, &[get("task_queue")], false, &errors))
            (input("User", "user__username", "text", &get("user__username"), &errors))
            (input("Created from", "from", "date", &get("from"), &errors))
            (input("Created to", "to", "date", &get("to"), &errors))
            button type="submit" { "Filter" }
            " " a href="?" { "Clear" }
        }
        (form_errors(&errors, &["name__contains", "state", "task_type", "task_queue", "user__username"]))
        div #instance-list data-live {
            (instance_table(&rows, &names, "No instances."))
            (pager(&q, page_no, more))
        }
    };
    Ok(live_page(
        &title,
        Some(&v),
        Live {
            events: Some("/api/events/".into()),
            poll_ms: None,
        },
        body,
    )
    .into_response())
}

pub(crate) fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

async fn detail(
    State(s): State<AppState>,
    v: Viewer,
    Path((class, uuid)): Path<(String, String)>,
) -> UiResult {
    let class = class_of(&class)?;
    let i = find(&s, class, &uuid).await?;
    detail_page(&s, &v, &i, &Errors::default(), None).await
}

async fn detail_page(
    s: &AppState,
    v: &Viewer,
    i: &InstanceRow,
    errors: &Errors,
    new_name: Option<&str>,
) -> UiResult {
    let history = s.store.instance_history(i.uuid).await?;
    let type_names = TypeNames::of(s, [i]).await?;
    let results = crate::resources::results::manifest(s, &i.uuid.to_string()).await;
    let may_change = v.auth.may_change(i.user_id).is_ok();
    let mut attempts: Vec<i32> = history.iter().map(|h| h.attempt).collect();
    attempts.dedup();
    let trace_link = match (&s.config.trace_url, &i.trace_id) {
        (Some(t), Some(id)) => Some(t.replace("{trace_id}", id)),
        _ => None,
    };
    let base = format!("/instances/{}/{}/", i.kind.kind(), i.uuid);
    let api = format!("/api/taskinstances/{}", i.uuid);
    let title = if i.name.is_empty() {
        short(i)
    } else {
        i.name.clone()
    };
    let arguments = serde_json::to_string_pretty(&i.arguments.0).unwrap_or_default();
    let body = html! {
        div #instance data-live {
            h1 { (title) " " (state_badge(i.state)) }
            dl.facts {
                dt { "UUID" } dd { code #uuid { (i.uuid) } }
                dt { "State" } dd #state { (state_badge(i.state)) @if i.terminate_requested && !i.state.is_final() { " (termination requested)" } }
                dt { "User" } dd { (i.username.as_deref().unwrap_or("—")) }
                dt { "Task type" } dd { (type_names.link(i)) }
                dt { "Queue" } dd { a href={ "/queues/" (i.task_queue_id) "/" } { (i.queue_name.as_str()) } }
                dt { "Created" } dd { (time(i.datetime_created)) }
                dt { "Started" } dd { (maybe_time(i.datetime_started, "not started")) }
                dt { "Finished" } dd { (maybe_time(i.datetime_finished, "not finished")) }
                dt { "Attempt" } dd { (i.attempt) }
                @if let Some(e) = &i.executor { dt { "Executor" } dd { (e) } }
                @if let Some(c) = i.exit_code { dt { "Exit code" } dd { (c) } }
                @if let Some(r) = &i.reason { dt { "Reason" } dd #reason { (r) } }
                dt { "Trace" } dd {
                    @if let Some(link) = &trace_link {
                        a href=(link) rel="noopener noreferrer" { "Open the trace" }
                    } @else if let Some(id) = &i.trace_id {
                        code { (id) }
                    } @else { "none" }
                    " (" a href={ (api) "/trace/" } { "trace JSON" } ")"
                }
            }
            section {
                h2 { "State timeline" }
                @if history.is_empty() { p.empty { "No state recorded yet." } }
                @for a in &attempts {
                    h3 { "Attempt " (a) }
                    ol.timeline {
                        @for h in history.iter().filter(|h| h.attempt == *a) {
                            li {
                                (state_badge(h.state)) " " (time(h.at))
                                @if let Some(e) = &h.executor { " on " (e) }
                                @if let Some(c) = h.exit_code { " · exit code " (c) }
                                @if let Some(r) = &h.reason { " · " (r) }
                            }
                        }
                    }
                }
            }
            section.actions {
                h2 { "Actions" }
                form.inline method="post" action={ (base) "clone/" } {
                    (csrf(v)) button type="submit" { "Clone" }
                }
                @if may_change && !i.state.is_final() {
                    " "
                    form.inline method="post" action={ (base) "terminate/" } {
                        (csrf(v)) button.danger #terminate type="submit" { "Terminate" }
                    }
                }
            }
        }
        @if may_change {
            section {
                h2 { "Rename" }
                form.card.inline-form method="post" action={ (base) "rename/" } {
                    (csrf(v))
                    (form_errors(errors, &["name"]))
                    (input("Name", "name", "text", new_name.unwrap_or(&i.name), errors))
                    button type="submit" { "Rename" }
                }
            }
        }
        section {
            h2 { "Arguments" }
            pre.json #arguments { (arguments) }
        }
        section {
            h2 { "Output (attempt " (i.attempt) ")" }
            @for stream in ["stdout", "stderr"] {
                @let name = file_name(i.uuid, i.attempt, stream);
                h3 { (stream) " " a href={ (api) "/logs/" (name) } { "download" } }
                pre.log id={ "log-" (stream) } aria-live="polite"
                    data-tail={ (api) "/logs/" (name) "/tail/" } {}
                p.tail-status id={ "log-" (stream) "-status" } { "Following…" }
            }
        }
        section {
            h2 { "Results" }
            @match &results {
                Ok(Some(m)) if !m.files.is_empty() => {
                    ul #results {
                        @for f in &m.files {
                            li { a href={ (api) "/results/" (path_escape(&f.name)) } download { (f.name) } " (" (f.size) " bytes)" }
                        }
                    }
                }
                Ok(_) => p.empty { "No results kept." },
                Err(_) => p.empty { "The results cannot be listed now." },
            }
        }
    };
    Ok(live_page(
        &title,
        Some(v),
        Live {
            events: (!i.state.is_final()).then(|| format!("{api}/events/")),
            poll_ms: None,
        },
        body,
    )
    .into_response())
}

async fn rename(
    State(s): State<AppState>,
    Path((class, uuid)): Path<(String, String)>,
    p: Posted,
) -> UiResult {
    let class = class_of(&class)?;
    let i = find(&s, class, &uuid).await?;
    p.viewer.auth.may_change(i.user_id)?;
    let name = p.form.text("name");
    if name.chars().count() > 200 {
        let errors = Errors::one("name", "Ensure this field has no more than 200 characters.");
        return detail_page(&s, &p.viewer, &i, &errors, Some(&name)).await;
    }
    s.store.rename_instance(i.uuid, &name).await?;
    Ok(see_other(&instance_url(&i)))
}

async fn clone(
    State(s): State<AppState>,
    Path((class, uuid)): Path<(String, String)>,
    p: Posted,
) -> UiResult {
    let class = class_of(&class)?;
    match clone_row(class, &s, &p.viewer.auth, &uuid).await {
        Ok(row) => Ok(see_other(&instance_url(&row))),
        Err(ApiError::Fields(m)) => {
            // The queue or type changed since: say why on the original's page.
            let i = find(&s, class, &uuid).await?;
            detail_page(&s, &p.viewer, &i, &Errors(m), None).await
        }
        Err(e) => Err(UiError(e)),
    }
}

async fn terminate(
    State(s): State<AppState>,
    Path((class, uuid)): Path<(String, String)>,
    p: Posted,
) -> UiResult {
    let class = class_of(&class)?;
    let row = terminate_row(class, &s, &p.viewer.auth, &uuid).await?;
    Ok(see_other(&instance_url(&row)))
}

/// For pages that list a few instances of one class (a type's, a queue's).
pub(crate) async fn some_instances(
    s: &AppState,
    class: TypeClass,
    filters: &[Filter],
    limit: i64,
) -> Result<Vec<InstanceRow>, saltant_store::Error> {
    s.store
        .list_instances(
            class,
            filters,
            Page {
                offset: 0,
                limit: Some(limit),
            },
        )
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::api_filters;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn form_dates_become_a_range_of_whole_days() {
        let got = api_filters(&pairs(&[
            ("from", "2026-12-01"),
            ("to", "2026-12-03"),
            ("state", "failed"),
            ("page", "2"),
            ("user__username", "bob"),
        ]));
        assert_eq!(
            got,
            pairs(&[
                ("datetime_created__gte", "2026-12-01T00:00:00"),
                ("datetime_created__lt", "2026-12-04T00:00:00"),
                ("state", "failed"),
            ])
        );
    }
}
