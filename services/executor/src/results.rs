//! After an attempt, the files of its logs and results folders go to the results bucket
//! (one object per file, `<uuid>/<attempt>/<logs|results>/<path>`) with a manifest
//! (`<uuid>/<attempt>/manifest`) that the api lists and serves. Uploads finish before the final
//! event, so a finished instance's files are there when a client sees it finished. An
//! attempt's final event carries the manifest's digest and the manifest each file's, so
//! that what another writer of the bucket put there is never served. An
//! attempt that left no files (besides the executor's own stdout/stderr captures, which the
//! log-collector keeps) stores nothing: no cost on the hot path of plain executables. The
//! captures are stored too when some of the output could not be stored on the bus.

use crate::Shared;
use async_nats::jetstream::object_store::ObjectStore;
use saltant_bus::digest::{self, Digesting};
use saltant_bus::{Dispatch, ResultFile, ResultsManifest, WIRE_VERSION};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Regular files under `root`, recursively, with their paths relative to it (symbolic
/// links are not followed: a task cannot make the executor read outside its folders).
fn files_under(root: &Path) -> Vec<(String, PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file()
                && let Ok(rel) = entry.path().strip_prefix(root)
            {
                out.push((rel.to_string_lossy().into_owned(), entry.path(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// Uploads the attempt's files and its manifest; returns the manifest's digest, which the
/// final event carries (the api serves files only under the manifest it names). Problems
/// are logged and recorded in the manifest (`incomplete`); they never change the
/// instance's outcome.
#[tracing::instrument(name = "upload results", skip_all)]
pub(crate) async fn upload(shared: &Arc<Shared>, d: &Dispatch) -> Option<String> {
    let listed = list(shared, d).await;
    if listed.is_empty() {
        return None;
    }
    let store = match shared.bus.results_store().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "open results bucket: files stay on this machine");
            return None;
        }
    };
    let (files, incomplete) = store_files(shared, &store, d, listed).await;
    let manifest = ResultsManifest {
        v: WIRE_VERSION,
        uuid: d.uuid,
        attempt: d.attempt,
        executor: shared.id.clone(),
        files,
        incomplete,
    };
    let bytes = manifest.encode();
    match store
        .put(
            ResultsManifest::object_name(d.uuid, d.attempt).as_str(),
            &mut bytes.as_ref(),
        )
        .await
    {
        Ok(_) => Some(digest::digest(&bytes)),
        Err(e) => {
            tracing::warn!(error = %e, "store results manifest");
            None
        }
    }
}

/// The files of the attempt's logs and results folders: (name in the manifest, path,
/// size), without the executor's own stdout/stderr captures unless output was lost.
async fn list(shared: &Shared, d: &Dispatch) -> Vec<(String, PathBuf, u64)> {
    let uuid = d.uuid.to_string();
    let roots = [
        ("logs", shared.config.logs_dir.join(&uuid)),
        ("results", shared.config.results_dir.join(&uuid)),
    ];
    let listed = tokio::task::spawn_blocking(move || {
        roots
            .iter()
            .flat_map(|(kind, root)| {
                files_under(root)
                    .into_iter()
                    .map(move |(rel, path, size)| (format!("{kind}/{rel}"), path, size))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    // The executor's own output files are kept by the log-collector (and served as logs),
    // unless some of the output could not be stored on the bus: then they are stored here.
    let lost = (shared.lost_output.lock())
        .unwrap_or_else(|p| p.into_inner())
        .remove(&d.uuid);
    let own = [
        format!("logs/{uuid}-stdout.txt"),
        format!("logs/{uuid}-stderr.txt"),
    ];
    listed
        .into_iter()
        .filter(|(name, _, _)| lost || !own.contains(name))
        .collect()
}

/// Stores `listed` in order until `results_max_bytes`; returns what was stored and, if
/// not everything was, why.
async fn store_files(
    shared: &Shared,
    store: &ObjectStore,
    d: &Dispatch,
    listed: Vec<(String, PathBuf, u64)>,
) -> (Vec<ResultFile>, Option<String>) {
    let limit = shared.config.results_max_bytes;
    let mut total = 0u64;
    let mut files = Vec::with_capacity(listed.len());
    let mut incomplete = None;
    for (name, path, size) in listed {
        if total + size > limit {
            incomplete = Some(format!(
                "files beyond {limit} bytes were not stored (executor results_max_bytes); they remain in {} on {}",
                path.parent().unwrap_or(&path).display(),
                shared.id
            ));
            break;
        }
        let object = format!("{}/{}/{name}", d.uuid, d.attempt);
        let stored = async {
            let mut file = Digesting::new(tokio::fs::File::open(&path).await?);
            let info = store.put(object.as_str(), &mut file).await?;
            Ok::<_, anyhow::Error>((info.size as u64, file.digest()))
        };
        match stored.await {
            Ok((size, digest)) => {
                total += size;
                files.push(ResultFile {
                    name,
                    size,
                    object,
                    digest: Some(digest),
                });
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %format!("{e:#}"), "store result file");
                incomplete = Some(format!("{name} could not be stored: {e:#}"));
            }
        }
    }
    (files, incomplete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_listed_recursively_without_following_links() {
        let dir = std::env::temp_dir().join(format!("saltant-results-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("a.txt"), b"abc").expect("write");
        std::fs::write(dir.join("sub").join("b.bin"), b"12345").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).expect("symlink");
        let files: Vec<(String, u64)> = files_under(&dir)
            .into_iter()
            .map(|(rel, _, size)| (rel, size))
            .collect();
        assert_eq!(files, vec![("a.txt".into(), 3), ("sub/b.bin".into(), 5)]);
        assert!(files_under(&dir.join("missing")).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
