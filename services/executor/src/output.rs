//! An instance's output: each chunk goes to its file in the logs folder and, live, to the
//! instance's logs subject (with its stream name, attempt and a sequence number shared by
//! stdout and stderr, so the order is kept). An attempt keeps at most
//! `output_max_bytes`: the rest is counted and dropped, and the end of its output (a
//! [`LogEnd`] after the last chunk) says how much, so truncation is recorded, not silent.

use crate::Shared;
use async_nats::jetstream::context::PublishAckFuture;
use saltant_bus::{LogChunk, LogEnd, LogStream, WIRE_VERSION};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
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
        let chunk = &chunk[..self.output.keep(self.stream, chunk.len())];
        if chunk.is_empty() {
            return;
        }
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
    queue: saltant_core::QueueName,
    seq: AtomicI64,
    pending: Mutex<Vec<(PublishAckFuture, LogChunk)>>,
    /// Chunks that could not be stored on the bus.
    lost: std::sync::Mutex<Vec<i64>>,
    /// Bytes offered so far (kept or not), and the most kept.
    offered: AtomicI64,
    limit: i64,
    /// Bytes dropped by the limit: stdout, stderr.
    dropped: [AtomicI64; 2],
    truncated: AtomicBool,
    /// The attempt's trace context, carried by every chunk.
    trace: Option<String>,
}

impl Output {
    pub fn new(shared: Arc<Shared>, d: &saltant_bus::Dispatch) -> Arc<Output> {
        Arc::new(Output {
            uuid: d.uuid,
            attempt: d.attempt,
            queue: d.queue.clone(),
            seq: AtomicI64::new(0),
            pending: Mutex::new(Vec::new()),
            lost: std::sync::Mutex::new(Vec::new()),
            truncated: AtomicBool::new(false),
            offered: AtomicI64::new(0),
            limit: i64::try_from(shared.config.output_max_bytes).unwrap_or(i64::MAX),
            dropped: [AtomicI64::new(0), AtomicI64::new(0)],
            trace: saltant_bus::trace::traceparent(),
            shared,
        })
    }

    /// How many of the next `len` bytes of `stream` are kept under the limit; the rest
    /// are counted as dropped.
    fn keep(&self, stream: LogStream, len: usize) -> usize {
        let len = len as i64;
        let before = self.offered.fetch_add(len, Ordering::Relaxed);
        let kept = (self.limit.saturating_sub(before)).clamp(0, len);
        let m = saltant_telemetry::metrics::metrics();
        let labels = saltant_telemetry::metrics::StreamLabels {
            stream: stream.as_str(),
        };
        m.log_bytes.get_or_create(&labels).inc_by(kept as u64);
        if kept < len {
            m.log_dropped_bytes
                .get_or_create(&labels)
                .inc_by((len - kept) as u64);
            self.dropped[stream as usize].fetch_add(len - kept, Ordering::Relaxed);
            if !self.truncated.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = self.limit,
                    "output limit reached; the rest is dropped"
                );
            }
        }
        kept as usize
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
        match self
            .shared
            .bus
            .publish_log_chunk(&self.queue, &chunk, self.trace.as_deref())
            .await
        {
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
                    self.lose(chunk.seq, &failure);
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
            failure = match self
                .shared
                .bus
                .publish_log_chunk(&self.queue, chunk, self.trace.as_deref())
                .await
            {
                Ok(ack) => match ack.await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
        }
        Err(failure)
    }

    fn lose(&self, seq: i64, why: &str) {
        self.lost_seqs().push(seq);
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
                self.lose(c.seq, "the logs stream refused it");
            }
        }
    }

    /// Waits until every chunk is stored (or known lost); lost chunks are logged and the
    /// instance is noted in `Shared::lost_output`.
    pub async fn finish(&self) {
        let acks = std::mem::take(&mut *self.pending.lock().await);
        self.await_acks(acks).await;
        let lost = self.lost_seqs().len();
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
        self.end().await;
    }

    fn lost_seqs(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the log-collector (and live tails) that the output is complete: how many
    /// chunks were sent and what the limit dropped. Retried like a chunk; if it is lost,
    /// tails end on their own once the attempt is over.
    async fn end(&self) {
        let end = LogEnd {
            v: WIRE_VERSION,
            uuid: self.uuid,
            attempt: self.attempt,
            chunks: self.seq.load(Ordering::SeqCst),
            dropped_stdout: self.dropped[LogStream::Stdout as usize].load(Ordering::Relaxed),
            dropped_stderr: self.dropped[LogStream::Stderr as usize].load(Ordering::Relaxed),
            lost: self.lost_seqs().clone(),
        };
        let mut delay = std::time::Duration::from_millis(50);
        for _ in 0..RETRIES {
            match self
                .shared
                .bus
                .publish_log_end(&self.queue, &end, self.trace.as_deref())
                .await
            {
                Ok(ack) => match ack.await {
                    Ok(_) => return,
                    Err(e) => tracing::debug!(error = %e, "end of output refused; retrying"),
                },
                Err(e) => tracing::debug!(error = %e, "publish end of output; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(1));
        }
        tracing::warn!("the end of the output could not be stored on the bus");
    }
}
