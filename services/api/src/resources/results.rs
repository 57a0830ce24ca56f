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
use futures::StreamExt as _;
use saltant_bus::ResultsManifest;
use saltant_bus::digest::{self, Digesting};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

/// The manifest of the instance's recorded outcome: the one whose digest the final event
/// of its current attempt named (docs/security.md, "Results are checked"). Files another
/// writer of the bucket stored (a late executor of an older attempt, or anyone with a
/// credential for the bucket) are not the instance's: a manifest that does not match is an
/// error, never served.
pub(crate) async fn manifest(s: &AppState, id: &str) -> ApiResult<Option<ResultsManifest>> {
    let uuid: uuid::Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let row = s.store.instance(uuid).await?.ok_or(ApiError::NotFound)?;
    if !row.state.is_final() {
        return Ok(None);
    }
    let recorded = s
        .store
        .results_digest(uuid, row.attempt, row.state, row.executor.as_deref())
        .await?
        .flatten();
    let Some(recorded) = recorded else {
        return Ok(None);
    };
    let attempt = u32::try_from(row.attempt).unwrap_or(1);
    let store = s
        .bus
        .results_store()
        .await
        .map_err(|e| ApiError::Unavailable(format!("results bucket: {e:#}")))?;
    let name = ResultsManifest::object_name(uuid, attempt);
    if recorded == UNVERIFIED {
        // Recorded before digests: as stored (the per-attempt name, then the older one).
        if let Some((m, _)) = read_manifest(&store, &name).await? {
            return Ok(Some(m));
        }
        let legacy = read_manifest(&store, &ResultsManifest::legacy_object_name(uuid)).await?;
        return Ok(legacy.map(|(m, _)| m).filter(|m| m.attempt == attempt));
    }
    // Gone: the bucket's age or size limit removed it.
    let Some((m, digest)) = read_manifest(&store, &name).await? else {
        return Ok(None);
    };
    if digest != recorded || m.uuid != uuid || m.attempt != attempt {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "the results manifest {name} ({digest}) is not the one attempt {attempt}'s final \
             event recorded ({recorded}): something other than its executor wrote it; not served"
        )));
    }
    Ok(Some(m))
}

/// What the history says of results recorded before digests existed (migration 0010).
const UNVERIFIED: &str = "unverified";

/// The manifest stored under `name` and the digest of its bytes.
async fn read_manifest(
    store: &async_nats::jetstream::object_store::ObjectStore,
    name: &str,
) -> ApiResult<Option<(ResultsManifest, String)>> {
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
    let m = ResultsManifest::decode(&bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("results manifest {name}: {e}")))?;
    Ok(Some((m, digest::digest(&bytes))))
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
    if object.info.size as u64 != file.size {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "{} holds {} bytes where its manifest recorded {}: altered; not served",
            file.object,
            object.info.size,
            file.size
        )));
    }
    let body = match &file.digest {
        // Checked as it streams; the last chunk is held back until the content checks out,
        // so a client never receives an altered file whole.
        Some(d) => Body::from_stream(held_back(ReaderStream::new(Digesting::expecting(
            object,
            d.clone(),
            file.size,
        )))),
        None => Body::from_stream(ReaderStream::new(object)),
    };
    let mut r = body.into_response();
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

/// `chunks` with each chunk passed on only once the next one (or the end) has been read:
/// an error at the end of input (a digest that does not match) then cuts the response
/// short of its `Content-Length`, which clients report as an incomplete transfer.
fn held_back<S>(chunks: S) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>>
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    futures::stream::unfold(Some((chunks, None::<bytes::Bytes>)), |state| async move {
        let (mut chunks, mut pending) = state?;
        loop {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    if let Some(ready) = pending.replace(chunk) {
                        return Some((Ok(ready), Some((chunks, pending))));
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a kept file does not match its manifest; download cut off");
                    return Some((Err(e), None));
                }
                None => return pending.map(|last| (Ok(last), None)),
            }
        }
    })
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
