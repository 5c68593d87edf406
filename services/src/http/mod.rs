//! The HTTP API (axum): commands in, read models out.
//!
//! | route | answer |
//! |---|---|
//! | `POST /commands` | one envelope; 200 applied or duplicate, 404/409/422 rejected (FORMAT.md), 503 journal away |
//! | `GET /cohorts/{id}/timetable` | the timetable document |
//! | `GET /cohorts/{id}/learners/{learner}/transcript` | the transcript document |
//! | `GET /field-studies/{id}/history` | the evaluation history document |
//! | `GET /cohorts/{id}/complaints` | the complaints register (a learner: their own complaints; [`complaints`]) |
//! | the four above with `?as_of=TIME`, `?as_of_position=N` or `?as_of_occurred=TIME` | the document as it stood then ([`crate::http::audit`]) |
//! | `GET /audit/…` | the auditor's routes ([`crate::http::audit`]) |
//! | `GET /cohorts/{id}/timetable.ics`, `.../learners/{learner}/transcript.clr`, `/field-studies/{id}/xapi`, ... | exports: see [`crate::export`] |
//! | `GET /.well-known/jwks.json`, `/.well-known/did.json`, `/credentials/status/{cohort}`, `.../transcript.jwt`, `/audit/digests` | public keys, revocation lists, signed credentials and digests ([`crate::signing::http`]) |
//! | `GET /events/stream?after=N` | the global log as Server-Sent Events ([`crate::event_stream`]) |
//! | `GET /healthz` | process alive; says whether PostgreSQL and NATS answer |
//! | `GET /readyz` | 200 ready / 503 not, naming what is wrong ([`crate::http::health`]) |
//! | `GET /metrics` | Prometheus metrics ([`crate::metrics`]) |
//! | `GET /`, `/cohorts/{id}`, `/field-studies/{id}`, `/sign-in`, ... | the French web pages ([`crate::pages`]) |

pub mod audit;
pub mod complaints;
pub mod consistency;
pub mod event_stream;
pub mod health;
pub mod metrics;
pub mod openapi;

use crate::auth::{self, Access, Principal, Role};
use crate::export;
use crate::handler::{CommandHandler, HandleError, Outcome};
use crate::read;
use crate::workers::leader::Roles;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fieldtrail_domain::{Code, CommandEnvelope};
use serde_json::json;
use std::sync::Arc;

/// Default largest accepted request body (bytes); `FIELDTRAIL_MAX_BODY_BYTES` changes it.
pub const BODY_LIMIT: usize = 256 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The command handler.
    pub handler: Arc<CommandHandler>,
    /// The journal (either backend): commands are appended to it, read models read from it.
    pub journal: fieldtrail_journal::Journal,
    /// The NATS connection, if the relay runs in this process.
    pub nats: Option<async_nats::Client>,
    /// What this process leads (projector, relay).
    pub roles: Arc<crate::workers::leader::Roles>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Longest request, in seconds.
    pub request_timeout_secs: u64,
    /// Readiness and metrics ([`crate::http::health`], [`crate::metrics`]).
    pub ops: crate::http::health::Ops,
    /// The signing keys' directory ([`crate::signing`]), read at each use, so that a
    /// `fieldtrail keys rotate` is in force at once.
    pub keys: crate::signing::keys::KeyStore,
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/commands", post(post_command))
        .route("/cohorts/{id}/timetable", get(timetable))
        .route(
            "/cohorts/{id}/learners/{learner}/transcript",
            get(transcript),
        )
        .route("/field-studies/{id}/history", get(history))
        .route("/cohorts/{id}/complaints", get(complaints::register))
        .route(
            "/cohorts/{id}/timetable.ics",
            get(export::http_cohort_calendar),
        )
        .route(
            "/cohorts/{id}/learners/{learner}/timetable.ics",
            get(export::http_learner_calendar),
        )
        .route(
            "/cohorts/{id}/learners/{learner}/transcript.clr",
            get(export::http_clr),
        )
        .route(
            "/cohorts/{id}/learners/{learner}/clr.json",
            get(export::http_clr),
        )
        .route(
            "/cohorts/{id}/learners/{learner}/transcript.jwt",
            get(crate::signing::http::transcript_jwt),
        )
        .route("/audit/digests", get(crate::signing::http::digests))
        .route("/audit/digests/{id}", get(crate::signing::http::digest))
        .route("/field-studies/{id}/xapi", get(export::http_xapi))
        .route("/events/stream", get(crate::http::event_stream::stream))
        .route(
            "/events/{stream_type}/{stream_id}/{stream_version}",
            get(crate::http::event_stream::one),
        )
        .route(
            "/subjects/{subject_id}/export",
            get(crate::subjects::http_export),
        )
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::http::openapi::document()) }),
        )
        .route(
            "/docs",
            get(|| async { axum::response::Html(crate::http::openapi::docs_page()) }),
        )
        .route("/readyz", get(crate::http::health::readyz))
        .route("/metrics", get(crate::http::metrics::scrape))
        .merge(crate::http::audit::routes())
        .merge(crate::research::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware::authenticate,
        ))
        // What verifiers fetch, without a token (after the API's layer): the public keys and
        // the revocation lists (keys and bits, no personal data).
        .route("/.well-known/jwks.json", get(crate::signing::http::jwks))
        .route(
            "/.well-known/did.json",
            get(crate::signing::http::did_document),
        )
        .route(
            "/credentials/status/{cohort}",
            get(crate::signing::http::status_list),
        )
        // The API's and the verifiers' routes (the pages answer bad paths in French).
        .layer(axum::middleware::from_fn(refuse_control_characters))
        // The pages (after the API's layer: they authenticate themselves, by cookie).
        .merge(crate::pages::routes(state.clone()))
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(state.request_timeout_secs),
        ))
        .with_state(state)
}

/// The HTTP status of an outcome (FORMAT.md: `not_found` 404, `already_exists` and `conflict`
/// 409, `invalid` 422; applied and duplicate 200).
pub fn status_of(outcome: &Outcome) -> StatusCode {
    match outcome {
        Outcome::Applied { .. } | Outcome::Duplicate { .. } => StatusCode::OK,
        Outcome::Rejected { code, .. } => match code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Conflict => StatusCode::CONFLICT,
            Code::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        },
    }
}

/// Whether `who` may send `envelope` (the role table; for a field study command the cohort is
/// the field study's).
async fn may_send(
    state: &AppState,
    who: &Principal,
    envelope: &CommandEnvelope,
) -> anyhow::Result<bool> {
    if who.role == Role::Staff {
        return Ok(true);
    }
    let name = envelope.command.as_str();
    // Ask the table first with the caller's own cohort: a command the role may never send is
    // refused without any look-up.
    if !auth::policy::allows(
        who,
        &Access::Command {
            name,
            cohort: who.cohort.as_deref(),
        },
    ) {
        return Ok(false);
    }
    let cohort = match envelope
        .data
        .get("field_study_id")
        .and_then(serde_json::Value::as_str)
    {
        Some(study) => {
            auth::middleware::field_study_scope(state, study, who)
                .await?
                .0
        }
        None => envelope
            .data
            .get("cohort_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    };
    Ok(auth::policy::allows(
        who,
        &Access::Command {
            name,
            cohort: cohort.as_deref(),
        },
    ))
}

async fn post_command(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(axum::Extension(principal)) = principal else {
        return auth::middleware::unauthenticated("send an API token: Authorization: Bearer ftk_…");
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            return rejected(
                Code::Invalid,
                &format!(
                    "body: not readable or larger than the limit of {} bytes ({e})",
                    state.body_limit
                ),
            )
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return rejected(Code::Invalid, "the body is not UTF-8 text");
    };
    let envelope = match CommandEnvelope::parse_line(text) {
        Ok(envelope) => envelope,
        Err(r) => return rejected(r.code, &r.message),
    };
    match may_send(&state, &principal, &envelope).await {
        Ok(true) => {}
        Ok(false) => {
            return auth::middleware::forbidden(&principal, &format!("send {}", envelope.command))
        }
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"outcome": "unavailable", "message": e.to_string()})),
            )
                .into_response()
        }
    }
    let actor = principal.actor();
    match state
        .handler
        .handle_as(&envelope, chrono::Utc::now(), Some(&actor))
        .await
    {
        Ok(outcome) => {
            let last = match &outcome {
                Outcome::Applied { positions, .. } | Outcome::Duplicate { positions, .. } => {
                    Some(positions[1])
                }
                Outcome::Rejected { .. } => None,
            };
            let mut body = serde_json::to_value(&outcome).unwrap_or_default();
            if let (Some(last), Some(map)) = (last, body.as_object_mut()) {
                map.insert("position".to_owned(), json!(last));
            }
            let mut response = (status_of(&outcome), Json(body)).into_response();
            if let Some(last) = last {
                consistency::with_position(&mut response, last);
            }
            response
        }
        Err(HandleError::Unavailable(m)) => {
            tracing::warn!(error = %m, "command refused: journal unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"outcome": "unavailable", "message": m})),
            )
                .into_response()
        }
        Err(HandleError::Internal(m)) => {
            tracing::error!(error = %m, "command failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"outcome": "error", "message": "internal error; see the server log"})),
            )
                .into_response()
        }
    }
}

/// Whether `text` (a URI's path or query, percent-encoded) encodes a control character
/// (`%00`–`%1F`, `%7F`): no id holds one, and PostgreSQL's text cannot hold a NUL.
fn encodes_control_character(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && ((matches!(w[1], b'0' | b'1') && w[2].is_ascii_hexdigit())
                || (w[1] == b'7' && matches!(w[2], b'f' | b'F')))
    })
}

/// Refuses, before any route reads the journal, a path (`404 not_found`) or a query (`422
/// invalid`) that encodes a control character.
async fn refuse_control_characters(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri();
    if encodes_control_character(uri.path()) {
        return rejected(
            Code::NotFound,
            "no such resource: the path holds a control character",
        );
    }
    if uri.query().is_some_and(encodes_control_character) {
        return rejected(Code::Invalid, "the query holds a control character");
    }
    next.run(request).await
}

fn rejected(code: Code, message: &str) -> Response {
    let status = status_of(&Outcome::Rejected {
        command_id: None,
        code,
        message: String::new(),
    });
    (
        status,
        Json(json!({"outcome": "rejected", "code": code, "message": message})),
    )
        .into_response()
}

async fn document(
    state: &AppState,
    min: consistency::MinPosition,
    kind: &str,
    key: String,
    what: String,
) -> Response {
    let reflected = match min.0 {
        Err(message) => return rejected(Code::Invalid, &message),
        Ok(Some(min)) => match consistency::wait_for(&state.journal, min).await {
            Ok(position) => Ok(position),
            Err(response) => return response,
        },
        Ok(None) => consistency::reflected(&state.journal).await,
    };
    match read::document(&state.journal, kind, &key).await {
        Ok(Some(doc)) => match reflected {
            Ok(position) => consistency::positioned(doc, position),
            Err(_) => Json(doc).into_response(),
        },
        Ok(None) => rejected(Code::NotFound, &format!("no {what}")),
        Err(e) => {
            tracing::warn!(error = %e, "read model unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"outcome": "unavailable", "message": e.to_string()})),
            )
                .into_response()
        }
    }
}

async fn timetable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    as_of: crate::http::audit::AsOf,
    min: consistency::MinPosition,
) -> Response {
    let what = format!("timetable for cohort {id:?}");
    if let Some(answer) = as_of
        .answer(&state.journal, read::TIMETABLE, &id, &what)
        .await
    {
        return answer;
    }
    document(&state, min, read::TIMETABLE, id, what).await
}

async fn transcript(
    State(state): State<AppState>,
    Path((id, learner)): Path<(String, String)>,
    as_of: crate::http::audit::AsOf,
    min: consistency::MinPosition,
) -> Response {
    let what = format!("transcript for learner {learner:?} in cohort {id:?}");
    let key = read::transcript_key(&id, &learner);
    if let Some(answer) = as_of
        .answer(&state.journal, read::TRANSCRIPT, &key, &what)
        .await
    {
        return answer;
    }
    document(&state, min, read::TRANSCRIPT, key, what).await
}

async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    as_of: crate::http::audit::AsOf,
    min: consistency::MinPosition,
    strong: consistency::Consistency,
) -> Response {
    let what = format!("history for field study {id:?}");
    match strong.0 {
        Err(message) => return rejected(Code::Invalid, &message),
        Ok(true) => {
            return match consistency::strong_history(&state.journal, &id).await {
                Ok(Some((doc, position))) => consistency::positioned(doc, position),
                Ok(None) => rejected(Code::NotFound, &format!("no {what}")),
                Err(e) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"outcome": "unavailable", "message": e.to_string()})),
                )
                    .into_response(),
            }
        }
        Ok(false) => {}
    }
    if let Some(answer) = as_of
        .answer(&state.journal, read::HISTORY, &id, &what)
        .await
    {
        return answer;
    }
    document(&state, min, read::HISTORY, id, what).await
}

async fn healthz(State(state): State<AppState>) -> Response {
    let journal = state.journal.head().await.is_ok();
    let postgres = match state.journal.kind() {
        fieldtrail_journal::BackendKind::Postgres => {
            if journal {
                "up"
            } else {
                "down"
            }
        }
        fieldtrail_journal::BackendKind::Sqlite => "unused",
    };
    let nats = state
        .nats
        .as_ref()
        .map(|c| c.connection_state() == async_nats::connection::State::Connected);
    let body = json!({
        "status": "alive",
        "backend": state.journal.kind(),
        "journal": if journal { "up" } else { "down" },
        "postgres": postgres,
        "nats": match nats { Some(true) => "up", Some(false) => "down", None => "disabled" },
        "projector": Roles::name(&state.roles.projector),
        "relay": if state.nats.is_some() { Roles::name(&state.roles.relay) } else { "disabled" },
    });
    Json(body).into_response()
}
