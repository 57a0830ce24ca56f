//! Where the client finds its server and credentials, as saltant-cli does:
//! `SALTANT_API_URL` and `SALTANT_AUTH_TOKEN` over `$XDG_CONFIG_HOME/saltant-cli/config.yaml`
//! (`saltant-api-url`, `saltant-auth-token`); `saltant login` writes that file (mode 0600).

use crate::error::{Error, Result};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The file's keys. saltant-cli reads the first two; the refresh token (when `saltant
/// login` obtained a JWT) is ours and ignored by it.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    #[serde(rename = "saltant-api-url", default)]
    pub api_url: Option<String>,
    #[serde(rename = "saltant-auth-token", default)]
    pub auth_token: Option<String>,
    #[serde(
        rename = "saltant-refresh-token",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<String>,
}

/// What a command talks to.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API's base URL, ending in `/api` (no trailing slash).
    pub url: String,
    pub token: Option<String>,
    pub refresh_token: Option<String>,
    /// The file the credentials came from, rewritten when a JWT is refreshed.
    pub file: Option<PathBuf>,
}

/// `$XDG_CONFIG_HOME/saltant-cli/config.yaml`, `$HOME/.config/…` when unset.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("saltant-cli").join("config.yaml"))
}

/// Reads the file; a missing file is empty, an unreadable or malformed one an error.
pub fn read(path: &Path) -> Result<File> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(File::default()),
        Ok(text) => serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::Usage(format!("invalid configuration {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(Error::Usage(format!("read {}: {e}", path.display()))),
    }
}

/// Writes the file readable by its owner only (0600), its folder created (0700); other
/// keys of an existing file are kept. Written to a temporary file then renamed, so a
/// reader never sees half of it.
pub fn write(path: &Path, file: &File) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create {}", dir.display()))?;
    }
    let mut doc: serde_yaml_ng::Mapping = match std::fs::read_to_string(path) {
        Ok(t) => serde_yaml_ng::from_str(&t).unwrap_or_default(),
        Err(_) => serde_yaml_ng::Mapping::new(),
    };
    let ours = serde_yaml_ng::to_value(file).context("render configuration")?;
    if let serde_yaml_ng::Value::Mapping(m) = ours {
        for (k, v) in m {
            doc.insert(k, v);
        }
    }
    if file.refresh_token.is_none() {
        doc.remove("saltant-refresh-token");
    }
    let text = serde_yaml_ng::to_string(&doc).context("render configuration")?;
    let tmp = path.with_extension(format!("yaml.tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    // The mode applies only to a new file: a left-over one keeps its own.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("set the mode of {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replace {}", path.display()))?;
    Ok(())
}

/// The API base: `https://host/api/`, `https://host/api` and `https://host` all mean
/// `https://host/api`.
pub fn normalize_url(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| Error::Usage(format!("invalid server URL {raw:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Usage(format!(
            "invalid server URL {raw:?}: not http or https"
        )));
    }
    Ok(if trimmed.ends_with("/api") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/api")
    })
}

/// The layers: `--url` / the environment over the file.
pub fn load(url_flag: Option<&str>, path_flag: Option<&Path>) -> Result<Config> {
    let path = path_flag.map(Path::to_path_buf).or_else(default_path);
    let file = match &path {
        Some(p) => read(p)?,
        None => File::default(),
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let url = url_flag
        .map(str::to_owned)
        .or_else(|| env("SALTANT_API_URL"))
        .or(file.api_url.clone())
        .ok_or_else(|| {
            Error::Usage("no server configured: set SALTANT_API_URL or run `saltant login`".into())
        })?;
    let env_token = env("SALTANT_AUTH_TOKEN");
    let from_file = env_token.is_none();
    Ok(Config {
        url: normalize_url(&url)?,
        token: env_token
            .or(file.auth_token.clone())
            .map(|t| t.trim().to_owned()),
        refresh_token: if from_file { file.refresh_token } else { None },
        file: if from_file { path } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized_to_the_api_base() {
        for (raw, want) in [
            ("http://h:8000/api/", "http://h:8000/api"),
            ("http://h:8000/api", "http://h:8000/api"),
            ("http://h:8000", "http://h:8000/api"),
            ("https://h/x/api//", "https://h/x/api"),
        ] {
            assert_eq!(normalize_url(raw).expect(raw), want);
        }
        assert!(normalize_url("ftp://h").is_err());
        assert!(normalize_url("not a url").is_err());
    }

    #[test]
    fn file_is_written_0600_and_keeps_other_keys() {
        let dir = std::env::temp_dir().join(format!("saltant-cli-cfg-{}", std::process::id()));
        let path = dir.join("sub").join("config.yaml");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "other-key: 1\nsaltant-auth-token: old\n").expect("seed");
        let f = File {
            api_url: Some("http://h/api/".into()),
            auth_token: Some("t".into()),
            refresh_token: None,
        };
        write(&path, &f).expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).expect("read"), f);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(text.contains("other-key: 1"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
