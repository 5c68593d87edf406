//! The cqrs-es `PersistedEventRepository` over any [`Backend`]: cqrs-es loads aggregates and
//! persists their new events through it (no snapshots: aggregates are folded from events).

use crate::stored::StoredEvent;
use crate::{CommandMetadata, Journal, JournalError};
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;

fn to_persistence(e: JournalError) -> PersistenceError {
    match e {
        JournalError::VersionConflict { .. } => PersistenceError::OptimisticLockError,
        e if e.is_unavailable() => PersistenceError::ConnectionError(Box::new(e)),
        e => PersistenceError::UnknownError(Box::new(e)),
    }
}

fn serialized(event: StoredEvent) -> SerializedEvent {
    let metadata = serde_json::json!({
        "command_id": event.command_id,
        "actor": event.actor,
        "occurred_at": event.occurred_at.to_rfc3339(),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "position": event.position.to_string(),
    });
    SerializedEvent {
        aggregate_id: event.stream_id.clone(),
        sequence: usize::try_from(event.stream_version).unwrap_or_default(),
        aggregate_type: event.stream_type.clone(),
        event_type: event.event_type.clone(),
        event_version: event.event_version.clone(),
        payload: event.tagged_payload(),
        metadata,
    }
}

impl PersistedEventRepository for Journal {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.get_last_events::<A>(aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let after = i64::try_from(last_sequence).unwrap_or(i64::MAX);
        let events = self
            .stream(A::TYPE, aggregate_id, after)
            .await
            .map_err(to_persistence)?;
        Ok(events.into_iter().map(serialized).collect())
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // Aggregates are folded from their events; no snapshots are kept.
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let metadata = CommandMetadata::from_json(&first.metadata)
            .map_err(|m| PersistenceError::UnknownError(Box::new(JournalError::Other(m))))?;
        let expected = i64::try_from(first.sequence).unwrap_or(1) - 1;
        let rows: Vec<(String, String, Value)> = events
            .iter()
            .map(|e| {
                (
                    e.event_type.clone(),
                    e.event_version.clone(),
                    fieldtrail_domain::event::strip_tag(e.payload.clone()),
                )
            })
            .collect();
        self.append(A::TYPE, &first.aggregate_id, expected, &rows, &metadata)
            .await
            .map(|_| ())
            .map_err(to_persistence)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(aggregate_id).await?;
        Ok(replay(events).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let mut events = Vec::new();
        let mut cursor = crate::Cursor::default();
        loop {
            let page = self.read(cursor, 10_000).await.map_err(to_persistence)?;
            let Some(last) = page.last() else { break };
            cursor = crate::Cursor::after(last);
            events.extend(
                page.into_iter()
                    .filter(|e| e.stream_type == A::TYPE)
                    .map(serialized),
            );
        }
        Ok(replay(events).await)
    }
}

async fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        // The channel holds every event, so pushing cannot block or fail before `stream` is dropped.
        let _ = feed.push(Ok(event)).await;
    }
    stream
}
