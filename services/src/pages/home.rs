//! `GET /`: what the signed-in role may open, each link checked against the policy.

use super::{cohorts, layout, PageError};
use crate::auth::middleware::field_study_scope;
use crate::auth::{policy, Access, Principal, Role};
use crate::http::AppState;
use crate::read;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

/// `GET /`.
pub async fn page(State(state): State<AppState>, Extension(who): Extension<Principal>) -> Response {
    match links(&state, &who).await {
        Ok(body) => layout::page("Accueil", Some(&who), body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Cohorts the role may reach through one of its pages: those whose timetable it may read,
/// or (jury, learner) its own cohort.
async fn reachable_cohorts(state: &AppState, who: &Principal) -> Result<Vec<String>, PageError> {
    let mut ids = cohorts::visible(state, who).await?;
    if let Some(own) = &who.cohort {
        if !ids.contains(own) {
            ids.push(own.clone());
        }
    }
    Ok(ids)
}

async fn links(state: &AppState, who: &Principal) -> Result<Markup, PageError> {
    let mut sections = Vec::new();
    if who.role != Role::Researcher {
        for cohort in reachable_cohorts(state, who).await? {
            let timetable = policy::allows(who, &Access::Timetable { cohort: &cohort });
            let mut studies = Vec::new();
            for study in cohorts::field_studies(state, &cohort).await? {
                let (of, member) = field_study_scope(state, &study, who)
                    .await
                    .map_err(PageError::journal)?;
                if policy::allows(
                    who,
                    &Access::History {
                        cohort: of.as_deref(),
                        member,
                    },
                ) {
                    studies.push(study);
                }
            }
            let transcript = who.learner.as_deref().filter(|l| {
                policy::allows(
                    who,
                    &Access::Transcript {
                        cohort: &cohort,
                        learner: l,
                    },
                )
            });
            let exists = read::document(&state.journal, read::TIMETABLE, &cohort)
                .await
                .map_err(PageError::journal)?
                .is_some();
            if exists && (timetable || !studies.is_empty() || transcript.is_some()) {
                sections.push((cohort, timetable, studies, transcript.map(str::to_owned)));
            }
        }
    }
    let audit = policy::allows(who, &Access::Audit);
    let research = policy::allows(who, &Access::Research);
    Ok(html! {
        h1 { "Bienvenue" }
        p { "Vous êtes connecté·e avec le rôle " strong { (super::fr::role(who.role)) } " (" (who.name) "). Voici ce que ce rôle permet d'ouvrir." }
        @for (cohort, timetable, studies, transcript) in &sections {
            section.card {
                h2 { "Cohorte " (cohort) }
                ul {
                    @if *timetable { li { a href={ "/cohorts/" (cohort) } { "Emploi du temps, modules et présences" } } }
                    @if let Some(l) = transcript { li { a href={ "/cohorts/" (cohort) "/learners/" (l) } { "Mon relevé de formation" } } }
                    @for s in studies { li { a href={ "/field-studies/" (s) } { "Parcours de l'étude de terrain " (s) } } }
                    @if audit { li { a href={ "/history/cohort/" (cohort) } { "Historique de la cohorte et vérification de la chaîne" } } }
                }
            }
        }
        @if research {
            section.card {
                h2 { "Recherche" }
                p { a href="/research" { "Trajectoires des cohortes (données pseudonymisées)" } }
            }
        }
        @if sections.is_empty() && !research {
            p { "Rien à afficher pour ce rôle dans les pages." }
        }
    })
}
