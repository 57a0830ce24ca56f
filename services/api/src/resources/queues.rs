//! `/api/taskqueues/` and `/api/taskwhitelists/`: GET, POST, PUT, PATCH (no DELETE). Only
//! the owner or a superuser may change one; the owner stays the owner.

use super::inputs::{TaskQueueInput, TaskWhitelistInput};
use super::owned::{self, kept, owned_resource, read_named};
use crate::AppState;
use crate::body::Payload;
use crate::error::ApiResult;
use crate::fields::{Fields, invalid_pk};
use crate::repr::{QueueRepr, WhitelistRepr};
use crate::routes::Routes;
use saltant_core::QueueName;
use saltant_store::Store;
use saltant_store::queues::{
    IdTable, QUEUES, QueueFields, QueueRow, WHITELISTS, WhitelistFields, WhitelistRow,
};

/// Checks a list of related ids exists; records "Invalid pk" for the first missing one.
async fn check_ids(
    s: &AppState,
    f: &mut Fields<'_>,
    field: &str,
    table: IdTable,
    ids: &Option<Vec<i64>>,
) -> ApiResult<()> {
    if let Some(ids) = ids
        && let Some(missing) = s.store.missing_ids(table, ids).await?.first()
    {
        f.error(field, invalid_pk(*missing));
    }
    Ok(())
}

// ---- queues

async fn read_queue(
    s: &AppState,
    p: &Payload,
    partial: bool,
    existing: Option<&QueueRow>,
) -> ApiResult<QueueFields> {
    let mut f = Fields::new(p, partial);
    let (name, description) = read_named::<Queues>(s, &mut f, existing.map(|e| e.id), |n| {
        QueueName::parse(n).map(|_| ()).map_err(|e| e.to_string())
    })
    .await?;
    let private = f.boolean("private");
    let runs_exec = f.boolean("runs_executable_tasks");
    let runs_docker = f.boolean("runs_docker_container_tasks");
    let runs_sing = f.boolean("runs_singularity_container_tasks");
    let active = f.boolean("active");
    let whitelists = f.pk_list("whitelists");
    check_ids(s, &mut f, "whitelists", IdTable::Whitelists, &whitelists).await?;
    f.finish()?;
    let e = existing;
    Ok(QueueFields {
        name: kept(name, e, |e| e.name.clone()),
        description: kept(description, e, |e| e.description.clone()),
        private: private.or(e.map(|e| e.private)).unwrap_or(false),
        runs_executable_tasks: runs_exec
            .or(e.map(|e| e.runs_executable_tasks))
            .unwrap_or(true),
        runs_docker_container_tasks: runs_docker
            .or(e.map(|e| e.runs_docker_container_tasks))
            .unwrap_or(true),
        runs_singularity_container_tasks: runs_sing
            .or(e.map(|e| e.runs_singularity_container_tasks))
            .unwrap_or(true),
        active: active.or(e.map(|e| e.active)).unwrap_or(true),
        whitelists: kept(whitelists, e, |e| e.whitelists.clone()),
    })
}

// ---- whitelists

async fn read_whitelist(
    s: &AppState,
    p: &Payload,
    partial: bool,
    existing: Option<&WhitelistRow>,
) -> ApiResult<WhitelistFields> {
    let mut f = Fields::new(p, partial);
    let (name, description) =
        read_named::<Whitelists>(s, &mut f, existing.map(|e| e.id), |_| Ok(())).await?;
    let ct = f.pk_list("whitelisted_container_task_types");
    let et = f.pk_list("whitelisted_executable_task_types");
    check_ids(
        s,
        &mut f,
        "whitelisted_container_task_types",
        IdTable::ContainerTypes,
        &ct,
    )
    .await?;
    check_ids(
        s,
        &mut f,
        "whitelisted_executable_task_types",
        IdTable::ExecutableTypes,
        &et,
    )
    .await?;
    f.finish()?;
    let e = existing;
    Ok(WhitelistFields {
        name: kept(name, e, |e| e.name.clone()),
        description: kept(description, e, |e| e.description.clone()),
        container_types: kept(ct, e, |e| e.whitelisted_container_task_types.clone()),
        executable_types: kept(et, e, |e| e.whitelisted_executable_task_types.clone()),
    })
}

pub(crate) struct Queues;
pub(crate) struct Whitelists;

owned_resource!(Queues {
    table: &QUEUES,
    path: "/api/taskqueues",
    verbose: "task queue",
    patch: true,
    row: QueueRow,
    fields: QueueFields,
    repr: QueueRepr,
    input: TaskQueueInput,
    owner: |r: &QueueRow| Some(r.user_id),
    save: Store::save_queue,
    read: read_queue,
});

owned_resource!(Whitelists {
    table: &WHITELISTS,
    path: "/api/taskwhitelists",
    verbose: "task whitelist",
    patch: true,
    row: WhitelistRow,
    fields: WhitelistFields,
    repr: WhitelistRepr,
    input: TaskWhitelistInput,
    owner: |r: &WhitelistRow| Some(r.user_id),
    save: Store::save_whitelist,
    read: read_whitelist,
});

pub(crate) fn routes(r: Routes) -> Routes {
    owned::routes::<Whitelists>(owned::routes::<Queues>(r))
}
