//! What a command carries besides its data, stored on every event it produces.

use chrono::{DateTime, FixedOffset};
use std::collections::HashMap;

/// The envelope fields kept on every event of one command (cqrs-es passes them to the
/// repository as a string map; [`CommandMetadata::to_map`] and [`CommandMetadata::from_map`]
/// are the two ends of that).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandMetadata {
    /// The client's idempotency key.
    pub command_id: String,
    /// The command's name, e.g. `record_session`.
    pub command: String,
    /// Who issued it (`role:name`): the authenticated principal on the HTTP API, the operator
    /// on the import.
    pub actor: String,
    /// The actor the client wrote in the envelope, when it differs from `actor` (kept, never
    /// trusted: see ARCHITECTURE.md "Actors").
    pub reported_actor: Option<String>,
    /// When it happened in the world (RFC 3339 with the client's offset).
    pub occurred_at: DateTime<FixedOffset>,
    /// The conversation it belongs to (defaults to the command id).
    pub correlation_id: String,
    /// What caused the events (the command id).
    pub causation_id: String,
    /// The events' ids, chosen before the append, in order across the command's streams
    /// (empty: the journal picks them). The sealing of personal fields chooses them, since
    /// each field's ciphertext is bound to its event's id ([`crate::sealing`]).
    pub event_ids: Vec<uuid::Uuid>,
}

impl CommandMetadata {
    /// The ids of `n` events starting at the command's `offset`-th event: those chosen in
    /// [`CommandMetadata::event_ids`], fresh UUIDv7 ones where none were chosen.
    pub fn event_ids_at(&self, offset: usize, n: usize) -> Vec<uuid::Uuid> {
        (offset..offset + n)
            .map(|i| {
                self.event_ids
                    .get(i)
                    .copied()
                    .unwrap_or_else(uuid::Uuid::now_v7)
            })
            .collect()
    }

    /// As the string map cqrs-es carries.
    pub fn to_map(&self) -> HashMap<String, String> {
        HashMap::from([
            ("command_id".to_owned(), self.command_id.clone()),
            ("command".to_owned(), self.command.clone()),
            ("actor".to_owned(), self.actor.clone()),
            ("occurred_at".to_owned(), self.occurred_at.to_rfc3339()),
            ("correlation_id".to_owned(), self.correlation_id.clone()),
            ("causation_id".to_owned(), self.causation_id.clone()),
        ])
        .into_iter()
        .chain(
            self.reported_actor
                .clone()
                .map(|r| ("reported_actor".to_owned(), r)),
        )
        .collect()
    }

    /// From the string map (as JSON) cqrs-es hands to the repository.
    ///
    /// # Errors
    /// A message naming the missing or malformed key.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let get = |k: &str| {
            value
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("event metadata lacks {k}"))
        };
        Ok(Self {
            command_id: get("command_id")?,
            command: get("command")?,
            actor: get("actor")?,
            occurred_at: DateTime::parse_from_rfc3339(&get("occurred_at")?)
                .map_err(|e| format!("event metadata occurred_at: {e}"))?,
            correlation_id: get("correlation_id")?,
            causation_id: get("causation_id")?,
            reported_actor: value
                .get("reported_actor")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            event_ids: Vec::new(),
        })
    }
}
