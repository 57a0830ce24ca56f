//! Instance output persisted by the log-collector.

use crate::{Error, Store};
use uuid::Uuid;

/// One chunk of output.
#[derive(Debug, Clone)]
pub struct LogChunk {
    pub uuid: Uuid,
    pub attempt: i32,
    pub seq: i64,
    pub stream: &'static str,
    pub data: Vec<u8>,
}

impl Store {
    /// Stores a batch of chunks in one statement; a chunk seen before (redelivery) is kept
    /// once.
    pub async fn insert_log_chunks(&self, chunks: &[LogChunk]) -> Result<(), Error> {
        if chunks.is_empty() {
            return Ok(());
        }
        let uuids: Vec<Uuid> = chunks.iter().map(|c| c.uuid).collect();
        let attempts: Vec<i32> = chunks.iter().map(|c| c.attempt).collect();
        let seqs: Vec<i64> = chunks.iter().map(|c| c.seq).collect();
        let streams: Vec<&str> = chunks.iter().map(|c| c.stream).collect();
        let data: Vec<&[u8]> = chunks.iter().map(|c| c.data.as_slice()).collect();
        sqlx::query(
            "INSERT INTO task_instance_logs (instance_uuid, attempt, seq, stream, data) \
             SELECT * FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::text[], $5::bytea[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&uuids)
        .bind(&attempts)
        .bind(&seqs)
        .bind(&streams)
        .bind(&data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The stored output of an instance's latest attempt, per stream, in order.
    pub async fn instance_output(&self, uuid: Uuid, stream: &str) -> Result<Vec<u8>, Error> {
        let parts: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT data FROM task_instance_logs WHERE instance_uuid = $1 AND stream = $2 \
             AND attempt = (SELECT max(attempt) FROM task_instance_logs WHERE instance_uuid = $1) \
             ORDER BY seq",
        )
        .bind(uuid)
        .bind(stream)
        .fetch_all(&self.pool)
        .await?;
        Ok(parts.concat())
    }
}
