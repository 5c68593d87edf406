//! The auditor's HTTP routes, and the `as_of` parameters of the read-model routes.
//!
//! | route | answer |
//! |---|---|
//! | `GET /audit/streams/{type}/{id}?from=&to=&clock=recorded\|occurred&actor=` | every event of the stream with its envelope and hash |
//! | `GET /audit/actors/{actor}?from=&to=&clock=` | every event the actor issued, in global-log order |
//! | `GET /audit/cohorts/{id}/attendance?format=json\|csv&by=session\|half_day` | the attendance evidence register |
//! | `GET /cohorts/…`, `/field-studies/…` with `?as_of=TIME`, `?as_of_position=N` or `?as_of_occurred=TIME` | the document as it stood then |
//!
//! A bad parameter answers 422 with a message naming it; an unknown stream or cohort 404;
//! PostgreSQL unreachable 503.

use crate::audit::{self, Granularity};
use crate::http::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fieldtrail_journal::audit::{Clock, Cut, EventFilter};
use fieldtrail_journal::Journal;
use serde_json::json;
use std::convert::Infallible;

/// The auditor's routes (merged into [`crate::http::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit/streams/{type}/{id}", get(stream_history))
        .route("/audit/actors/{actor}", get(actor_history))
        .route("/audit/cohorts/{id}/attendance", get(attendance))
}

/// The query string as (name, value) pairs, in order; an unreadable query is empty.
fn params(parts_uri: &axum::http::Uri) -> Vec<(String, String)> {
    Query::<Vec<(String, String)>>::try_from_uri(parts_uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The one value of `name`, `Err` naming it when given twice.
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("{name}: given more than once"));
    }
    Ok(first)
}

/// A 4xx answer in the API's rejection shape.
pub fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"outcome": "rejected", "code": code, "message": message})),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

fn unavailable(e: &anyhow::Error) -> Response {
    tracing::warn!(error = %e, "audit read failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"outcome": "unavailable", "message": e.to_string()})),
    )
        .into_response()
}

/// The `as_of`, `as_of_position` and `as_of_occurred` parameters of a read-model route: the
/// cut asked for, none, or the message naming the bad parameter. Never rejects the request
/// itself; [`AsOf::answer`] turns a bad value into a 422.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOf(pub Result<Option<Cut>, String>);

impl<S: Send + Sync> FromRequestParts<S> for AsOf {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let params = params(&parts.uri);
        let read = || -> Result<Option<Cut>, String> {
            audit::cut_from_params(
                single(&params, "as_of")?,
                single(&params, "as_of_position")?,
                single(&params, "as_of_occurred")?,
            )
        };
        Ok(AsOf(read()))
    }
}

impl AsOf {
    /// The answer for a document route when an `as_of` parameter was given: the document
    /// of `kind` under `key` as it stood then (404 naming `what` and the cut when it did not
    /// exist), or 422 for a bad parameter. `None` without `as_of` parameters: answer from the
    /// stored read model.
    pub async fn answer(
        &self,
        journal: &Journal,
        kind: &str,
        key: &str,
        what: &str,
    ) -> Option<Response> {
        let cut = match &self.0 {
            Ok(None) => return None,
            Ok(Some(cut)) => *cut,
            Err(message) => return Some(invalid(message)),
        };
        // The answer reflects the journal up to its head when read (the cut keeps what it
        // names of it), or up to the cut's own position when that is lower.
        let head = match journal.head().await {
            Ok(head) => head,
            Err(e) => return Some(unavailable(&anyhow::Error::from(e))),
        };
        let reflected = match cut {
            Cut::Position(p) => p.min(head),
            Cut::Recorded(_) | Cut::Occurred(_) => head,
        };
        Some(match audit::document_as_of(journal, kind, key, cut).await {
            Ok(Some(doc)) => crate::http::consistency::positioned(doc, reflected),
            Ok(None) => refused(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no {what} {cut}"),
            ),
            Err(e) => unavailable(&e),
        })
    }
}

fn filter(params: &[(String, String)], with_actor: bool) -> Result<EventFilter, String> {
    let time = |name: &str| -> Result<_, String> {
        single(params, name)?
            .map(|t| audit::parse_time(t).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let clock = match single(params, "clock")? {
        None => Clock::Recorded,
        Some(c) => Clock::parse(c).map_err(|e| format!("clock: {e}"))?,
    };
    Ok(EventFilter {
        from: time("from")?,
        to: time("to")?,
        clock,
        actor: if with_actor {
            single(params, "actor")?.map(str::to_owned)
        } else {
            None
        },
    })
}

async fn stream_history(
    State(state): State<AppState>,
    Path((stream_type, stream_id)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Response {
    if let Err(e) = audit::check_stream_type(&stream_type) {
        return refused(StatusCode::NOT_FOUND, "not_found", &e);
    }
    let filter = match filter(&params(&uri), true) {
        Ok(f) => f,
        Err(e) => return invalid(&e),
    };
    match audit::stream_history(&state.journal, &stream_type, &stream_id, &filter).await {
        Ok(Some(doc)) => Json(doc).into_response(),
        Ok(None) => refused(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no events in stream {stream_type}/{stream_id}"),
        ),
        Err(e) => unavailable(&e),
    }
}

async fn actor_history(
    State(state): State<AppState>,
    Path(actor): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let filter = match filter(&params(&uri), false) {
        Ok(f) => f,
        Err(e) => return invalid(&e),
    };
    match audit::actor_history(&state.journal, &actor, &filter).await {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn attendance(
    State(state): State<AppState>,
    Path(cohort_id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let params = params(&uri);
    let options = || -> Result<(bool, Granularity), String> {
        let csv = match single(&params, "format")? {
            None | Some("json") => false,
            Some("csv") => true,
            Some(other) => return Err(format!("format: expected json or csv, got {other:?}")),
        };
        let by = match single(&params, "by")? {
            None | Some("session") => Granularity::Session,
            Some("half_day" | "half-day") => Granularity::HalfDay,
            Some(other) => return Err(format!("by: expected session or half_day, got {other:?}")),
        };
        Ok((csv, by))
    };
    let (csv, by) = match options() {
        Ok(o) => o,
        Err(e) => return invalid(&e),
    };
    match audit::attendance_register(&state.journal, &cohort_id).await {
        Ok(Some(register)) => {
            let register = match by {
                Granularity::Session => register,
                Granularity::HalfDay => register.by_half_day(),
            };
            if csv {
                (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"attendance-{cohort_id}.csv\""),
                        ),
                    ],
                    register.to_csv(),
                )
                    .into_response()
            } else {
                Json(register).into_response()
            }
        }
        Ok(None) => refused(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no cohort {cohort_id:?}"),
        ),
        Err(e) => unavailable(&e),
    }
}
