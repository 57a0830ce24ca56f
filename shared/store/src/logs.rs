//! Instance output persisted by the log-collector.

use crate::{Error, Store};
use futures::stream::BoxStream;
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
    /// Stores a batch of chunks and ends of output in one transaction; a message seen
    /// before (redelivery) is kept once.
    pub async fn insert_logs(&self, chunks: &[LogChunk], ends: &[LogEnd]) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        if !chunks.is_empty() {
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
            .execute(&mut *tx)
            .await?;
        }
        for e in ends {
            sqlx::query(
                "INSERT INTO task_instance_log_ends \
                 (instance_uuid, attempt, chunks, dropped_stdout, dropped_stderr, lost) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(e.uuid)
            .bind(e.attempt)
            .bind(e.chunks)
            .bind(e.dropped_stdout)
            .bind(e.dropped_stderr)
            .bind(&e.lost)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The recorded end of an attempt's output, if it came.
    pub async fn log_end(&self, uuid: Uuid, attempt: i32) -> Result<Option<LogEnd>, Error> {
        Ok(sqlx::query_as(
            "SELECT instance_uuid AS uuid, attempt, chunks, dropped_stdout, dropped_stderr, lost \
             FROM task_instance_log_ends WHERE instance_uuid = $1 AND attempt = $2",
        )
        .bind(uuid)
        .bind(attempt)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The ends of output of an instance's attempts.
    pub async fn log_ends(&self, uuid: Uuid) -> Result<Vec<LogEnd>, Error> {
        Ok(sqlx::query_as(
            "SELECT instance_uuid AS uuid, attempt, chunks, dropped_stdout, dropped_stderr, lost \
             FROM task_instance_log_ends WHERE instance_uuid = $1 ORDER BY attempt",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The last chunk of an attempt stored with every chunk before it, counting from
    /// `from` (known stored with all before it, or 0): `from - 1` if `from` is missing.
    /// Chunks can be stored out of order (a redelivery after a collector crash); a tail
    /// reads only this gap-free prefix, so its offsets never move. Chunks the end of
    /// output lists as lost count as present (they never will be).
    pub async fn contiguous_end(&self, uuid: Uuid, attempt: i32, from: i64) -> Result<i64, Error> {
        let end: Option<i64> = sqlx::query_scalar(
            "SELECT max(seq) FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS g \
             FROM (SELECT seq FROM task_instance_logs \
                   WHERE instance_uuid = $1 AND attempt = $2 AND seq >= $3 \
                   UNION SELECT s FROM task_instance_log_ends e, unnest(e.lost) s \
                   WHERE e.instance_uuid = $1 AND e.attempt = $2 AND s >= $3) x) t \
             WHERE g = $3 - 1",
        )
        .bind(uuid)
        .bind(attempt)
        .bind(from)
        .fetch_one(&self.pool)
        .await?;
        Ok(end.unwrap_or(from - 1))
    }

    /// Where byte `offset` of one stream lies among chunks up to `last_seq`: the last chunk
    /// ending at or before it and where that chunk ends (the start if none). A tail
    /// starting at `offset` reads on from there with [`Store::log_page`].
    pub async fn log_seek(
        &self,
        uuid: Uuid,
        attempt: i32,
        stream: &str,
        last_seq: i64,
        offset: i64,
    ) -> Result<Cursor, Error> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT seq, e FROM (SELECT seq, sum(octet_length(data)) OVER (ORDER BY seq)::bigint AS e \
             FROM task_instance_logs WHERE instance_uuid = $1 AND attempt = $2 AND stream = $3 \
             AND seq <= $4) c WHERE e <= $5 ORDER BY seq DESC LIMIT 1",
        )
        .bind(uuid)
        .bind(attempt)
        .bind(stream)
        .bind(last_seq)
        .bind(offset)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(Cursor::START, |(after, end)| Cursor { after, end }))
    }

    /// Deletes the stored output of the next `limit` instances (in the order they
    /// finished, after `after`) finished more than `age` ago. Returns how many instances
    /// were looked at and where the next call goes on (`None`: none was).
    pub async fn delete_expired_logs(
        &self,
        age: std::time::Duration,
        limit: i64,
        after: Option<FinishedCursor>,
    ) -> Result<(i64, Option<FinishedCursor>), Error> {
        let (n, at, uuid): (i64, Option<chrono::DateTime<chrono::Utc>>, Option<Uuid>) =
            sqlx::query_as(
                "WITH old AS (SELECT uuid, datetime_finished FROM task_instances \
                     WHERE datetime_finished < now() - make_interval(secs => $1) \
                     AND ($3::timestamptz IS NULL OR (datetime_finished, uuid) > ($3, $4)) \
                     ORDER BY datetime_finished, uuid LIMIT $2), \
                 gone AS (DELETE FROM task_instance_logs WHERE instance_uuid IN (SELECT uuid FROM old)), \
                 ends AS (DELETE FROM task_instance_log_ends WHERE instance_uuid IN (SELECT uuid FROM old)) \
                 SELECT count(*), max(datetime_finished), \
                        (array_agg(uuid ORDER BY datetime_finished DESC, uuid DESC))[1] FROM old",
            )
            .bind(age.as_secs_f64())
            .bind(limit)
            .bind(after.map(|c| c.finished))
            .bind(after.map(|c| c.uuid))
            .fetch_one(&self.pool)
            .await?;
        let next = at
            .zip(uuid)
            .map(|(finished, uuid)| FinishedCursor { finished, uuid });
        Ok((n, next.or(after)))
    }
}

/// Where a retention pass goes on: the last instance it looked at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinishedCursor {
    pub finished: chrono::DateTime<chrono::Utc>,
    pub uuid: Uuid,
}

/// The end of an attempt's output: chunks sent, bytes its output limit dropped.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LogEnd {
    pub uuid: Uuid,
    pub attempt: i32,
    pub chunks: i64,
    pub dropped_stdout: i64,
    pub dropped_stderr: i64,
    /// Chunks sent but never stored.
    pub lost: Vec<i64>,
}

impl LogEnd {
    /// Bytes of `stream` dropped.
    pub fn dropped(&self, stream: &str) -> i64 {
        if stream == "stderr" {
            self.dropped_stderr
        } else {
            self.dropped_stdout
        }
    }
}

/// One stored log file: the output of one stream of one attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogFile {
    pub attempt: i32,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Bytes stored.
    pub size: i64,
    /// When its last chunk was stored.
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// The extent of one log file at the time it was read: its length and last chunk, so that a
/// download answers exactly what `Content-Length` announced while the instance runs on.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct LogExtent {
    pub len: i64,
    pub last_seq: i64,
    /// When its last chunk was stored (`None`: the stream is empty).
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

impl Store {
    /// The log files of an instance, by attempt (stdout first), from one aggregate over
    /// the chunks' lengths (the data itself is not read).
    pub async fn log_files(&self, uuid: Uuid) -> Result<Vec<LogFile>, Error> {
        Ok(sqlx::query_as(
            "SELECT attempt, stream::text AS stream, sum(octet_length(data))::bigint AS size, \
             max(at) AS modified FROM task_instance_logs WHERE instance_uuid = $1 \
             GROUP BY attempt, stream ORDER BY attempt, stream DESC",
        )
        .bind(uuid)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The length and last chunk of one stream of an attempt; `None` when the attempt has
    /// no output stored on either stream.
    pub async fn log_extent(
        &self,
        uuid: Uuid,
        attempt: i32,
        stream: &str,
    ) -> Result<Option<LogExtent>, Error> {
        let row: (i64, i64, Option<chrono::DateTime<chrono::Utc>>, i64) = sqlx::query_as(
            "SELECT COALESCE(sum(octet_length(data)) FILTER (WHERE stream = $3), 0)::bigint, \
             COALESCE(max(seq) FILTER (WHERE stream = $3), -1), \
             max(at) FILTER (WHERE stream = $3), count(*) \
             FROM task_instance_logs WHERE instance_uuid = $1 AND attempt = $2",
        )
        .bind(uuid)
        .bind(attempt)
        .bind(stream)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.3 > 0).then_some(LogExtent {
            len: row.0,
            last_seq: row.1,
            modified: row.2,
        }))
    }

    /// The bytes `from..to` (end excluded) of one stream of an attempt, up to chunk
    /// `last_seq`, as the parts of the chunks that hold them, in order. Each chunk's offset
    /// is a running sum of the lengths before it, so only the chunks in the range are read
    /// (the first and last cut). Read in keyset pages of [`LOG_PAGE`] chunks, each its own
    /// short query: memory stays bounded and no connection waits on a slow reader.
    pub fn log_bytes(
        &self,
        uuid: Uuid,
        attempt: i32,
        stream: &str,
        last_seq: i64,
        range: std::ops::Range<i64>,
    ) -> BoxStream<'static, Result<Vec<u8>, Error>> {
        let store = self.clone();
        let stream = stream.to_owned();
        Box::pin(async_stream::try_stream! {
            // The last chunk read and where it ends: the next page sums on from there.
            let mut at = Cursor::START;
            loop {
                let page = store.log_page(uuid, attempt, &stream, last_seq, range.clone(), at).await?;
                let full = page.len() as i64 == LOG_PAGE;
                for (after, end, part) in page {
                    at = Cursor { after, end };
                    yield part;
                }
                if !full || at.end >= range.end {
                    break;
                }
            }
        })
    }
}

/// Where a read of one stream goes on: after chunk `after`, which ends at byte `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub after: i64,
    pub end: i64,
}

impl Cursor {
    /// Before the first chunk.
    pub const START: Cursor = Cursor {
        after: i64::MIN,
        end: 0,
    };
}

impl Store {
    /// The next page (at most [`LOG_PAGE`]) of chunks of one stream after `at`, up to chunk
    /// `last_seq`, cut to the bytes `range`: `(seq, where it ends, its part)`.
    pub async fn log_page(
        &self,
        uuid: Uuid,
        attempt: i32,
        stream: &str,
        last_seq: i64,
        range: std::ops::Range<i64>,
        at: Cursor,
    ) -> Result<Vec<(i64, i64, Vec<u8>)>, Error> {
        Ok(sqlx::query_as(PAGE_OF_CHUNKS)
            .bind(uuid)
            .bind(attempt)
            .bind(stream)
            .bind(last_seq)
            .bind(range.start)
            .bind(range.end)
            .bind(at.after)
            .bind(at.end)
            .bind(LOG_PAGE)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Chunks per page of a download (output chunks are at most 32 KiB: ≤ 1 MiB a page).
pub const LOG_PAGE: i64 = 32;

/// The next page of chunks overlapping `$5..$6` of a stream after chunk `$7` (which ends
/// at `$8`), cut to the range: `e` is where a chunk ends, `n` its length (`octet_length`
/// reads a stored value's header, not its data). The running sum is computed in `seq`
/// order as rows are read, so the `LIMIT` stops the scan.
const PAGE_OF_CHUNKS: &str = "\
    SELECT seq, e, substring(data FROM (greatest($5 - (e - n), 0) + 1)::int \
                             FOR (least(e, $6) - greatest(e - n, $5))::int) \
    FROM (SELECT seq, data, octet_length(data)::bigint AS n, \
                 ($8 + sum(octet_length(data)) OVER (ORDER BY seq))::bigint AS e \
          FROM task_instance_logs \
          WHERE instance_uuid = $1 AND attempt = $2 AND stream = $3 \
            AND seq > $7 AND seq <= $4 \
          ORDER BY seq) c \
    WHERE n > 0 AND e > $5 AND e - n < $6 \
    ORDER BY seq \
    LIMIT $9";
