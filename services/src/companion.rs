//! Commands whose events start a stream beside their own: `split_field_study` appends the new
//! study's `field_study_formed` (with `split_from`) and the old study's `field_study_split` in
//! one transaction ([`fieldtrail_journal::Backend::append_streams`]). The new stream's part is
//! derived from the decided events by the domain ([`FieldStudyEvent::split_companion`], no
//! I/O) and goes first, at expected version 0: a concurrent command that created the same
//! stream meets the version check (decided again, it is then `already_exists`). The command's
//! own stream comes last and its ledger row names it; the new study's formation takes its
//! members' places from the old study (`fieldtrail_domain::claims`).

use crate::handler::HandleError;
use cqrs_es::DomainEvent;
use fieldtrail_domain::event::strip_tag;
use fieldtrail_domain::{AnyEvent, FieldStudyEvent, StreamKind};
use fieldtrail_journal::{CommandMetadata, Journal, JournalError, NewEvent, StreamAppend};

/// The parts other streams get from `rows` (events of `stream_type`, as decided), in order;
/// empty for every command but a split.
///
/// # Errors
/// [`HandleError::Internal`] when a decided row does not read back or an event does not
/// serialize (a bug, not the client's fault).
pub(crate) fn companions(
    stream_type: &str,
    rows: &[NewEvent],
) -> Result<Vec<StreamAppend>, HandleError> {
    let mut parts = Vec::new();
    for (event_type, event_version, payload) in rows {
        if event_type != "field_study_split" {
            continue;
        }
        let event = AnyEvent::decode(stream_type, event_type, event_version, payload)
            .map_err(|e| HandleError::Internal(e.to_string()))?;
        let AnyEvent::FieldStudy(split) = event else {
            continue;
        };
        if let Some((new_id, formed)) = split.split_companion() {
            parts.push(StreamAppend {
                stream_type: StreamKind::FIELD_STUDY.to_owned(),
                stream_id: new_id.to_string(),
                expected: 0,
                events: vec![row(&formed)?],
            });
        }
    }
    Ok(parts)
}

fn row(event: &FieldStudyEvent) -> Result<NewEvent, HandleError> {
    let payload = serde_json::to_value(event)
        .map_err(|e| HandleError::Internal(format!("an event did not serialize: {e}")))?;
    Ok((
        event.event_type(),
        event.event_version(),
        strip_tag(payload),
    ))
}

/// Appends a command's `rows` to its stream at `expected`, with the other streams' parts
/// before them when it has any ([`companions`]): `Backend::append` for a plain command,
/// `Backend::append_streams` otherwise. Returns every position appended, in order.
///
/// # Errors
/// As the journal's append; [`JournalError::Other`] when the companions cannot be derived.
pub(crate) async fn append(
    journal: &Journal,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    rows: &[NewEvent],
    metadata: &CommandMetadata,
) -> Result<Vec<i64>, JournalError> {
    let mut parts =
        companions(stream_type, rows).map_err(|e| JournalError::Other(e.to_string()))?;
    if parts.is_empty() {
        return journal
            .append(stream_type, stream_id, expected, rows, metadata)
            .await;
    }
    parts.push(StreamAppend {
        stream_type: stream_type.to_owned(),
        stream_id: stream_id.to_owned(),
        expected,
        events: rows.to_vec(),
    });
    let positions = journal.append_streams(&parts, metadata).await?;
    Ok(positions.into_iter().flatten().collect())
}
