//! Images of Docker tasks: present or pulled by the executor's policy, and remembered once
//! seen (`if-not-present`), so that a container costs no image inspection; an image removed
//! behind the executor's back is forgotten when a create reports it missing.

use super::{DockerConfig, Engine, PullPolicy};
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use std::time::Duration;

impl Engine {
    pub(super) fn known(&self, image: &str) -> bool {
        self.present
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(image)
    }

    pub(super) fn remember(&self, image: &str, present: bool) {
        let mut known = self.present.lock().unwrap_or_else(|p| p.into_inner());
        if present {
            known.insert(image.to_owned());
        } else {
            known.remove(image);
        }
    }
}

#[tracing::instrument(name = "ensure image", skip_all, fields(image = %image))]
pub(super) async fn ensure_image(
    engine: &Engine,
    config: &DockerConfig,
    image: &str,
) -> Result<(), String> {
    if config.pull == PullPolicy::IfNotPresent && engine.known(image) {
        return Ok(());
    }
    let present = engine.docker.inspect_image(image).await.is_ok();
    let result = pull_if_needed(engine, config, image, present).await;
    engine.remember(image, result.is_ok());
    result
}

async fn pull_if_needed(
    engine: &Engine,
    config: &DockerConfig,
    image: &str,
    present: bool,
) -> Result<(), String> {
    let pull = match config.pull {
        PullPolicy::Always => true,
        PullPolicy::IfNotPresent => !present,
        PullPolicy::Never => {
            if present {
                return Ok(());
            }
            return Err(format!(
                "image {image} is not present and the executor's pull policy is never"
            ));
        }
    };
    if !pull {
        return Ok(());
    }
    // An untagged reference means :latest (never every tag, as docker-py 3 did).
    let reference = if image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
        || image.contains('@')
    {
        image.to_owned()
    } else {
        format!("{image}:latest")
    };
    let options = CreateImageOptionsBuilder::default()
        .from_image(&reference)
        .build();
    let pulling = async {
        let mut progress = engine.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    };
    match tokio::time::timeout(Duration::from_secs(config.pull_timeout_secs), pulling).await {
        Ok(Ok(())) => Ok(()),
        // With if-not-present a failed pull of an image we have is not fatal.
        Ok(Err(e)) if present => {
            tracing::warn!(image, error = %e, "pull failed; using the local image");
            Ok(())
        }
        Ok(Err(e)) => Err(format!("pull {reference}: {e}")),
        Err(_) => Err(format!(
            "pull {reference}: not done within {} s",
            config.pull_timeout_secs
        )),
    }
}
