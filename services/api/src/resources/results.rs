//! Native endpoints (not in the original API): the files an instance's attempt left in its
//! logs and results folders, stored by the executor in the results bucket.
//! `GET /api/taskinstances/{uuid}/results/` lists them; `…/results/{name}` downloads one.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::io::{FilesUrl, PathUuid};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use saltant_bus::ResultsManifest;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// The manifest of the instance's recorded attempt: files a late executor stored for an
/// older attempt (it was cut off and its attempt retried) are not the instance's.
pub(crate) async fn manifest(s: &AppState, id: &str) -> ApiResult<Option<ResultsManifest>> {
    let uuid: uuid::Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let row = s.store.instance(uuid).await?.ok_or(ApiError::NotFound)?;
    let attempt = u32::try_from(row.attempt).unwrap_or(1);
    let store = s
        .bus
        .results_store()
        .await
        .map_err(|e| ApiError::Unavailable(format!("results bucket: {e:#}")))?;
    if let Some(m) = read_manifest(&store, &ResultsManifest::object_name(uuid, attempt)).await? {
        return Ok(Some(m));
    }
    let legacy = read_manifest(&store, &ResultsManifest::legacy_object_name(uuid)).await?;
    Ok(legacy.filter(|m| m.attempt == attempt))
}

async fn read_manifest(
    store: &async_nats::jetstream::object_store::ObjectStore,
    name: &str,
) -> ApiResult<Option<ResultsManifest>> {
    let mut object = match store.get(name).await {
        Ok(o) => o,
        Err(e) if e.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(ApiError::Unavailable(format!("read results manifest: {e}"))),
    };
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ApiError::Unavailable(format!("read results manifest: {e}")))?;
    ResultsManifest::decode(&bytes)
        .map(Some)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("results manifest {name}: {e}")))
}

pub async fn list(
    State(s): State<AppState>,
    _: Auth,
    PathUuid(id): PathUuid,
    FilesUrl(base): FilesUrl,
) -> ApiResult<Json<Value>> {
    let m = manifest(&s, &id).await?;
    let Some(m) = m else {
        return Ok(Json(json!({"uuid": id, "attempt": null, "files": []})));
    };
    let files: Vec<Value> = m
        .files
        .iter()
        .map(|f| json!({"name": f.name, "size": f.size, "url": format!("{base}/{}", f.name)}))
        .collect();
    Ok(Json(json!({
        "uuid": m.uuid,
        "attempt": m.attempt,
        "executor": m.executor,
        "files": files,
        "incomplete": m.incomplete,
    })))
}

pub async fn download(
    State(s): State<AppState>,
    _: Auth,
    Path(ResultFile { uuid: id, name }): Path<ResultFile>,
) -> ApiResult<Download> {
    let m = manifest(&s, &id).await?.ok_or(ApiError::NotFound)?;
    let file = m
        .files
        .iter()
        .find(|f| f.name == name)
        .ok_or(ApiError::NotFound)?;
    let store = s
        .bus
        .results_store()
        .await
        .map_err(|e| ApiError::Unavailable(format!("results bucket: {e:#}")))?;
    let object = store
        .get(&file.object)
        .await
        .map_err(|e| ApiError::Unavailable(format!("read {}: {e}", file.object)))?;
    let mut r = Body::from_stream(tokio_util::io::ReaderStream::new(object)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    let leaf = name
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .replace(['"', '\\'], "_");
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{leaf}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(Download(r))
}

/// `{uuid}` and `{name}` of a kept file.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct ResultFile {
    uuid: String,
    /// The file's path in the listing (`logs/…` or `results/…`).
    name: String,
}

/// A file's bytes, streamed.
pub struct Download(Response);

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        self.0
    }
}

impl aide::OperationOutput for Download {
    type Inner = Vec<u8>;

    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<aide::openapi::StatusCode>, aide::openapi::Response)> {
        Vec::<u8>::inferred_responses(ctx, op)
    }
}
