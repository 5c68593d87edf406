//! `GET /cohorts`: the cohorts whose timetable the role may read; and what other pages need
//! to know about cohorts (their title and learners, from the cohort's stream).

use super::{layout, PageError};
use crate::auth::{policy, Access, Principal};
use crate::http::AppState;
use crate::read;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use fieldtrail_domain::{AnyEvent, CohortEvent};
use fieldtrail_journal::StreamQuery;
use maud::html;

/// A learner as enrolled (personal data: shown only to roles that may read the register).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learner {
    /// Id.
    pub learner_id: String,
    /// Name as enrolled.
    pub name: String,
    /// On the DEIS pathway.
    pub deis_pathway: bool,
    /// Withdrawn.
    pub withdrawn: bool,
}

/// What the cohort's stream says about the cohort itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CohortFacts {
    /// Title.
    pub title: String,
    /// First day, `YYYY-MM-DD`.
    pub starts_on: Option<chrono::NaiveDate>,
    /// Last day.
    pub ends_on: Option<chrono::NaiveDate>,
    /// Closed.
    pub closed: bool,
    /// Learners in enrolment order.
    pub learners: Vec<Learner>,
}

/// The facts of `cohort_id`, folded from its stream; `None` for an unknown cohort.
///
/// # Errors
/// When the journal fails.
pub async fn facts(state: &AppState, cohort_id: &str) -> Result<Option<CohortFacts>, PageError> {
    let events = state
        .journal
        .stream("cohort", cohort_id, 0)
        .await
        .map_err(PageError::journal)?;
    if events.is_empty() {
        return Ok(None);
    }
    let mut facts = CohortFacts::default();
    for e in &events {
        let Ok(AnyEvent::Cohort(event)) =
            AnyEvent::decode(&e.stream_type, &e.event_type, &e.event_version, &e.payload)
        else {
            continue;
        };
        match event {
            CohortEvent::CohortOpened {
                title,
                starts_on,
                ends_on,
                ..
            } => {
                facts.title = title;
                facts.starts_on = Some(starts_on);
                facts.ends_on = Some(ends_on);
            }
            CohortEvent::LearnerEnrolled {
                learner_id,
                name,
                deis_pathway,
                ..
            } => facts.learners.push(Learner {
                learner_id: learner_id.to_string(),
                name,
                deis_pathway,
                withdrawn: false,
            }),
            CohortEvent::LearnerWithdrew { learner_id, .. } => {
                if let Some(l) = facts
                    .learners
                    .iter_mut()
                    .find(|l| l.learner_id == learner_id.as_str())
                {
                    l.withdrawn = true;
                }
            }
            CohortEvent::CohortClosed { .. } => facts.closed = true,
            _ => {}
        }
    }
    Ok(Some(facts))
}

/// The field studies formed in `cohort_id`, in the order formed.
///
/// # Errors
/// When the journal fails.
pub async fn field_studies(state: &AppState, cohort_id: &str) -> Result<Vec<String>, PageError> {
    state
        .journal
        .find_streams(StreamQuery::FieldStudiesOf { cohort_id })
        .await
        .map_err(PageError::journal)
}

/// Every cohort with a timetable whose timetable `who` may read, sorted by id.
///
/// # Errors
/// When the journal fails.
pub async fn visible(state: &AppState, who: &Principal) -> Result<Vec<String>, PageError> {
    let documents = read::all_documents(&state.journal)
        .await
        .map_err(PageError::journal)?;
    Ok(documents
        .into_iter()
        .filter(|(kind, key, _)| {
            kind == read::TIMETABLE && policy::allows(who, &Access::Timetable { cohort: key })
        })
        .map(|(_, key, _)| key)
        .collect())
}

/// `GET /cohorts`.
pub async fn page(State(state): State<AppState>, Extension(who): Extension<Principal>) -> Response {
    match list(&state, &who).await {
        Ok(markup) => layout::page("Cohortes", Some(&who), markup).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list(state: &AppState, who: &Principal) -> Result<maud::Markup, PageError> {
    if !layout::may_list_cohorts(who) {
        return Err(PageError::Forbidden(format!(
            "Votre rôle ({}) ne permet pas de consulter les emplois du temps des cohortes.",
            super::fr::role(who.role)
        )));
    }
    let mut rows = Vec::new();
    for id in visible(state, who).await? {
        let facts = facts(state, &id).await?.unwrap_or_default();
        rows.push((id, facts));
    }
    Ok(html! {
        h1 { "Cohortes" }
        @if rows.is_empty() {
            p { "Aucune cohorte à afficher." }
        } @else {
            table {
                caption { "Les cohortes que votre rôle permet d'ouvrir" }
                thead { tr { th scope="col" { "Cohorte" } th scope="col" { "Période" } th scope="col" { "État" } } }
                tbody {
                    @for (id, facts) in &rows {
                        tr {
                            td { a href={ "/cohorts/" (id) } { (if facts.title.is_empty() { id.as_str() } else { facts.title.as_str() }) } " " small { "(" (id) ")" } }
                            td {
                                @if let (Some(s), Some(e)) = (facts.starts_on, facts.ends_on) {
                                    "du " (super::fr::date_short(s)) " au " (super::fr::date_short(e))
                                }
                            }
                            td { @if facts.closed { "close" } @else { "ouverte" } }
                        }
                    }
                }
            }
        }
    })
}
