//! `GET /field-studies/{field_study_id}`: a field study's tentative path: the commission's
//! versions (with what changed from one to the next), the hypotheses stated, revised and
//! abandoned, the interventions, the reflexive notes (only for the roles allowed to read
//! them, [`Access::ReflexiveNotes`]), the productions, the defences and their outcomes, and
//! every event in the order recorded.
//!
//! **As-of control** (a form, so the state is in the URL): `?date=YYYY-MM-DD&heure=HH:MM`
//! (Europe/Paris; 23:59:59 without `heure`) with `horloge=occurred` (as it happened: events
//! whose `occurred_at` is at or before it) or `horloge=recorded` (as recorded: `recorded_at`),
//! or `?position=N` (the journal cut at a global position). The API's own `as_of`,
//! `as_of_occurred` and `as_of_position` are accepted too. The document is the API's
//! `as_of` answer ([`crate::audit::document_as_of`]); no live updates on a past view.
//! Access: the history's ([`Access::History`]).

use super::{answer, as_of, check, fr, params, PageError};
use crate::auth::middleware::field_study_scope;
use crate::auth::{policy, Access, Principal};
use crate::http::AppState;
use crate::read;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use fieldtrail_domain::{AnyEvent, FieldStudyEvent};
use fieldtrail_projections::History;
use maud::{html, Markup};
use std::collections::BTreeSet;

/// One event of the study's stream, decoded, with its envelope.
struct Step {
    position: i64,
    occurred_at: DateTime<Utc>,
    actor: String,
    event: FieldStudyEvent,
}

/// `GET /field-studies/{field_study_id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    study: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    let result = match super::path_or_404(study) {
        Ok(study) => render(&state, &who, &study, &uri).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn render(
    state: &AppState,
    who: &Principal,
    study: &str,
    uri: &Uri,
) -> Result<Response, PageError> {
    let (cohort, member) = field_study_scope(state, study, who)
        .await
        .map_err(PageError::journal)?;
    check(
        who,
        &Access::History {
            cohort: cohort.as_deref(),
            member,
        },
        "le parcours de cette étude de terrain",
    )?;
    let notes_allowed = policy::allows(
        who,
        &Access::ReflexiveNotes {
            cohort: cohort.as_deref(),
            member,
        },
    );
    let unknown = || PageError::NotFound(format!("Aucune étude de terrain « {study} »."));
    if cohort.is_none() {
        return Err(unknown());
    }
    let params = params(uri);
    let (cut, control) = as_of::cut(&params).map_err(PageError::Invalid)?;
    let (history, position): (Option<History>, _) =
        super::document_then(state, &params, read::HISTORY, study, cut, unknown).await?;
    let kept: BTreeSet<i64> = history
        .iter()
        .flat_map(|h| h.entries.iter().map(|e| e.position))
        .collect();
    let steps: Vec<Step> = state
        .journal
        .stream("field_study", study, 0)
        .await
        .map_err(PageError::journal)?
        .into_iter()
        .filter(|e| kept.contains(&e.position))
        .filter_map(|e| {
            match AnyEvent::decode(&e.stream_type, &e.event_type, &e.event_version, &e.payload) {
                Ok(AnyEvent::FieldStudy(event)) => Some(Step {
                    position: e.position,
                    occurred_at: e.occurred_at,
                    actor: e.actor,
                    event,
                }),
                _ => None,
            }
        })
        .collect();
    let live_allowed = position.is_some() && policy::allows(who, &Access::EventStream);
    let cohort = cohort.unwrap_or_default();
    let title = format!("Étude de terrain {study}");
    let before = html! {
        h1 { (title) }
        p { "Cohorte " a href={ "/cohorts/" (cohort) } { (cohort) } "."
            @if policy::allows(who, &Access::Audit) {
                " " a href={ "/history/field_study/" (study) } { "Historique et vérification de la chaîne" }
            }
        }
        (as_of::form(&format!("/field-studies/{study}"), "Voir l'étude telle qu'elle était", &control, cut.is_some()))
    };
    let live = html! {
        div #live
            data-live-stream=[live_allowed.then(|| format!("field_study/{study}"))]
            data-position=[position] {
            @match (&history, cut) {
                (None, Some(cut)) => {
                    p.as-of role="status" { (as_of::describe(cut)) " : l'étude n'existait pas encore." }
                }
                (None, None) => {}
                (Some(history), _) => {
                    @if let Some(cut) = cut {
                        p.as-of role="status" { strong { (as_of::describe(cut)) } " — " (history.entries.len()) " faits retenus." }
                    } @else if let Some(p) = position {
                        p.live-status aria-live="polite" {
                            @if live_allowed { "Mises à jour en direct (position " (p) ")." }
                            @else { "Vue à la position " (p) " du journal." }
                        }
                    }
                    (path(history, &steps, notes_allowed))
                }
            }
        }
    };
    Ok(answer(&params, &title, who, before, live))
}

fn when(step: &Step) -> Markup {
    html! {
        time datetime=(step.occurred_at.to_rfc3339()) { (fr::datetime(&step.occurred_at)) }
    }
}

/// A commission version: its step, number, brief, deliverables and renegotiation reason.
type Version<'a> = (&'a Step, u32, &'a str, &'a [String], Option<&'a str>);

fn path(history: &History, steps: &[Step], notes_allowed: bool) -> Markup {
    use FieldStudyEvent as E;
    let mut versions: Vec<Version<'_>> = Vec::new();
    let mut agreed: BTreeSet<u32> = BTreeSet::new();
    for step in steps {
        match &step.event {
            E::CommissionNegotiated {
                version,
                brief,
                deliverables,
                ..
            } => {
                versions.push((step, *version, brief, deliverables, None));
            }
            E::CommissionRenegotiated {
                version,
                brief,
                deliverables,
                reason,
                ..
            } => {
                versions.push((step, *version, brief, deliverables, Some(reason.as_str())));
            }
            E::CommissionAgreed { version, .. } => {
                agreed.insert(*version);
            }
            _ => {}
        }
    }
    let organisation = steps.iter().find_map(|s| match &s.event {
        E::FieldStudyFormed { organisation, .. } => Some(organisation),
        _ => None,
    });
    html! {
        section aria-labelledby="groupe" {
            h2 #groupe { "Le groupe et la structure commanditaire" }
            @if let Some(o) = organisation {
                p { "Commanditaire : " strong { (o.name) } " (" (o.sector) ")." }
            }
            p { "Membres : " (history.members.join(", ")) "." }
            @if let Some(from) = &history.split_from {
                p { "Issu de la scission du groupe " a href={ "/field-studies/" (from) } { (from) } "." }
            }
            @for split in &history.split_into {
                p {
                    "Scission le " (fr::datetime_short_text(&split.occurred_at)) " : "
                    (split.members.join(", ")) " forment le groupe "
                    a href={ "/field-studies/" (split.field_study_id) } { (split.field_study_id) } "."
                }
            }
        }
        section aria-labelledby="commande" {
            h2 #commande { "La commande, version après version" }
            @if versions.is_empty() { p { "Pas encore de commande négociée." } }
            ol.commission {
                @for (i, (step, version, brief, deliverables, reason)) in versions.iter().enumerate() {
                    li.version data-version=(version) {
                        h3 { "Version " (version) " — " (when(step))
                            @if agreed.contains(version) { " " span.badge { "validée" } } }
                        p.brief { (brief) }
                        p { "Livrables : " (deliverables.join(", ")) }
                        @if let Some(reason) = reason { p { "Motif de la renégociation : " em { (reason) } } }
                        @if i > 0 {
                            @let (_, _, old_brief, old_deliverables, _) = versions[i - 1];
                            (changes(old_brief, old_deliverables, brief, deliverables))
                        }
                    }
                }
            }
        }
        (hypotheses(steps))
        (interventions(steps))
        (notes(steps, notes_allowed))
        (productions(steps))
        (defences(steps))
        (timeline(history, steps))
    }
}

fn changes(old_brief: &str, old: &[String], brief: &str, new: &[String]) -> Markup {
    let added: Vec<&String> = new.iter().filter(|d| !old.contains(d)).collect();
    let removed: Vec<&String> = old.iter().filter(|d| !new.contains(d)).collect();
    html! {
        div.changes {
            h4 { "Ce qui a changé depuis la version précédente" }
            ul {
                @if old_brief != brief {
                    li { "Commande : " del { (old_brief) } " → " ins { (brief) } }
                }
                @for d in &added { li { "Livrable ajouté : " ins { (d) } } }
                @for d in &removed { li { "Livrable retiré : " del { (d) } } }
                @if old_brief == brief && added.is_empty() && removed.is_empty() { li { "Rien dans la commande ni les livrables." } }
            }
        }
    }
}

fn hypotheses(steps: &[Step]) -> Markup {
    use FieldStudyEvent as E;
    let mut ids: Vec<&str> = Vec::new();
    for s in steps {
        if let E::HypothesisStated { hypothesis_id, .. } = &s.event {
            ids.push(hypothesis_id.as_str());
        }
    }
    html! {
        section aria-labelledby="hypotheses" {
            h2 #hypotheses { "Hypothèses" }
            @if ids.is_empty() { p { "Aucune hypothèse formulée." } }
            @for id in &ids {
                article.hypothesis data-hypothesis=(id) {
                    h3 { "Hypothèse " (id) }
                    ol {
                        @for s in steps {
                            @match &s.event {
                                E::HypothesisStated { hypothesis_id, text, .. } if hypothesis_id.as_str() == *id => {
                                    li { "Formulée le " (when(s)) " : « " (text) " »" }
                                }
                                E::HypothesisRevised { hypothesis_id, text, reason, .. } if hypothesis_id.as_str() == *id => {
                                    li { "Révisée le " (when(s)) " : « " (text) " » — motif : " em { (reason.as_str()) } }
                                }
                                E::HypothesisAbandoned { hypothesis_id, reason, .. } if hypothesis_id.as_str() == *id => {
                                    li.abandoned { strong { "Abandonnée" } " le " (when(s)) " — motif : " em { (reason.as_str()) } }
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }
}

fn interventions(steps: &[Step]) -> Markup {
    html! {
        section aria-labelledby="interventions" {
            h2 #interventions { "Interventions" }
            @if !steps.iter().any(|s| matches!(s.event, FieldStudyEvent::InterventionLogged { .. })) {
                p { "Aucune intervention." }
            }
            ul {
                @for s in steps {
                    @if let FieldStudyEvent::InterventionLogged { intervention_id, kind, summary, participants, .. } = &s.event {
                        li data-intervention=(intervention_id) { (when(s)) " — " strong { (kind) } " (" (participants) " participant·es) : " (summary) }
                    }
                }
            }
        }
    }
}

fn notes(steps: &[Step], allowed: bool) -> Markup {
    let count = steps
        .iter()
        .filter(|s| matches!(s.event, FieldStudyEvent::ReflexiveNoteRecorded { .. }))
        .count();
    html! {
        section aria-labelledby="notes" {
            h2 #notes { "Notes réflexives" }
            @if count == 0 {
                p { "Aucune note réflexive." }
            } @else if !allowed {
                p { (count) " note(s) réflexive(s) ; leur texte n'est pas visible pour votre rôle." }
            } @else {
                ul {
                    @for s in steps {
                        @if let FieldStudyEvent::ReflexiveNoteRecorded { note_id, session_id, text, .. } = &s.event {
                            li.note data-note=(note_id) {
                                (when(s)) " — " (s.actor)
                                @if let Some(session) = session_id { " (séance " (session) ")" }
                                blockquote { (text) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn productions(steps: &[Step]) -> Markup {
    html! {
        section aria-labelledby="productions" {
            h2 #productions { "Productions écrites" }
            @if !steps.iter().any(|s| matches!(s.event, FieldStudyEvent::ProductionSubmitted { .. })) {
                p { "Aucune production déposée." }
            }
            ol {
                @for s in steps {
                    @if let FieldStudyEvent::ProductionSubmitted { version, title, pages, .. } = &s.event {
                        li { "Version " (version) ", déposée le " (when(s)) " : « " (title) " » (" (pages) " pages)" }
                    }
                }
            }
        }
    }
}

fn defences(steps: &[Step]) -> Markup {
    use FieldStudyEvent as E;
    html! {
        section aria-labelledby="soutenances" {
            h2 #soutenances { "Soutenances" }
            @if !steps.iter().any(|s| matches!(s.event, FieldStudyEvent::DefenceScheduled { .. })) {
                p { "Aucune soutenance programmée." }
            }
            ul {
                @for s in steps {
                    @match &s.event {
                        E::DefenceScheduled { defence_id, at, jury, .. } => {
                            li data-defence=(defence_id) {
                                "Soutenance " (defence_id) " programmée pour le " (fr::datetime(&at.with_timezone(&Utc)))
                                " ; jury : "
                                (jury.iter().map(|j| format!("{} ({})", j.name, match serde_json::to_value(j.role).ok().and_then(|v| v.as_str().map(str::to_owned)).as_deref() { Some("professional") => "professionnel·le", Some("training_centre") => "centre de formation", _ => "" })).collect::<Vec<_>>().join(", "))
                            }
                        }
                        E::DefencePassed { defence_id, learner_id, remarks, .. }
                        | E::DefenceDeferred { defence_id, learner_id, remarks, .. }
                        | E::DefenceFailed { defence_id, learner_id, remarks, .. } => {
                            @let result = s.event.defence_result().map_or("", |(_, _, r)| r.as_str());
                            li { "Soutenance " (defence_id) ", " (learner_id) " : " strong { (fr::result(result)) } " — " (remarks) }
                        }
                        E::JuryMemberRecused { .. } | E::JuryMemberAppointed { .. } | E::DefenceResultRectified { .. } | E::DefenceCancelled { .. } => {
                            li { (fr::field_study_summary(&s.event)) }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn timeline(history: &History, steps: &[Step]) -> Markup {
    let summary = |position: i64| {
        steps
            .iter()
            .find(|s| s.position == position)
            .map(|s| fr::field_study_summary(&s.event))
    };
    html! {
        section aria-labelledby="chronologie" {
            h2 #chronologie { "Chronologie complète (ordre d'enregistrement)" }
            table.timeline {
                thead { tr {
                    th scope="col" { "Position" }
                    th scope="col" { "Fait" }
                    th scope="col" { "Survenu (Paris)" }
                    th scope="col" { "Enregistré (Paris)" }
                    th scope="col" { "Par" }
                    th scope="col" { "Résumé" }
                } }
                tbody {
                    @for e in &history.entries {
                        tr data-position=(e.position) {
                            td { a href={ "?position=" (e.position) } title="Voir l'étude telle qu'à cette position" { (e.position) } }
                            td { (fr::event(&e.event)) }
                            td { (fr::datetime_short_text(&e.occurred_at)) }
                            td { (fr::datetime_short_text(&e.recorded_at)) }
                            td { (e.actor) }
                            td { (summary(e.position).unwrap_or_else(|| e.summary.clone())) }
                        }
                    }
                }
            }
        }
    }
}
