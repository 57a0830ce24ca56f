//! One module per command group; `dispatch` runs a parsed command and returns the exit
//! status, and the helpers shared by commands: `k=v` pairs and JSON/TOML input files.

pub mod events;
pub mod instances;
pub mod login;
pub mod resources;
pub mod run;

use crate::client::Client;
use crate::error::{Error, Result, code};
use crate::{Command, Conn, config};
use serde_json::{Map, Value};
use std::path::Path;

pub async fn dispatch(command: Command) -> Result<u8> {
    let connect = |conn: &Conn| -> Result<Client> {
        Client::new(config::load(
            conn.url.as_deref(),
            conn.config_path.as_deref(),
        )?)
    };
    match command {
        Command::Login { conn, args } => login::login(args, &conn).await,
        Command::Run { conn, args } => run::run(&connect(&conn)?, args).await,
        Command::Instances { conn, command } => {
            instances::instances(&connect(&conn)?, command).await
        }
        Command::Types { conn, command } => resources::types(&connect(&conn)?, command)
            .await
            .map(|()| code::OK),
        Command::Queues { conn, command } => resources::queues(&connect(&conn)?, command)
            .await
            .map(|()| code::OK),
        Command::Whitelists { conn, command } => resources::whitelists(&connect(&conn)?, command)
            .await
            .map(|()| code::OK),
        Command::Events { conn, args } => events::events(&connect(&conn)?, args)
            .await
            .map(|()| code::OK),
        Command::Completions { .. } => Ok(code::OK),
    }
}

/// `key=value` (a string) or `key:=json` (any JSON value), as httpie writes them.
pub fn pair(raw: &str) -> Result<(String, Value)> {
    let (eq, json) = match (raw.find(":="), raw.find('=')) {
        (Some(c), Some(e)) if c < e => (c, true),
        (_, Some(e)) => (e, false),
        _ => {
            return Err(Error::Usage(format!(
                "{raw:?} is not key=value or key:=json"
            )));
        }
    };
    let key = raw[..eq].to_owned();
    if key.is_empty() {
        return Err(Error::Usage(format!("{raw:?} has no key")));
    }
    let value = if json {
        let text = &raw[eq + 2..];
        serde_json::from_str(text)
            .map_err(|e| Error::Usage(format!("{key}: {text:?} is not JSON: {e}")))?
    } else {
        Value::String(raw[eq + 1..].to_owned())
    };
    Ok((key, value))
}

/// A JSON or TOML file holding one object (TOML for `.toml`, JSON for anything else,
/// TOML tried when JSON does not parse).
pub fn object_file(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("read {}: {e}", path.display())))?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let parsed: Result<Value, String> = if is_toml {
        toml::from_str::<Value>(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str::<Value>(&text)
            .or_else(|je| toml::from_str::<Value>(&text).map_err(|_| je.to_string()))
    };
    match parsed {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Error::Usage(format!(
            "{}: expected an object (a table)",
            path.display()
        ))),
        Err(e) => Err(Error::Usage(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_are_strings_or_json() {
        assert_eq!(pair("a=b").expect("a"), ("a".into(), json!("b")));
        assert_eq!(pair("n:=5").expect("n"), ("n".into(), json!(5)));
        assert_eq!(
            pair("u=http://x?a=b").expect("u"),
            ("u".into(), json!("http://x?a=b"))
        );
        assert_eq!(pair("s=a:=b").expect("s"), ("s".into(), json!("a:=b")));
        assert_eq!(
            pair("l:=[1,\"x\"]").expect("l"),
            ("l".into(), json!([1, "x"]))
        );
        assert!(pair("novalue").is_err());
        assert!(pair("=v").is_err());
        assert!(pair("n:=nope").is_err());
    }
}
