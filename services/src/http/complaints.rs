//! `GET /cohorts/{id}/complaints`: the complaints register of a cohort (FORMAT.md, "Second
//! vocabulary"), stored or `as_of` like the other read models, with the same `min_position`
//! and `position` answers. Staff and auditors read every complaint; a learner of the cohort
//! reads the register narrowed to their own complaints ([`crate::read::own_complaints`]);
//! other roles are refused by the role table before this runs.

use crate::auth::{Principal, Role};
use crate::http::audit::AsOf;
use crate::http::{consistency, AppState};
use crate::read;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use fieldtrail_journal::audit::Cut;
use serde_json::{json, Value};

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    crate::http::audit::refused(status, code, message)
}

fn unavailable(e: &anyhow::Error) -> Response {
    tracing::warn!(error = %e, "complaints register unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"outcome": "unavailable", "message": e.to_string()})),
    )
        .into_response()
}

/// The register as the caller may read it.
fn for_caller(register: Value, who: Option<&Principal>) -> Value {
    match who {
        Some(p) if p.role == Role::Learner => {
            read::own_complaints(register, p.learner.as_deref().unwrap_or(""))
        }
        _ => register,
    }
}

/// The route's handler.
pub async fn register(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    as_of: AsOf,
    min: consistency::MinPosition,
) -> Response {
    let who = principal.as_ref().map(|Extension(p)| p);
    let what = format!("complaints register for cohort {id:?}");
    let cut = match as_of.0 {
        Err(message) => return refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &message),
        Ok(cut) => cut,
    };
    if let Some(cut) = cut {
        let head = match state.journal.head().await {
            Ok(head) => head,
            Err(e) => return unavailable(&e.into()),
        };
        let reflected = match cut {
            Cut::Position(p) => p.min(head),
            Cut::Recorded(_) | Cut::Occurred(_) => head,
        };
        return match crate::audit::document_as_of(&state.journal, read::COMPLAINTS, &id, cut).await
        {
            Ok(Some(doc)) => consistency::positioned(for_caller(doc, who), reflected),
            Ok(None) => refused(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no {what} {cut}"),
            ),
            Err(e) => unavailable(&e),
        };
    }
    let reflected = match min.0 {
        Err(message) => return refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &message),
        Ok(Some(min)) => match consistency::wait_for(&state.journal, min).await {
            Ok(position) => Some(position),
            Err(response) => return response,
        },
        Ok(None) => consistency::reflected(&state.journal).await.ok(),
    };
    match read::complaints_register(&state.journal, &id).await {
        Ok(Some(doc)) => {
            let doc = for_caller(doc, who);
            match reflected {
                Some(position) => consistency::positioned(doc, position),
                None => Json(doc).into_response(),
            }
        }
        Ok(None) => refused(StatusCode::NOT_FOUND, "not_found", &format!("no {what}")),
        Err(e) => unavailable(&e),
    }
}
