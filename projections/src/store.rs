//! The read models' store: one JSON document per (kind, key) in `read_models`, written with
//! the projector's checkpoint in one transaction.

use crate::{DocKey, ReadModels, RecordedEvent};
use deadpool_postgres::GenericClient;
use fieldtrail_journal::{JournalError, StoredEvent};

/// Reads a journal row as a projection input.
///
/// # Errors
/// [`JournalError::Other`] naming the event type and global position when this build cannot
/// read the row (a newer writer's event): the projector stops there rather than skip it.
pub fn recorded(event: &StoredEvent) -> Result<RecordedEvent, JournalError> {
    let decoded = event.decode().map_err(|e| {
        JournalError::Other(format!(
            "projector stopped at global position {}: unknown or unreadable event type {:?} (version {}): {}",
            event.position, event.event_type, event.event_version, e.reason
        ))
    })?;
    Ok(RecordedEvent {
        position: event.position,
        stream_type: event.stream_type.clone(),
        stream_id: event.stream_id.clone(),
        stream_version: event.stream_version,
        event_id: event.event_id.to_string(),
        event_type: event.event_type.clone(),
        event_version: event.event_version.clone(),
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        actor: event.actor.clone(),
        event: decoded,
    })
}

/// Writes the documents named by `keys` as they stand in `models`, tagged with `position`
/// (the last global position applied). Call it inside the checkpoint's transaction.
///
/// # Errors
/// [`JournalError::Postgres`].
pub async fn write_documents<C: GenericClient>(
    client: &C,
    models: &ReadModels,
    keys: &[DocKey],
    position: i64,
) -> Result<(), JournalError> {
    let statement = client
        .prepare(
            "INSERT INTO read_models (kind, key, document, position) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, key) DO UPDATE SET document = excluded.document, position = excluded.position",
        )
        .await?;
    for key in keys {
        if let Some(document) = models.document(key) {
            client
                .execute(
                    &statement,
                    &[&key.kind.as_str(), &key.key, &document, &position],
                )
                .await?;
        }
    }
    Ok(())
}
