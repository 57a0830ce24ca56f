//! Building a task's argv: `$VAR` expansion against the executor's environment, shell-style
//! splitting without a shell, and the arguments JSON as one argv element or a file option.

use crate::arguments::python_json;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command_to_run cannot be split: {0}")]
    Split(String),
    #[error("command_to_run is empty")]
    Empty,
}

/// Expands `$NAME` and `${NAME}` as Python's `os.path.expandvars` does: names are ASCII
/// letters, digits and `_`; unknown variables are left as they are.
pub fn expand_vars(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if end > 0 => (&braced[..end], end + 2),
                _ => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        match (consumed, lookup(name)) {
            (n, Some(value)) if n > 0 && !name.is_empty() => {
                out.push_str(&value);
                rest = &after[n..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a command string with POSIX shell quoting rules; no shell ever runs it, so `|`,
/// `&&` and `;` are plain characters.
pub fn split_command(command: &str) -> Result<Vec<String>, CommandError> {
    let argv = shell_words::split(command).map_err(|e| CommandError::Split(e.to_string()))?;
    if argv.is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(argv)
}

/// How the arguments reach the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentPassing {
    /// Nothing appended (empty arguments).
    None,
    /// One argv element holding the JSON.
    Positional(String),
    /// `<option> <path>`: the caller writes `contents` to `path` first and removes it after.
    File { option: String, contents: String },
}

/// Decides how arguments are passed, as the original worker does: nothing for an empty
/// object; with a `json_file_option`, the JSON (plus a newline) in a file; else one element.
pub fn argument_passing(
    arguments: &Map<String, Value>,
    json_file_option: Option<&str>,
) -> ArgumentPassing {
    if arguments.is_empty() {
        return ArgumentPassing::None;
    }
    let json = python_json(&Value::Object(arguments.clone()));
    match json_file_option.filter(|o| !o.is_empty()) {
        Some(option) => ArgumentPassing::File {
            option: option.to_owned(),
            contents: json + "\n",
        },
        None => ArgumentPassing::Positional(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "X" => Some("1".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_like_python_expandvars() {
        let table = [
            ("echo $HOME", "echo /home/me"),
            ("echo ${HOME}/x", "echo /home/me/x"),
            ("$X$X", "11"),
            ("echo $NOPE ${NOPE}", "echo $NOPE ${NOPE}"),
            ("cost $", "cost $"),
            ("a ${ b", "a ${ b"),
            ("${}", "${}"),
            ("$HOMEX", "$HOMEX"),
            ("$HOME-x", "/home/me-x"),
        ];
        for (input, expected) in table {
            assert_eq!(expand_vars(input, env), expected, "{input}");
        }
    }

    #[test]
    fn splits_without_a_shell() {
        assert_eq!(
            split_command("echo 'a b' \"c d\" | wc && rm -rf /").expect("splits"),
            vec!["echo", "a b", "c d", "|", "wc", "&&", "rm", "-rf", "/"]
        );
        assert_eq!(split_command("  "), Err(CommandError::Empty));
        assert!(matches!(
            split_command("echo 'open"),
            Err(CommandError::Split(_))
        ));
    }

    #[test]
    fn arguments_become_one_element_or_a_file() {
        let args = json!({"a": "it's", "b": 2})
            .as_object()
            .expect("object")
            .clone();
        assert_eq!(
            argument_passing(&args, None),
            ArgumentPassing::Positional(r#"{"a": "it's", "b": 2}"#.into())
        );
        assert_eq!(
            argument_passing(&args, Some("--json-file")),
            ArgumentPassing::File {
                option: "--json-file".into(),
                contents: "{\"a\": \"it's\", \"b\": 2}\n".into()
            }
        );
        assert_eq!(
            argument_passing(&Map::new(), Some("--json-file")),
            ArgumentPassing::None
        );
        assert_eq!(argument_passing(&Map::new(), None), ArgumentPassing::None);
    }
}
