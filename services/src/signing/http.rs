//! The routes of signing:
//!
//! | route | answer | who |
//! |---|---|---|
//! | `GET /.well-known/jwks.json` | every key ever used, JWK Set (RFC 7517) | anyone |
//! | `GET /.well-known/did.json` | the issuer's `did:web` DID document, every key ever used | anyone |
//! | `GET /credentials/status/{cohort}` | the cohort's revocation list, `BitstringStatusListCredential` as a VC-JWT | anyone |
//! | `GET /cohorts/{id}/learners/{learner}/transcript.jwt` | the CLR 2.0 credential as a VC-JWT | as `transcript.clr` |
//! | `GET /audit/digests` | every signed digest kept, JSON | auditor, staff |
//! | `GET /audit/digests/{id}` | one signed digest, its JWS (the file `audit verify --digest` reads) | auditor, staff |
//!
//! The key lists are the keys directory's and those the journal keeps
//! ([`crate::signing::published`]): losing the directory loses no published key. With no key
//! anywhere (`fieldtrail keys init` not run), every route answers 503 naming the command, the
//! key lists included (never an empty list), and no answer names a server path; so does a
//! keys directory whose manifest is damaged or unreadable. Only trusted keys are published
//! (those of the directory, the pinned roots, and the keys their endorsements lead to:
//! [`crate::signing::published`]); the journal's others are logged as a warning. The public
//! routes hold no personal data: keys, and bits.

use crate::export::{publisher_from_env, transcript_clr, ExportError};
use crate::http::AppState;
use crate::signing::keys::{self, KeyError};
use crate::signing::published::{self, Union};
use crate::signing::{credential_jwt, VC_JWT_MEDIA_TYPE};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fieldtrail_domain::StreamKind;
use fieldtrail_projections::formats::status;
use fieldtrail_projections::store::recorded;
use serde_json::json;

/// 503 for a key that cannot be used: the answer says what the operator has to do, never where
/// the keys are (the full error, with its path, goes to the log).
fn key_error(e: &KeyError) -> Response {
    match e {
        KeyError::NoKey(_) => tracing::warn!(error = %e, "signing: no key"),
        _ => tracing::error!(error = %e, "signing: the key cannot be used"),
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"outcome": "unavailable", "message": e.public_message()})),
    )
        .into_response()
}

fn export_error(e: &ExportError) -> Response {
    let (status, outcome, code) = match e {
        ExportError::NotFound(_) => (StatusCode::NOT_FOUND, "rejected", Some("not_found")),
        ExportError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
        ExportError::Internal(_) => {
            tracing::error!(error = %e, "signed export failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error", None)
        }
    };
    let mut body = json!({"outcome": outcome, "message": e.to_string()});
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    (status, Json(body)).into_response()
}

fn jwt(media_type: &'static str, token: String) -> Response {
    ([(header::CONTENT_TYPE, media_type)], token).into_response()
}

/// The published keys ([`published::union`]: the keys directory's and the journal's), what
/// could not be read logged; `Err` (a 503) when there is no key to publish at all, never an
/// empty list.
async fn published_keys(state: &AppState) -> Result<Union, Response> {
    let union = published::union(&state.journal, &state.keys).await;
    if let Some(e) = &union.dir_error {
        // A damaged or unreadable directory is the trust anchor of the keys: nothing is
        // published until it is repaired, as the CLI refuses it (a missing directory is no
        // error: it holds no key).
        return Err(key_error(e));
    }
    for e in &union.journal_errors {
        tracing::error!(error = %e, "signing: a published key the journal keeps is left out");
    }
    for k in &union.untrusted {
        tracing::warn!(kid = %k.record.kid, reason = %k.reason,
                       "signing: a key the journal keeps is not trusted and not published");
    }
    if union.keys.is_empty() {
        tracing::warn!(keys_dir = %state.keys.dir().display(), "signing: no key to publish (neither the keys directory nor the journal has one)");
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"outcome": "unavailable",
                        "message": "no signing key is published: the operator has to run `fieldtrail keys init` on the server"})),
        )
            .into_response());
    }
    if !union.keys.iter().any(|k| k.in_dir) {
        tracing::warn!(keys_dir = %state.keys.dir().display(), "signing: the keys directory holds no key; publishing the keys the journal keeps");
    }
    Ok(union)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    match published_keys(&state).await {
        Ok(union) => (
            [(header::CONTENT_TYPE, "application/jwk-set+json")],
            Json(union.jwks()),
        )
            .into_response(),
        Err(answer) => answer,
    }
}

/// `GET /.well-known/did.json`.
pub async fn did_document(State(state): State<AppState>) -> Response {
    let publisher = match publisher_from_env() {
        Ok(p) => p,
        Err(e) => return export_error(&e),
    };
    match published_keys(&state).await {
        Ok(union) => (
            [(header::CONTENT_TYPE, "application/did+json")],
            Json(keys::did_document(&publisher.did(), &union.records())),
        )
            .into_response(),
        Err(answer) => answer,
    }
}

/// `GET /credentials/status/{cohort}`.
pub async fn status_list(State(state): State<AppState>, Path(cohort): Path<String>) -> Response {
    let publisher = match publisher_from_env() {
        Ok(p) => p,
        Err(e) => return export_error(&e),
    };
    let events = match state.journal.stream(StreamKind::COHORT, &cohort, 0).await {
        Ok(rows) => rows.iter().map(recorded).collect::<Result<Vec<_>, _>>(),
        Err(e) => return export_error(&e.into()),
    };
    let events = match events {
        Ok(events) if !events.is_empty() => events,
        Ok(_) => return export_error(&ExportError::NotFound(format!("no cohort {cohort:?}"))),
        Err(e) => return export_error(&e.into()),
    };
    let credential = status::list_credential(&publisher, &cohort, &events);
    match credential_jwt(&state.keys, &publisher, &credential) {
        Ok(token) => jwt(VC_JWT_MEDIA_TYPE, token),
        Err(e) => key_error(&e),
    }
}

/// `GET /cohorts/{id}/learners/{learner}/transcript.jwt`.
pub async fn transcript_jwt(
    State(state): State<AppState>,
    Path((id, learner)): Path<(String, String)>,
) -> Response {
    let publisher = match publisher_from_env() {
        Ok(p) => p,
        Err(e) => return export_error(&e),
    };
    let credential = match transcript_clr(&state.journal, &publisher, &id, &learner).await {
        Ok(c) => c,
        Err(e) => return export_error(&e),
    };
    match credential_jwt(&state.keys, &publisher, &credential) {
        Ok(token) => jwt(VC_JWT_MEDIA_TYPE, token),
        Err(e) => key_error(&e),
    }
}

/// `GET /audit/digests`.
pub async fn digests(State(state): State<AppState>) -> Response {
    match state.journal.digests().await {
        Ok(list) => Json(json!({"digests": list})).into_response(),
        Err(e) => export_error(&e.into()),
    }
}

/// `GET /audit/digests/{id}`.
pub async fn digest(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(number) = id.parse::<i64>() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"outcome": "rejected", "code": "invalid",
                        "message": format!("digest id: expected a number, got {id:?}")})),
        )
            .into_response();
    };
    match state.journal.digests().await {
        Ok(list) => match list.into_iter().find(|d| d.digest_id == number) {
            Some(d) => jwt("application/jwt", d.jws),
            None => export_error(&ExportError::NotFound(format!("no signed digest {number}"))),
        },
        Err(e) => export_error(&e.into()),
    }
}
