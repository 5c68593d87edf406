//! `GET /cohorts/{cohort_id}/learners/{learner_id}`: a learner's transcript (half-days per
//! module, defences, certificate). Access: the transcript's ([`Access::Transcript`]).

use super::{check, fr, layout, params, reflected, PageError};
use crate::auth::{Access, Principal};
use crate::http::AppState;
use crate::read;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use fieldtrail_projections::{LearnerStatus, Transcript};
use maud::html;

/// `GET /cohorts/{cohort_id}/learners/{learner_id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ids: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
) -> Response {
    let result = match super::path_or_404(ids) {
        Ok((cohort_id, learner_id)) => render(&state, &who, &cohort_id, &learner_id, &uri).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render(
    state: &AppState,
    who: &Principal,
    cohort_id: &str,
    learner_id: &str,
    uri: &Uri,
) -> Result<Response, PageError> {
    check(
        who,
        &Access::Transcript {
            cohort: cohort_id,
            learner: learner_id,
        },
        "ce relevé",
    )?;
    let position = reflected(state, &params(uri)).await?;
    let document = read::document(
        &state.journal,
        read::TRANSCRIPT,
        &read::transcript_key(cohort_id, learner_id),
    )
    .await
    .map_err(PageError::journal)?
    .ok_or_else(|| {
        PageError::NotFound(format!(
            "Aucun relevé pour « {learner_id} » dans la cohorte « {cohort_id} »."
        ))
    })?;
    let t: Transcript = serde_json::from_value(document).map_err(PageError::journal)?;
    let name = super::cohorts::facts(state, cohort_id)
        .await?
        .and_then(|f| f.learners.into_iter().find(|l| l.learner_id == learner_id))
        .map(|l| l.name)
        .unwrap_or_else(|| learner_id.to_owned());
    let title = format!("Relevé de {name}");
    let body = html! {
        h1 { (title) }
        p { "Cohorte " a href={ "/cohorts/" (cohort_id) } { (cohort_id) } " · apprenant·e " (learner_id) " · "
            (match t.status { LearnerStatus::Active => "en formation", LearnerStatus::Withdrawn => "a abandonné" })
            " · vue à la position " (position) " du journal." }
        table {
            caption { "Demi-journées par module" }
            thead { tr { th scope="col" { "Module" } th scope="col" { "Tenues" } th scope="col" { "Présent·e" } th scope="col" { "Excusé·e" } th scope="col" { "Absent·e" } } }
            tbody {
                @for m in &t.modules {
                    tr { th scope="row" { (m.module_id) } td { (m.held_half_days) } td { (m.attended_half_days) } td { (m.excused_half_days) } td { (m.absent_half_days) } }
                }
            }
        }
        h2 { "Étude de terrain" }
        p { @match &t.field_study_id { Some(s) => { a href={ "/field-studies/" (s) } { (s) } } None => { "aucune" } } }
        h2 { "Soutenances" }
        @if t.defences.is_empty() { p { "Aucune soutenance." } }
        ul { @for d in &t.defences {
            li { (d.defence_id) " : " (fr::result(serde_json::to_value(d.result).ok().and_then(|v| v.as_str().map(str::to_owned)).as_deref().unwrap_or(""))) }
        } }
        h2 { "Certificat" }
        p {
            @match &t.certificate_awarded_on {
                Some(d) => { "Délivré le " (chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_or_else(|_| d.clone(), fr::date_long)) "." }
                None => { "Pas encore délivré." }
            }
            @if t.deis_credit { " Crédit DEIS enregistré." }
        }
    };
    Ok(layout::page(&title, Some(who), body).into_response())
}
