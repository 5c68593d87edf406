//! Named cursors over the global log, kept in the `checkpoints` table.

use crate::{Cursor, JournalError};
use deadpool_postgres::GenericClient;

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
