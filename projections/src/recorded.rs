//! One event as read from the global log.

use chrono::{DateTime, Utc};
use fieldtrail_domain::AnyEvent;

/// One event as read from the global log: the journal row's metadata and the decoded event.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Place in the global log (strictly increasing in log order).
    pub position: i64,
    /// `programme`, `cohort` or `field_study`.
    pub stream_type: String,
    /// The stream's id (the programme, cohort or field study id).
    pub stream_id: String,
    /// The event's version within its stream (1, 2, ...).
    pub stream_version: i64,
    /// The event's unique id (a UUID as text).
    pub event_id: String,
    /// The event type, e.g. `session_held`.
    pub event_type: String,
    /// The event type's version, e.g. `1`.
    pub event_version: String,
    /// When the fact happened in the world (the command's `at`), in UTC.
    pub occurred_at: DateTime<Utc>,
    /// When the server recorded it (its own clock), in UTC.
    pub recorded_at: DateTime<Utc>,
    /// Who issued the command, `role:name`.
    pub actor: String,
    /// The decoded event.
    pub event: AnyEvent,
}
