//! Commands refused by the rules, remembered by their idempotency key: a command id is spent
//! by its first answer, applied or refused, so sending the same command again, or importing
//! the same file again, answers what it answered the first time and appends nothing
//! (DESIGN.md 7, FORMAT.md `command_id`), even when the state has changed since so that the
//! command would now apply.
//!
//! Only refusals that depend on the journal's state are kept (a rule of an aggregate, a claim
//! held by another stream); a malformed envelope, missing rights or a lost race are answered
//! each time anew. The table (`command_rejections`, in both backends) sits beside the command
//! ledger: a ledger insert of a remembered id fails as a duplicate (PostgreSQL: a trigger
//! raising `unique_violation` on `command_ledger_pkey`, migration V8; SQLite: the writer's
//! check before the insert), so a command decided on an older state cannot apply later.

use crate::JournalError;
use rusqlite::params;

/// A command refused by the rules, as remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedCommand {
    /// The idempotency key.
    pub command_id: String,
    /// The command's name, e.g. `record_defence`.
    pub command: String,
    /// The stream it was decided on, `stream_type/stream_id`.
    pub stream: String,
    /// The FORMAT.md code: `invalid`, `not_found`, `already_exists` or `conflict`.
    pub code: String,
    /// The message it was answered with.
    pub message: String,
}

pub(crate) mod pg {
    use super::RejectedCommand;
    use crate::JournalError;
    use deadpool_postgres::Pool;

    /// Keeps `rejections` (the first answer of an id wins; an id already in the ledger is
    /// left out). One statement.
    pub(crate) async fn record(
        pool: &Pool,
        rejections: &[RejectedCommand],
    ) -> Result<(), JournalError> {
        if rejections.is_empty() {
            return Ok(());
        }
        let column =
            |f: fn(&RejectedCommand) -> &str| -> Vec<&str> { rejections.iter().map(f).collect() };
        let client = pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO command_rejections (command_id, command, stream, code, message)
                 SELECT r.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                     AS r(command_id, command, stream, code, message)
                 WHERE NOT EXISTS (SELECT 1 FROM command_ledger l WHERE l.command_id = r.command_id)
                 ON CONFLICT (command_id) DO NOTHING",
            )
            .await?;
        client
            .execute(
                &statement,
                &[
                    &column(|r| &r.command_id),
                    &column(|r| &r.command),
                    &column(|r| &r.stream),
                    &column(|r| &r.code),
                    &column(|r| &r.message),
                ],
            )
            .await?;
        Ok(())
    }

    /// The remembered refusals among `command_ids` (all of them for `None`), in no
    /// particular order (by command id for all).
    pub(crate) async fn find(
        pool: &Pool,
        command_ids: Option<&[String]>,
    ) -> Result<Vec<RejectedCommand>, JournalError> {
        if command_ids.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let client = pool.get().await?;
        let rows = match command_ids {
            Some(ids) => {
                let statement = client
                    .prepare_cached(
                        "SELECT command_id, command, stream, code, message
                         FROM command_rejections WHERE command_id = ANY($1)",
                    )
                    .await?;
                client.query(&statement, &[&ids]).await?
            }
            None => {
                client
                    .query(
                        "SELECT command_id, command, stream, code, message
                         FROM command_rejections ORDER BY command_id",
                        &[],
                    )
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(|r| RejectedCommand {
                command_id: r.get(0),
                command: r.get(1),
                stream: r.get(2),
                code: r.get(3),
                message: r.get(4),
            })
            .collect())
    }
}

/// SQLite: as [`pg::record`], in the writer's transaction.
pub(crate) fn record_sqlite(
    tx: &rusqlite::Transaction<'_>,
    rejections: &[RejectedCommand],
) -> Result<(), JournalError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO command_rejections (command_id, command, stream, code, message, recorded_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6
         WHERE NOT EXISTS (SELECT 1 FROM command_ledger WHERE command_id = ?1)",
    )?;
    let now = chrono::Utc::now().timestamp_micros();
    for r in rejections {
        insert.execute(params![
            r.command_id,
            r.command,
            r.stream,
            r.code,
            r.message,
            now
        ])?;
    }
    Ok(())
}

/// SQLite: as [`pg::find`].
pub(crate) fn find_sqlite(
    tx: &rusqlite::Transaction<'_>,
    command_ids: Option<&[String]>,
) -> Result<Vec<RejectedCommand>, JournalError> {
    let mut select = tx.prepare_cached(
        "SELECT command_id, command, stream, code, message FROM command_rejections
         WHERE ?1 IS NULL OR command_id IN (SELECT value FROM json_each(?1))
         ORDER BY command_id",
    )?;
    let ids = command_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned()));
    let rows = select.query_map(params![ids], |r| {
        Ok(RejectedCommand {
            command_id: r.get(0)?,
            command: r.get(1)?,
            stream: r.get(2)?,
            code: r.get(3)?,
            message: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// SQLite: whether `command_id` was refused before (the writer checks it before a ledger
/// insert).
pub(crate) fn known_sqlite(
    tx: &rusqlite::Connection,
    command_id: &str,
) -> Result<bool, JournalError> {
    use rusqlite::OptionalExtension;
    Ok(tx
        .query_row(
            "SELECT 1 FROM command_rejections WHERE command_id = ?1",
            params![command_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
