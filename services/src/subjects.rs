//! Subject access (RGPD article 15): every personal datum and every event about one data
//! subject, decrypted (`GET /subjects/{subject_id}/export`, staff or the learner themself).
//!
//! An event is about the subject when one of its personal fields is the subject's
//! ([`fieldtrail_domain::personal`]), when it is on the subject's own stream (its erasure), or,
//! for a learner, when its payload names the learner's id (enrolment, attendance, field-study
//! membership, defences, certificate, a complaint `from` them). The whole global log is read:
//! the cost of one request is linear in the journal's size. After an erasure the subject's
//! fields read as the marker, like everywhere else.

//!
//! The same module keeps, when `erase_subject` is handled, the research categories of the
//! subject's reasons ([`keep_reason_categories`]).

use anyhow::Context as _;
use fieldtrail_domain::personal::{self, Subject};
use fieldtrail_domain::{ErasedReasonCategory, StreamKind};
use fieldtrail_journal::audit::utc_text;
use fieldtrail_journal::sealing::ERASED;
use fieldtrail_journal::{Cursor, Journal, JournalError, NewEvent, StoredEvent};
use fieldtrail_projections::trajectory::reasons;
use serde_json::{json, Value};

/// Events read per page of the global log.
const PAGE: i64 = 4096;

fn mentions(value: &Value, id: &str) -> bool {
    match value {
        Value::String(s) => s == id || s.strip_prefix("learner:") == Some(id),
        Value::Array(items) => items.iter().any(|v| mentions(v, id)),
        Value::Object(map) => map.values().any(|v| mentions(v, id)),
        _ => false,
    }
}

/// The personal fields of `event` that belong to `subject_id`: `(path, value)`.
fn personal_of(event: &StoredEvent, subject_id: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (path, subject) in personal::personal_fields(&event.event_type) {
        if Subject::id(subject, &event.payload).as_deref() != Some(subject_id) {
            continue;
        }
        let mut payload = event.payload.clone();
        personal::visit_mut(&mut payload, path, &mut |v| {
            out.push((path.to_owned(), v.clone()));
        });
    }
    out
}

fn envelope(event: &StoredEvent) -> Value {
    json!({
        "position": event.position,
        "event_id": event.event_id,
        "stream_type": event.stream_type,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "occurred_at": utc_text(&event.occurred_at),
        "recorded_at": utc_text(&event.recorded_at),
        "actor": event.actor,
        "payload": event.payload,
    })
}

/// The subject access export of `subject_id` (already checked by
/// [`personal::check_subject_id`]): `{"subject_id", "erased", "erased_at", "personal_data":
/// [{position, event_id, event_type, field, value}], "events": [envelope with payload]}`.
///
/// # Errors
/// When the journal cannot be read.
pub async fn export(journal: &Journal, subject_id: &str) -> anyhow::Result<Value> {
    let learner = subject_id.strip_prefix("learner:");
    let key = journal
        .subject_keys(&[subject_id.to_owned()])
        .await
        .context("key table")?;
    let erased_at = key.first().and_then(|k| k.erased_at).map(|t| utc_text(&t));
    let mut personal_data = Vec::new();
    let mut events = Vec::new();
    let mut pages = journal.read_ahead(Cursor::default(), PAGE, false);
    while let Some(page) = pages.recv().await.transpose()? {
        for event in &page {
            let fields = personal_of(event, subject_id);
            let own = event.stream_type == StreamKind::SUBJECT && event.stream_id == subject_id;
            let named = learner.is_some_and(|id| mentions(&event.payload, id));
            if fields.is_empty() && !own && !named {
                continue;
            }
            for (field, value) in fields {
                personal_data.push(json!({
                    "position": event.position,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "field": field,
                    "value": value,
                }));
            }
            events.push(envelope(event));
        }
    }
    Ok(json!({
        "subject_id": subject_id,
        "erased": erased_at.is_some(),
        "erased_at": erased_at,
        "personal_data": personal_data,
        "events": events,
    }))
}

/// The research category of each reason of `subject_id`'s that the research export classifies
/// ([`reasons::CLASSIFIED`]) and that is still in clear, classified from its text: what an
/// erasure of the subject keeps so that research exports read the same after it (README
/// "Personal data"). One entry per `(event, field)`, in log order. Reads the whole global
/// log (the cost is linear in the journal's size, as for the subject access export).
///
/// # Errors
/// When the journal cannot be read.
pub async fn reason_categories(
    journal: &Journal,
    subject_id: &str,
) -> Result<Vec<ErasedReasonCategory>, JournalError> {
    let mut kept = Vec::new();
    let mut pages = journal.read_ahead(Cursor::default(), PAGE, false);
    while let Some(page) = pages.recv().await.transpose()? {
        for event in &page {
            for (path, subject) in personal::personal_fields(&event.event_type) {
                let Some(kind) = reasons::classified(&event.event_type, path) else {
                    continue;
                };
                if Subject::id(subject, &event.payload).as_deref() != Some(subject_id) {
                    continue;
                }
                let Some(text) = event.payload.get(path).and_then(Value::as_str) else {
                    continue;
                };
                // Already erased (given after an earlier erasure, or a replayed key loss):
                // there is no text left to classify, and nothing changes.
                if text == ERASED {
                    continue;
                }
                kept.push(ErasedReasonCategory {
                    event_id: event.event_id.to_string(),
                    field: path.to_owned(),
                    category: reasons::category(kind, text).to_owned(),
                });
            }
        }
    }
    Ok(kept)
}

/// Fills each `subject_erased` among `rows` (as decided, before their append) with the
/// [`reason_categories`] of the subject it erases: called by both command paths (one command,
/// a batch) just before the append, while the subject's key still opens their texts.
///
/// # Errors
/// When the journal cannot be read.
pub async fn keep_reason_categories(
    journal: &Journal,
    rows: &mut [NewEvent],
) -> Result<(), JournalError> {
    for (event_type, _, payload) in rows.iter_mut() {
        if event_type != "subject_erased" {
            continue;
        }
        let Some(subject_id) = payload.get("subject_id").and_then(Value::as_str) else {
            continue;
        };
        let kept = reason_categories(journal, subject_id).await?;
        if kept.is_empty() {
            continue;
        }
        let kept = serde_json::to_value(kept)
            .map_err(|e| JournalError::Other(format!("reason categories: {e}")))?;
        if let Value::Object(map) = payload {
            map.insert("reason_categories".to_owned(), kept);
        }
    }
    Ok(())
}

/// `GET /subjects/{subject_id}/export` (the role check is the token layer's: staff, or the
/// learner `learner:<their id>`).
pub async fn http_export(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
    axum::extract::Path(subject_id): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    if let Err(message) = personal::check_subject_id(&subject_id) {
        return crate::http::audit::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            &format!("subject_id: {message}"),
        );
    }
    match export(&state.journal, &subject_id).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "subject export unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"outcome": "unavailable", "message": e.to_string()})),
            )
                .into_response()
        }
    }
}
