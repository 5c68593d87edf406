//! Named cursors over the global log, kept in the `checkpoints` table.

use crate::{CommitOutcome, Cursor, DocumentCommit, JournalError};
use deadpool_postgres::GenericClient;
use serde_json::Value;

/// The projector's checkpoint name.
pub const PROJECTOR: &str = "projector";

/// Advisory lock key serializing projector writes (documents and checkpoint) across processes
/// on PostgreSQL.
pub const PROJECTOR_LOCK: i64 = 7_461_002;

/// The relay's checkpoint name for a JetStream stream.
pub fn relay(stream: &str) -> String {
    format!("relay:{stream}")
}

/// The cursor saved under `name` (the start of the log when none is saved).
///
/// # Errors
/// [`JournalError::Postgres`].
pub async fn load<C: GenericClient>(client: &C, name: &str) -> Result<Cursor, JournalError> {
    let row = client
        .query_opt(
            "SELECT tx_id::text, position FROM checkpoints WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row
        .map(|r| Cursor {
            tx_id: r.get::<_, String>(0).parse().unwrap_or_default(),
            position: r.get(1),
        })
        .unwrap_or_default())
}

/// Saves `cursor` under `name`; call it in the same transaction as the work it covers.
///
/// # Errors
/// [`JournalError::Postgres`].
pub async fn save<C: GenericClient>(
    client: &C,
    name: &str,
    cursor: Cursor,
) -> Result<(), JournalError> {
    client
        .execute(
            "INSERT INTO checkpoints (name, tx_id, position) VALUES ($1, $2::text::xid8, $3)
             ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position,
                                              updated_at = clock_timestamp()",
            &[&name, &cursor.tx_id.to_string(), &cursor.position],
        )
        .await?;
    Ok(())
}

/// The compare-and-set of [`compare_and_set`]: the stored checkpoint (the start of the log
/// when none is stored) is compared with `$2`/`$3`; when equal, the documents (`$6`–`$8`, at
/// position `$9`) are upserted and the checkpoint set to `$4`/`$5`. It answers whether it
/// wrote and the checkpoint it found.
const COMPARE_AND_SET: &str = "
WITH stored AS (
  SELECT coalesce((SELECT tx_id FROM checkpoints WHERE name = $1), '0'::xid8) AS tx_id,
         coalesce((SELECT position FROM checkpoints WHERE name = $1), 0) AS position
), ok AS (
  SELECT 1 FROM stored WHERE tx_id = $2::text::xid8 AND position = $3
), documents AS (
  INSERT INTO read_models (kind, key, document, position)
  SELECT d.kind, d.key, d.document, $9
  FROM unnest($6::text[], $7::text[], $8::jsonb[]) AS d(kind, key, document)
  WHERE EXISTS (SELECT 1 FROM ok)
  ON CONFLICT (kind, key) DO UPDATE SET document = excluded.document, position = excluded.position
), saved AS (
  INSERT INTO checkpoints (name, tx_id, position)
  SELECT $1, $4::text::xid8, $5 WHERE EXISTS (SELECT 1 FROM ok)
  ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position,
                                   updated_at = clock_timestamp()
)
SELECT EXISTS (SELECT 1 FROM ok), tx_id::text, position FROM stored";

/// A projector's or relay's write that continues from `commit.expected` (a
/// [`DocumentCommit`] with `expected` set, at most a statement's worth of documents), in **one
/// round trip**: `BEGIN` with the asynchronous commit and the projector lock, the
/// compare-and-set statement, and `COMMIT` are sent together (tokio-postgres pipelines the
/// requests of one connection polled at once; PostgreSQL runs them in order). The lock is
/// taken before the statement starts, so under READ COMMITTED the statement reads the
/// checkpoint the previous holder committed. Read models and checkpoints are derived data:
/// their commit does not wait for the WAL flush (`synchronous_commit = off`; a crash can
/// lose the last such transactions, never half of one, and the projector folds those events
/// again). Before this, the same write took six round trips (`BEGIN`, lock, read, upsert,
/// save, `COMMIT`).
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`]; nothing is written then (a failed
/// statement makes PostgreSQL answer the `COMMIT` with a rollback).
pub async fn compare_and_set(
    pool: &deadpool_postgres::Pool,
    commit: &DocumentCommit,
) -> Result<CommitOutcome, JournalError> {
    let expected = commit.expected.unwrap_or_default();
    let client = pool.get().await?;
    let statement = client.prepare_cached(COMPARE_AND_SET).await?;
    let kinds: Vec<&str> = commit.documents.iter().map(|d| d.0.as_str()).collect();
    let keys: Vec<&str> = commit.documents.iter().map(|d| d.1.as_str()).collect();
    let documents: Vec<&Value> = commit.documents.iter().map(|d| &d.2).collect();
    let (expected_tx, cursor_tx) = (expected.tx_id.to_string(), commit.cursor.tx_id.to_string());
    let begin = format!(
        "BEGIN; SET LOCAL synchronous_commit TO OFF; SELECT pg_advisory_xact_lock({PROJECTOR_LOCK})"
    );
    let raw: &tokio_postgres::Client = &client;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &commit.checkpoint,
        &expected_tx,
        &expected.position,
        &cursor_tx,
        &commit.cursor.position,
        &kinds,
        &keys,
        &documents,
        &commit.position,
    ];
    let (began, row, committed) = futures::join!(
        raw.batch_execute(&begin),
        raw.query_one(&statement, &params),
        raw.batch_execute("COMMIT"),
    );
    let row = match (began, row, committed) {
        (Ok(()), Ok(row), Ok(())) => row,
        (began, row, committed) => {
            // The transaction, if it began, is rolled back by the COMMIT (PostgreSQL answers
            // a COMMIT of a failed transaction with ROLLBACK); make sure it is not left open.
            if committed.is_err() {
                let _ = raw.batch_execute("ROLLBACK").await;
            }
            began?;
            let row = row?;
            committed?;
            row
        }
    };
    if row.get::<_, bool>(0) {
        Ok(CommitOutcome::Written)
    } else {
        Ok(CommitOutcome::Moved(Cursor {
            tx_id: row.get::<_, String>(1).parse().unwrap_or_default(),
            position: row.get(2),
        }))
    }
}
