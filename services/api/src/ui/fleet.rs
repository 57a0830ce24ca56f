//! The fleet: the executors alive now (their heartbeats in the bus), what each runs, and
//! each queue's depth and the age of its oldest waiting instance (the scheduler's gauges'
//! query), as `GET /api/executors/` answers them. Kept current by polling (heartbeats are not events) and by the event stream.

use super::layout::{Live, live_page, time};
use super::{UiError, UiResult, Viewer, see_other};
use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use maud::html;

pub(crate) fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/fleet/", get(fleet))
        .route("/i/{uuid}/", get(instance_by_uuid))
}

/// Any instance by its uuid (heartbeats do not say the class).
async fn instance_by_uuid(
    State(s): State<AppState>,
    _: Viewer,
    Path(uuid): Path<String>,
) -> UiResult {
    let uuid: uuid::Uuid = uuid.parse().map_err(|_| UiError(ApiError::NotFound))?;
    let row = s
        .store
        .instance(uuid)
        .await?
        .ok_or(UiError(ApiError::NotFound))?;
    Ok(see_other(&super::instances::instance_url(&row)))
}

async fn fleet(State(s): State<AppState>, v: Viewer) -> UiResult {
    let crate::resources::executors::Fleet {
        executors,
        unreadable,
        queues,
    } = crate::resources::executors::fleet(&s).await?;
    let now = Utc::now();
    let body = html! {
        h1 { "Fleet" }
        div #fleet data-live {
            section {
                h2 { "Executors (" (executors.len()) ")" }
                @if executors.is_empty() { p.empty { "No executor is alive." } } @else {
                    div.scroll { table #executors {
                        thead { tr {
                            th scope="col" { "Executor" } th scope="col" { "Host" } th scope="col" { "Queues" }
                            th scope="col" { "Slots used / free" } th scope="col" { "Running" }
                            th scope="col" { "Capabilities" } th scope="col" { "Engines" }
                            th scope="col" { "Version" } th scope="col" { "Last heartbeat" }
                        } }
                        tbody { @for (id, b) in &executors {
                            tr data-executor=(id) {
                                td { code { (id) } }
                                td { (b.host) }
                                td { @if b.queues.is_empty() { "every queue" } @else { (b.queues.join(", ")) } }
                                td { (b.running.len()) " / " (b.slots.saturating_sub(b.running.len() as u32)) }
                                td { ul.plain { @for u in &b.running {
                                    li { a href={ "/i/" (u) "/" } { code { (u) } } }
                                } } }
                                td { (b.capabilities.join(", ")) }
                                td { @for (k, ver) in &b.engines { (k) " " (ver) br; } }
                                td { (b.version) }
                                td { (time(b.at)) " (" ((now - b.at).num_seconds().max(0)) " s ago)" }
                            }
                        } }
                    } }
                }
                @if !unreadable.is_empty() {
                    p { "Alive, with a heartbeat this version cannot read: " (unreadable.join(", ")) }
                }
            }
            section {
                h2 { "Queues" }
                @if queues.is_empty() { p.empty { "No unfinished instances." } } @else {
                    div.scroll { table #queue-depth {
                        thead { tr {
                            th scope="col" { "Queue" } th scope="col" { "Waiting" }
                            th scope="col" { "Running" } th scope="col" { "Oldest waiting" }
                        } }
                        tbody { @for d in &queues { tr {
                            td { (d.queue) } td { (d.waiting) } td { (d.running) }
                            td { @if d.waiting > 0 { (d.oldest_waiting_secs.round() as i64) " s" } @else { "—" } }
                        } } }
                    } }
                }
            }
        }
    };
    Ok(live_page(
        "Fleet",
        Some(&v),
        Live {
            events: Some("/api/events/".into()),
            poll_ms: Some(2000),
        },
        body,
    )
    .into_response())
}
