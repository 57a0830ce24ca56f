//! `saltant login`: a username and password become a JWT pair (`POST /api/token/`), or an
//! API token is checked and kept; either is written to config.yaml (mode 0600).

use crate::client::{Client, error_of};
use crate::config::{self, Config};
use crate::error::{Error, Result, code};
use crate::output::{self, Format};
use crate::{Conn, Out};
use clap::Args;
use serde_json::json;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The user (asked on a terminal when missing).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "token_stdin")]
    pub password_stdin: bool,
    /// Read an API token (from `saltant admin create-token`) from standard input instead.
    #[arg(long)]
    pub token_stdin: bool,
    #[command(flatten)]
    pub out: Out,
}

fn ask(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "{} is needed: give it as an option (standard input is not a terminal)",
            prompt.trim_end_matches(": ")
        )));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("read {prompt}: {e}"))?;
    Ok(line.trim().to_owned())
}

fn stdin_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("read the {what}: {e}"))?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        return Err(Error::Usage(format!("no {what} on standard input")));
    }
    Ok(line)
}

pub async fn login(a: LoginArgs, conn: &Conn) -> Result<u8> {
    let path = conn
        .config_path
        .clone()
        .or_else(config::default_path)
        .ok_or_else(|| Error::Usage("no HOME or XDG_CONFIG_HOME for config.yaml".into()))?;
    let existing = config::read(&path)?;
    let raw_url = match conn.url.clone().or(existing.api_url.clone()) {
        Some(u) => u,
        None => ask("API URL (e.g. https://host/api/): ")?,
    };
    let url = config::normalize_url(&raw_url)?;
    let client = Client::new(Config {
        url: url.clone(),
        token: None,
        refresh_token: None,
        file: None,
    })?;
    let (token, refresh, username) = if a.token_stdin {
        let token = stdin_line("token")?.trim().to_owned();
        (token, None, a.username.clone())
    } else {
        let username = match a.username.clone() {
            Some(u) => u,
            None => ask("Username: ")?,
        };
        let password = if a.password_stdin {
            stdin_line("password")?
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password("Password: ")
                .map_err(|e| anyhow::anyhow!("read the password: {e}"))?
        } else {
            return Err(Error::Usage(
                "standard input is not a terminal: use --password-stdin or --token-stdin".into(),
            ));
        };
        let body = json!({"username": username, "password": password});
        let pair = match client
            .json(reqwest::Method::POST, "token/", Some(&body))
            .await
        {
            Err(Error::Auth(d)) => return Err(Error::Auth(d)),
            other => other?,
        };
        let access = pair["access"].as_str().unwrap_or_default().to_owned();
        let refresh = pair["refresh"].as_str().map(str::to_owned);
        (access, refresh, Some(username))
    };
    // Check the credentials before saving them.
    let checked = Client::new(Config {
        url: url.clone(),
        token: Some(token.clone()),
        refresh_token: None,
        file: None,
    })?;
    if let Err(e) = checked.get("users/?page_size=1").await {
        return Err(match e {
            Error::Auth(d) => Error::Auth(d),
            Error::NotFound(_) => error_of(reqwest::StatusCode::NOT_FOUND, &json!({}), &url),
            other => other,
        });
    }
    let file = config::File {
        api_url: Some(format!("{url}/")),
        auth_token: Some(token),
        refresh_token: refresh,
    };
    config::write(&path, &file)?;
    let summary = json!({
        "url": format!("{url}/"),
        "username": username,
        "config": path.display().to_string(),
    });
    match a.out.format {
        Format::Json => output::json(&summary),
        Format::Table => eprintln!(
            "logged in to {url}/{}; saved in {}",
            username.map(|u| format!(" as {u}")).unwrap_or_default(),
            path.display()
        ),
    }
    Ok(code::OK)
}
