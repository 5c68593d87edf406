//! Reading your own writes: every accepted command answers with the global position of its
//! last event (`position` in the body, `Fieldtrail-Position` header); a read-model route given
//! that position (`?min_position=N`, or the `Fieldtrail-Position` request header) answers only
//! once the projector has folded the journal at least that far, waiting up to
//! [`read_wait`] (default 2 s), else `503` with `Retry-After` and the position it has reached,
//! never a stale document presented as fresh. Every document answer carries the position its
//! read models reflect (at least: the projector may have moved on while the document was
//! read), in the `Fieldtrail-Position` header and as a top-level `position` field of the JSON
//! ([`positioned`]). `as_of` answers are cuts named by their query and carry neither.
//!
//! A stream-scoped read may also ask `?consistency=strong` (a field study's history): it is
//! then folded from the journal's stream directly ([`strong_history`]), not read from the
//! stored read models, and its `Fieldtrail-Position` is the stream's last event.
//!
//! "Folded that far" is exact on both backends: the projector's checkpoint is at or past the
//! global-log cursor of the event at that position ([`fieldtrail_journal::Backend::cursor_at`];
//! on PostgreSQL the log is ordered by transaction, so comparing positions alone would not do).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fieldtrail_journal::checkpoint::PROJECTOR;
use fieldtrail_journal::Journal;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

/// The header carrying a global position, on answers and on read requests
/// (`Fieldtrail-Position`; header names are case-insensitive).
pub const POSITION_HEADER: &str = "fieldtrail-position";

/// The environment variable bounding the wait of a read with a minimum position, in
/// milliseconds (default 2000).
pub const READ_WAIT_ENV: &str = "FIELDTRAIL_READ_WAIT_MS";

/// How long a read with a minimum position waits for the projector.
pub fn read_wait() -> Duration {
    std::env::var(READ_WAIT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

/// The minimum position a read asks for: `?min_position=N` or the `Fieldtrail-Position`
/// header (the query wins); `Err` names a value that is not a non-negative integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinPosition(pub Result<Option<i64>, String>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("").split('&').find_map(|pair| {
            pair.strip_prefix("min_position=")
                .map(|v| ("min_position", v.to_owned()))
        });
        let header = parts
            .headers
            .get(POSITION_HEADER)
            .map(|v| (POSITION_HEADER, v.to_str().unwrap_or("not text").to_owned()));
        Ok(MinPosition(match query.or(header) {
            None => Ok(None),
            Some((name, text)) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 0)
                .map(Some)
                .ok_or_else(|| {
                    format!("{name}: expected a global position (0, 1, 2, ...), got {text:?}")
                }),
        }))
    }
}

/// The position the read models reflect: the projector checkpoint's.
///
/// # Errors
/// When the journal cannot be read.
pub async fn reflected(journal: &Journal) -> Result<i64, fieldtrail_journal::JournalError> {
    Ok(journal.checkpoint(PROJECTOR).await?.position)
}

/// Waits until the read models include the event at `min` (see the module documentation).
/// `Ok(position reflected)`, or `Err(response)`: 503 with `Retry-After` after the wait, or
/// when the journal cannot be read.
pub async fn wait_for(journal: &Journal, min: i64) -> Result<i64, Response> {
    match crate::read::wait_for_position(journal, min, read_wait()).await {
        Ok(crate::read::Reached::Yes(position)) => Ok(position),
        Ok(crate::read::Reached::No { reflected, head }) => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "outcome": "unavailable",
                    "message": format!(
                        "the read models have not reached position {min} yet (they reflect position {reflected}; the journal's head is {head}): retry"
                    ),
                    "position": reflected,
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            with_position(&mut response, reflected);
            Err(response)
        }
        Err(e) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"outcome": "unavailable", "message": e.to_string()})),
        )
            .into_response()),
    }
}

/// The JSON answer of a read model document that reflects the journal up to `position`: the
/// document with a top-level `position` field (the global position, an integer) added, and
/// the same number in the `Fieldtrail-Position` header. A document that is not a JSON object
/// (none is today) is answered as it is, with the header only. The stored document and what
/// `fieldtrail report` prints are unchanged: the field belongs to the HTTP answer.
pub fn positioned(mut document: serde_json::Value, position: i64) -> Response {
    if let serde_json::Value::Object(map) = &mut document {
        map.insert(POSITION_FIELD.to_owned(), json!(position));
    }
    let mut response = Json(document).into_response();
    with_position(&mut response, position);
    response
}

/// The field of a read answer's JSON carrying the position it reflects (as the header).
pub const POSITION_FIELD: &str = "position";

/// Sets the `Fieldtrail-Position` header of `response`.
pub fn with_position(response: &mut Response, position: i64) {
    if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
        response.headers_mut().insert(POSITION_HEADER, value);
    }
}

/// `?consistency=strong|eventual` (default eventual); `Err` names another value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consistency(pub Result<bool, String>);

impl<S: Send + Sync> FromRequestParts<S> for Consistency {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("consistency="));
        Ok(Consistency(match value {
            None | Some("eventual") => Ok(false),
            Some("strong") => Ok(true),
            Some(other) => Err(format!(
                "consistency: expected strong or eventual, got {other:?}"
            )),
        }))
    }
}

/// A field study's evaluation history folded from its stream in the journal (every event
/// committed so far, whatever the projector's progress), and the global position of the
/// stream's last event; `None` when the stream has no event.
///
/// # Errors
/// When the journal cannot be read or an event cannot be decoded.
pub async fn strong_history(
    journal: &Journal,
    field_study_id: &str,
) -> Result<Option<(serde_json::Value, i64)>, fieldtrail_journal::JournalError> {
    let events = journal.stream("field_study", field_study_id, 0).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(None);
    };
    let mut models = fieldtrail_projections::ReadModels::new();
    for event in events {
        models.apply(&fieldtrail_projections::store::recorded_owned(event)?);
    }
    let key = fieldtrail_projections::DocKey {
        kind: fieldtrail_projections::DocKind::History,
        key: field_study_id.to_owned(),
    };
    Ok(models.document(&key).map(|d| (d, last)))
}
