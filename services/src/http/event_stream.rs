//! `GET /events/stream`: the global log as Server-Sent Events (WHATWG HTML, "Server-sent
//! events"), for dashboards without NATS, on both backends.
//!
//! - Each event is one SSE message: `id:` its global position, `data:` the same JSON body as
//!   the NATS relay publishes ([`crate::workers::relay::body`]), no `event:` name (so `onmessage`
//!   receives every event). Events come in global-log order, never one twice.
//! - Resuming: `?after=<global position>` (default 0: from the start), or the
//!   `Last-Event-ID` header a reconnecting `EventSource` sends, which wins over `after`.
//! - Filters: `?stream_type=cohort,field_study` (the stream category) and
//!   `?event_type=session_held,attendance_recorded`, each a comma-separated list.
//! - New events arrive within a poll interval of their commit (at once when the append ran
//!   in this process); a `: keep-alive` comment is sent every 15 s of silence.
//! - Access: staff, auditor and dashboard tokens. `EventSource` cannot send an
//!   `Authorization` header, so the token may be given as `?token=ftk_…` on this route. The
//!   token is checked again every [`TOKEN_RECHECK`]: revoking it ends the open streams.
//! - Refused with 422: a position that is not a non-negative integer or lies beyond the
//!   journal's head (a client that saw more than this journal holds: resuming there would
//!   skip or repeat events), an unknown stream type or event type.

use crate::http::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fieldtrail_journal::{Cursor, Journal, StoredEvent};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often an idle stream looks for new events when no notification came.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often an open stream checks that its token is still live.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(10);

/// Events read from the journal per query.
const PAGE: i64 = 500;

/// Which events a subscriber wants (empty lists: all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Stream types (categories): `programme`, `cohort`, `field_study`.
    pub stream_types: Vec<String>,
    /// Event types, e.g. `session_held`.
    pub event_types: Vec<String>,
}

impl Filter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        (self.stream_types.is_empty() || self.stream_types.contains(&event.stream_type))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
    }
}

fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The position to resume after and the filter, from the query and the `Last-Event-ID`
/// header.
///
/// # Errors
/// A message naming the parameter that is not a non-negative integer or a known stream type.
pub fn parse(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(i64, Filter), String> {
    let position = |name: &str, text: &str| {
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                format!("{name}: expected a global position (0, 1, 2, ...), got {text:?}")
            })
    };
    let after = match headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?"))
    {
        Some(id) if !id.is_empty() => position("Last-Event-ID", id)?,
        _ => match params.get("after") {
            Some(a) => position("after", a)?,
            None => 0,
        },
    };
    let filter = Filter {
        stream_types: list(params.get("stream_type")),
        event_types: list(params.get("event_type")),
    };
    for t in &filter.stream_types {
        crate::audit::check_stream_type(t).map_err(|e| format!("stream_type: {e}"))?;
    }
    let known = event_types();
    if let Some(unknown) = filter.event_types.iter().find(|t| !known.contains(*t)) {
        return Err(format!(
            "event_type: unknown event type {unknown:?} (the types are listed in deploy/asyncapi.json)"
        ));
    }
    Ok((after, filter))
}

/// Every event type of this build, from the published schemas.
fn event_types() -> &'static std::collections::BTreeSet<String> {
    static TYPES: std::sync::OnceLock<std::collections::BTreeSet<String>> =
        std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        fieldtrail_domain::schema::event_schemas()
            .values()
            .filter_map(|schema| schema.get("x-event-version").and(schema["title"].as_str()))
            .map(str::to_owned)
            .collect()
    })
}

struct Follow {
    journal: Journal,
    notify: Arc<Notify>,
    cursor: Cursor,
    filter: Filter,
    buffer: VecDeque<StoredEvent>,
    /// Set when the server begins to shut down: the stream then ends, so that the graceful
    /// shutdown does not wait for subscribers (they reconnect with `Last-Event-ID`).
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// The caller's token, checked again every [`TOKEN_RECHECK`].
    token: Option<uuid::Uuid>,
    checked: std::time::Instant,
}

impl Follow {
    /// The next event that passes the filter, waiting for new ones as long as it takes;
    /// `None` once the server is shutting down.
    async fn next(&mut self) -> Option<StoredEvent> {
        loop {
            if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            if let Some(token) = self.token {
                if self.checked.elapsed() >= TOKEN_RECHECK {
                    self.checked = std::time::Instant::now();
                    if matches!(self.journal.live_token(token).await, Ok(None)) {
                        tracing::info!(%token, "token revoked: event stream closed");
                        return None;
                    }
                }
            }
            if let Some(event) = self.buffer.pop_front() {
                return Some(event);
            }
            let notify = self.notify.clone();
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.journal.read(self.cursor, PAGE).await {
                Ok(page) if !page.is_empty() => {
                    if let Some(last) = page.last() {
                        self.cursor = Cursor::after(last);
                    }
                    let filter = &self.filter;
                    self.buffer
                        .extend(page.into_iter().filter(|e| filter.matches(e)));
                }
                Ok(_) => {
                    let _ = tokio::time::timeout(POLL_INTERVAL, notified).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream cannot read the journal; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn message(event: &StoredEvent) -> Event {
    Event::default().id(event.position.to_string()).data(
        String::from_utf8(crate::workers::relay::body_bytes(event).unwrap_or_default())
            .unwrap_or_default(),
    )
}

/// `GET /events/stream` (see the module documentation): 200 `text/event-stream`, 422 for a
/// bad parameter, 503 when the journal cannot be read at the start.
pub async fn stream(
    State(state): State<AppState>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (after, filter) = match parse(&params, &headers) {
        Ok(parsed) => parsed,
        Err(message) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"outcome": "rejected", "code": "invalid", "message": message})),
            )
                .into_response()
        }
    };
    let head = match state.journal.head().await {
        Ok(head) => head,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"outcome": "unavailable", "message": e.to_string()})),
            )
                .into_response()
        }
    };
    if after > head {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"outcome": "rejected", "code": "invalid", "message": format!(
                "after: position {after} is beyond this journal's head ({head}): resume from a position it holds"
            )})),
        )
            .into_response();
    }
    let cursor = match state.journal.cursor_at(after).await {
        Ok(cursor) => cursor,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"outcome": "unavailable", "message": e.to_string()})),
            )
                .into_response()
        }
    };
    let follow = Follow {
        notify: state.journal.notifier(),
        journal: state.journal.clone(),
        cursor,
        filter,
        buffer: VecDeque::new(),
        draining: state.ops.draining.clone(),
        token: principal.map(|p| p.0.token_id),
        checked: std::time::Instant::now(),
    };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok::<Event, Infallible>(message(&event)), follow))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /events/{stream_type}/{stream_id}/{stream_version}`: one event, the same body as its
/// NATS message and its SSE message ([`crate::workers::relay::body`]) but with its personal
/// fields in clear (`"[effacé]"` for an erased subject): how a subscriber allowed to see
/// them reads what the bus carries sealed (`fieldtrail consume --api`). Staff and auditor
/// tokens (the token layer's `Audit` access). 404 for an unknown stream type or an event
/// the journal does not hold, 422 for a version that is not a positive integer, 503 when
/// the journal cannot be read.
pub async fn one(
    State(state): State<AppState>,
    axum::extract::Path((stream_type, stream_id, version)): axum::extract::Path<(
        String,
        String,
        String,
    )>,
) -> Response {
    use crate::http::audit::refused;
    if stream_type != "subject" {
        if let Err(e) = crate::audit::check_stream_type(&stream_type) {
            return refused(StatusCode::NOT_FOUND, "not_found", &e);
        }
    }
    let Some(version) = version.parse::<i64>().ok().filter(|v| *v > 0) else {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "stream_version: a positive integer expected",
        );
    };
    match state
        .journal
        .event_at(&stream_type, &stream_id, version)
        .await
    {
        Ok(Some(event)) => Json(crate::workers::relay::body(&event)).into_response(),
        Ok(None) => refused(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no event at version {version} of stream {stream_type}/{stream_id}"),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "event read failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"outcome": "unavailable", "message": e.to_string()})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn last_event_id_wins_over_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(parse(&params(&[("after", "7")]), &headers).unwrap().0, 7);
        headers.insert("last-event-id", "42".parse().unwrap());
        assert_eq!(parse(&params(&[("after", "7")]), &headers).unwrap().0, 42);
        assert_eq!(parse(&params(&[]), &HeaderMap::new()).unwrap().0, 0);
    }

    #[test]
    fn bad_parameters_are_named() {
        let none = HeaderMap::new();
        assert!(parse(&params(&[("after", "-1")]), &none)
            .unwrap_err()
            .starts_with("after:"));
        assert!(parse(&params(&[("after", "x")]), &none).is_err());
        assert!(parse(&params(&[("stream_type", "cohort,nope")]), &none)
            .unwrap_err()
            .starts_with("stream_type:"));
        let (_, filter) = parse(
            &params(&[
                ("stream_type", "cohort, field_study"),
                ("event_type", "session_held"),
            ]),
            &none,
        )
        .unwrap();
        assert_eq!(filter.stream_types, ["cohort", "field_study"]);
        assert_eq!(filter.event_types, ["session_held"]);
        assert!(parse(&params(&[("event_type", "session_hled")]), &none)
            .unwrap_err()
            .starts_with("event_type:"));
    }
}
