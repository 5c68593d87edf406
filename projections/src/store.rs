//! Between the journal and the folds: a stored event as a projection input, and the folded
//! documents as the rows the read-model store keeps (one JSON document per (kind, key),
//! written with the projector's checkpoint in one transaction by the backend).

use crate::{DocKey, ReadModels, RecordedEvent};
use fieldtrail_journal::{JournalError, StoredEvent};

/// Reads a journal row as a projection input.
///
/// # Errors
/// [`JournalError::Other`] naming the event type and global position when this build cannot
/// read the row (a newer writer's event): the projector stops there rather than skip it.
pub fn recorded(event: &StoredEvent) -> Result<RecordedEvent, JournalError> {
    recorded_owned(event.clone())
}

/// As [`recorded`], taking the row: its strings and payload move into the recorded event
/// (no copy; the path of the projector, the rebuild and the exports).
///
/// # Errors
/// As [`recorded`].
pub fn recorded_owned(mut event: StoredEvent) -> Result<RecordedEvent, JournalError> {
    let payload = std::mem::take(&mut event.payload);
    let decoded = fieldtrail_domain::AnyEvent::decode_owned(
        &event.stream_type,
        &event.event_type,
        &event.event_version,
        payload,
    )
    .map_err(|e| {
        JournalError::Other(format!(
            "projector stopped at global position {}: unknown or unreadable event type {:?} (version {}): {}",
            event.position, event.event_type, event.event_version, e.reason
        ))
    })?;
    Ok(RecordedEvent {
        position: event.position,
        stream_type: event.stream_type,
        stream_id: event.stream_id,
        stream_version: event.stream_version,
        event_id: event.event_id.to_string(),
        event_type: event.event_type,
        event_version: event.event_version,
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        actor: event.actor,
        event: decoded,
    })
}

/// The documents named by `keys` as they stand in `models`: `(kind, key, document)`, for a
/// [`fieldtrail_journal::DocumentCommit`].
pub fn documents(models: &ReadModels, keys: &[DocKey]) -> Vec<(String, String, serde_json::Value)> {
    keys.iter()
        .filter_map(|key| {
            models
                .document(key)
                .map(|document| (key.kind.as_str().to_owned(), key.key.clone(), document))
        })
        .collect()
}
