//! What Docker and Singularity tasks share before their engines take over: the image the
//! type names, the environment without the executor's `PATH` (the image keeps its own),
//! an argv without a shell and without variable expansion (the container's environment is
//! not the executor's), and the instance's logs and results folders with where the type
//! mounts them.

use super::{Outcome, PathFrom, Task};
use saltant_core::command::{ArgumentPassing, argument_passing, split_command};
use std::path::PathBuf;

/// A container task, ready for its engine.
pub(super) struct Container<'a> {
    /// The type's `container_image`.
    pub image: &'a str,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    /// Host folder → path inside the container, for the folders the type mounts.
    pub mounts: Vec<(PathBuf, String)>,
}

impl<'a> Container<'a> {
    /// Checks the task and makes its folders; what is wrong fails the attempt.
    pub async fn prepare(task: &Task<'a>) -> Result<Container<'a>, Outcome> {
        let spec = &task.dispatch.spec;
        let Some(image) = spec.container_image.as_deref().filter(|i| !i.is_empty()) else {
            return Err(Outcome::failed("the task type has no container image"));
        };
        let env = task.environment(PathFrom::Image)?;
        let argv = argv(&spec.command_to_run, &spec.arguments).map_err(Outcome::failed)?;
        let mut mounts = Vec::new();
        for (host, inside) in [
            (task.logs_dir(), spec.logs_mount()),
            (task.results_dir(), spec.results_mount()),
        ] {
            if let Err(e) = tokio::fs::create_dir_all(&host).await {
                return Err(Outcome::failed(format!("create {}: {e}", host.display())));
            }
            if let Some(inside) = inside {
                mounts.push((host, inside.to_owned()));
            }
        }
        Ok(Container {
            image,
            env,
            argv,
            mounts,
        })
    }
}

/// The container's argv: the command split shell-style (no variable expansion: the
/// container's environment is not the executor's) plus the arguments as one JSON element.
fn argv(
    command: &str,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<String>, String> {
    let mut argv = split_command(command).map_err(|e| e.to_string())?;
    if let ArgumentPassing::Positional(json) = argument_passing(arguments, None) {
        argv.push(json);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argv_is_split_without_a_shell_and_arguments_are_one_element() {
        let args = json!({"word": "it's $(rm -rf /)", "n": 2});
        let split = argv("/bin/echo 'a b' c", args.as_object().expect("object")).expect("argv");
        assert_eq!(
            split,
            vec![
                "/bin/echo",
                "a b",
                "c",
                r#"{"word": "it's $(rm -rf /)", "n": 2}"#
            ]
        );
        let none = argv("true", &serde_json::Map::new()).expect("argv");
        assert_eq!(none, vec!["true"]);
        assert!(argv("echo 'unclosed", &serde_json::Map::new()).is_err());
    }
}
