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
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("unsupported {what} schema version {version}")]
    Version { what: &'static str, version: u32 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub(crate) fn internal<E: std::error::Error + Send + Sync + 'static>(
    context: &'static str,
) -> impl FnOnce(E) -> Error {
    move |e| {
        saltant_telemetry::metrics::metrics()
            .nats_errors
            .get_or_create(&saltant_telemetry::metrics::OperationLabels { operation: context })
            .inc();
        Error::Internal(anyhow::Error::new(e).context(context))
    }
}
