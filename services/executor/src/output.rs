//! An instance's output: each chunk goes to its file in the logs folder and, live, to the
//! instance's logs subject (with its stream name, attempt and a sequence number shared by
//! stdout and stderr, so the order is kept).

use crate::Shared;
use async_nats::jetstream::context::PublishAckFuture;
use saltant_bus::{LogChunk, LogStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use uuid::Uuid;

const CHUNK: usize = 32 * 1024;
/// Acks awaited together once this many are outstanding.
const ACK_WINDOW: usize = 128;
/// Tries to publish a refused chunk again before it counts as lost.
const RETRIES: usize = 8;

/// One output stream of an instance.
pub(crate) struct Sink {
    output: Arc<Output>,
    stream: LogStream,
    file: Option<tokio::fs::File>,
}

impl Sink {
    pub async fn write(&mut self, chunk: &[u8]) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.write_all(chunk).await
        {
            tracing::warn!(error = %e, "write output file");
            self.file = None;
        }
        // Large chunks (containers' frames can be big) go out in bus-sized pieces.
        for piece in chunk.chunks(CHUNK) {
            self.output.publish(self.stream, piece).await;
        }
    }

    /// Copies `reader` here until end of stream.
    pub async fn pump(mut self, mut reader: impl AsyncRead + Unpin) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "read {}", self.stream.as_str());
                    break;
                }
            };
            self.write(&buf[..n]).await;
        }
        self.close().await;
    }

    pub async fn close(self) {
        if let Some(mut f) = self.file {
            let _ = f.flush().await;
        }
    }
}

pub(crate) struct Output {
    shared: Arc<Shared>,
    uuid: Uuid,
    attempt: u32,
    seq: AtomicI64,
    pending: Mutex<Vec<(PublishAckFuture, LogChunk)>>,
    failures: AtomicI64,
}

impl Output {
    pub fn new(shared: Arc<Shared>, uuid: Uuid, attempt: u32) -> Arc<Output> {
        Arc::new(Output {
            shared,
            uuid,
            attempt,
            seq: AtomicI64::new(0),
            pending: Mutex::new(Vec::new()),
            failures: AtomicI64::new(0),
        })
    }

    /// Where one stream's chunks go: its file (created here) and the bus.
    pub async fn sink(self: &Arc<Self>, stream: LogStream, file: PathBuf) -> Sink {
        let out = match tokio::fs::File::create(&file).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, path = %file.display(), "create output file");
                None
            }
        };
        self.sink_to(stream, out)
    }

    /// Where one stream's chunks go: `file`, already open, and the bus.
    pub fn sink_to(self: &Arc<Self>, stream: LogStream, file: Option<tokio::fs::File>) -> Sink {
        Sink {
            output: self.clone(),
            stream,
            file,
        }
    }

    async fn publish(&self, stream: LogStream, chunk: &[u8]) {
        let chunk = LogChunk {
            uuid: self.uuid,
            attempt: self.attempt,
            seq: self.seq.fetch_add(1, Ordering::SeqCst),
            stream,
            data: bytes::Bytes::copy_from_slice(chunk),
        };
        match self.shared.bus.publish_log_chunk(&chunk).await {
            // Its ack is awaited later, in a window with the others.
            Ok(ack) => {
                let full = {
                    let mut p = self.pending.lock().await;
                    p.push((ack, chunk));
                    (p.len() >= ACK_WINDOW).then(|| std::mem::take(&mut *p))
                };
                if let Some(acks) = full {
                    self.await_acks(acks).await;
                }
            }
            Err(_) => {
                if let Err(failure) = self.republish(&chunk).await {
                    self.lose(&failure);
                }
            }
        }
    }

    /// Publishes a chunk the stream refused again: a full logs stream (the log-collector
    /// lags) refuses new chunks, so each try comes after a back-off and waits for its own
    /// ack. The last error if every try failed.
    async fn republish(&self, chunk: &LogChunk) -> Result<(), String> {
        let mut delay = std::time::Duration::from_millis(50);
        let mut failure = String::new();
        for _ in 0..RETRIES {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(1));
            failure = match self.shared.bus.publish_log_chunk(chunk).await {
                Ok(ack) => match ack.await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
        }
        Err(failure)
    }

    fn lose(&self, why: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            error = why,
            "output chunk not stored on the bus (kept in the logs folder)"
        );
    }

    /// Waits for a window of acks; chunks the stream refused are published again (with
    /// back-off) before they count as lost.
    async fn await_acks(&self, acks: Vec<(PublishAckFuture, LogChunk)>) {
        let mut refused = Vec::new();
        let results = futures::future::join_all(
            acks.into_iter()
                .map(|(a, c)| async move { (a.into_future().await, c) }),
        )
        .await;
        for (r, c) in results {
            if r.is_err() {
                refused.push(c);
            }
        }
        for c in refused {
            if self.republish(&c).await.is_err() {
                self.lose("the logs stream refused it");
            }
        }
    }

    /// Waits until every chunk is stored (or known lost); lost chunks are logged and the
    /// instance is noted in `Shared::lost_output`.
    pub async fn finish(&self) {
        let acks = std::mem::take(&mut *self.pending.lock().await);
        self.await_acks(acks).await;
        let lost = self.failures.load(Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                lost,
                "output chunks could not be stored on the bus (kept in the logs folder)"
            );
            self.shared
                .lost_output
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(self.uuid);
        }
    }
}
