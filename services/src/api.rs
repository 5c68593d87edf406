//! The HTTP API (axum): commands in, read models out.
//!
//! | route | answer |
//! |---|---|
//! | `POST /commands` | one envelope; 200 applied or duplicate, 404/409/422 rejected (FORMAT.md), 503 journal away |
//! | `GET /cohorts/{id}/timetable` | the timetable document |
//! | `GET /cohorts/{id}/learners/{learner}/transcript` | the transcript document |
//! | `GET /field-studies/{id}/history` | the evaluation history document |
//! | `GET /healthz` | process alive; says whether PostgreSQL and NATS answer |

use crate::handler::{CommandHandler, HandleError, Outcome};
use crate::leader::Roles;
use crate::read;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deadpool_postgres::Pool;
use fieldtrail_domain::Code;
use serde_json::json;
use std::sync::Arc;

/// Largest accepted request body (bytes).
pub const BODY_LIMIT: usize = 256 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The command handler.
    pub handler: Arc<CommandHandler>,
    /// The pool read models are read from.
    pub pool: Pool,
    /// The NATS connection, if the relay runs in this process.
    pub nats: Option<async_nats::Client>,
    /// What this process leads (projector, relay).
    pub roles: Arc<crate::leader::Roles>,
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
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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

async fn post_command(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            return rejected(
                Code::Invalid,
                &format!("body: not readable or larger than the limit of {BODY_LIMIT} bytes ({e})"),
            )
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return rejected(Code::Invalid, "the body is not UTF-8 text");
    };
    match state.handler.handle_json(text, chrono::Utc::now()).await {
        Ok(outcome) => (status_of(&outcome), Json(outcome)).into_response(),
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

async fn document(state: &AppState, kind: &str, key: String, what: String) -> Response {
    match read::document(&state.pool, kind, &key).await {
        Ok(Some(doc)) => Json(doc).into_response(),
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

async fn timetable(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let what = format!("timetable for cohort {id:?}");
    document(&state, read::TIMETABLE, id, what).await
}

async fn transcript(
    State(state): State<AppState>,
    Path((id, learner)): Path<(String, String)>,
) -> Response {
    let what = format!("transcript for learner {learner:?} in cohort {id:?}");
    document(
        &state,
        read::TRANSCRIPT,
        read::transcript_key(&id, &learner),
        what,
    )
    .await
}

async fn history(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let what = format!("history for field study {id:?}");
    document(&state, read::HISTORY, id, what).await
}

async fn healthz(State(state): State<AppState>) -> Response {
    let postgres = match state.pool.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let nats = state
        .nats
        .as_ref()
        .map(|c| c.connection_state() == async_nats::connection::State::Connected);
    let body = json!({
        "status": "alive",
        "postgres": if postgres { "up" } else { "down" },
        "nats": match nats { Some(true) => "up", Some(false) => "down", None => "disabled" },
        "projector": Roles::name(&state.roles.projector),
        "relay": Roles::name(&state.roles.relay),
    });
    Json(body).into_response()
}
