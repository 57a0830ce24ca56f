//! The bus crate's error type.

/// A failure talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect to nats at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported {what} schema version {version}")]
    Version { what: &'static str, version: u32 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// Whether trying the same operation again may succeed (NATS down or slow), as opposed
    /// to a message that will never decode.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Internal(_))
    }
}

pub(crate) fn internal<E: std::error::Error + Send + Sync + 'static>(
    context: &'static str,
) -> impl FnOnce(E) -> Error {
    move |e| Error::Internal(anyhow::Error::new(e).context(context))
}
