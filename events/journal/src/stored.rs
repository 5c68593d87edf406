//! One row of the `events` table.

use chrono::{DateTime, Utc};
use fieldtrail_domain::{AnyEvent, DecodeError};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns every read selects, in the order [`StoredEvent::from_row`] expects.
pub(crate) const COLUMNS: &str = "position, event_id, stream_type, stream_id, stream_version, \
    tx_id::text AS tx_id, event_type, event_version, payload, occurred_at, recorded_at, actor, \
    command_id, correlation_id, causation_id, reported_actor";

/// An event as stored: the envelope (ids, positions, times, actor, causality) and the payload.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Global position (1, 2, ...; gaps where a transaction rolled back).
    pub position: i64,
    /// The event's id (stable: it is the `Nats-Msg-Id` on NATS).
    pub event_id: Uuid,
    /// `programme`, `cohort` or `field_study`.
    pub stream_type: String,
    /// The aggregate's id.
    pub stream_id: String,
    /// 1, 2, ... within the stream, without gaps.
    pub stream_version: i64,
    /// The writing transaction's id (PostgreSQL `xid8`).
    pub tx_id: u64,
    /// e.g. `session_held`.
    pub event_type: String,
    /// e.g. `1`.
    pub event_version: String,
    /// The event's fields (no type tag).
    pub payload: Value,
    /// When it happened in the world (UTC).
    pub occurred_at: DateTime<Utc>,
    /// When the journal recorded it (UTC, the database server's clock).
    pub recorded_at: DateTime<Utc>,
    /// Who issued the command (`role:name`).
    pub actor: String,
    /// The command's idempotency key.
    pub command_id: String,
    /// The conversation it belongs to.
    pub correlation_id: String,
    /// What caused it (the command id).
    pub causation_id: String,
    /// What the client claimed as actor, when it differed from `actor`.
    pub reported_actor: Option<String>,
}

impl StoredEvent {
    /// Reads a row selected with the journal's column list, upcasting the payload to the
    /// current version of its event type (the stored row is unchanged; a version this build
    /// cannot upcast is left as it is, and [`StoredEvent::decode`] names it).
    pub(crate) fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self::from_row_as_stored(row)?.upcast())
    }

    /// The event with its payload upcast to the current version of its event type (a
    /// version this build cannot upcast is left as it is).
    pub(crate) fn upcast(mut self) -> Self {
        // Most rows are at the current version: nothing to copy then.
        if self.event_version == fieldtrail_domain::event::current_version(&self.event_type) {
            return self;
        }
        // In place (no copy); a version no chain reaches stays as it is (its readers name it).
        let _ = fieldtrail_domain::upcast::upcast_in_place(
            &self.event_type,
            &mut self.event_version,
            &mut self.payload,
        );
        self
    }

    fn from_row_as_stored(row: &Row) -> Result<Self, tokio_postgres::Error> {
        let tx: String = row.try_get("tx_id")?;
        Ok(Self {
            position: row.try_get("position")?,
            event_id: row.try_get("event_id")?,
            stream_type: row.try_get("stream_type")?,
            stream_id: row.try_get("stream_id")?,
            stream_version: row.try_get("stream_version")?,
            tx_id: tx.parse().unwrap_or_default(),
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            occurred_at: row.try_get("occurred_at")?,
            recorded_at: row.try_get("recorded_at")?,
            actor: row.try_get("actor")?,
            command_id: row.try_get("command_id")?,
            correlation_id: row.try_get("correlation_id")?,
            causation_id: row.try_get("causation_id")?,
            reported_actor: row.try_get("reported_actor")?,
        })
    }

    /// The domain event this row holds.
    ///
    /// # Errors
    /// [`DecodeError`] when this build does not know the stream type, event type or version.
    pub fn decode(&self) -> Result<AnyEvent, DecodeError> {
        AnyEvent::decode(
            &self.stream_type,
            &self.event_type,
            &self.event_version,
            &self.payload,
        )
    }

    /// The payload with its `type` tag, as cqrs-es deserializes it.
    pub(crate) fn tagged_payload(&self) -> Value {
        let mut payload = self.payload.clone();
        if let Value::Object(map) = &mut payload {
            map.insert("type".to_owned(), Value::String(self.event_type.clone()));
        }
        payload
    }
}
