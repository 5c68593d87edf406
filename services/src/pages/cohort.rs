//! `GET /cohorts/{cohort_id}`: a cohort's timetable by week (Europe/Paris), each module's
//! planned / scheduled / held half-days as bars, and (for the roles that may read the audit
//! register) the attendance register per learner with its anomaly flags (R6332-26).
//! The as-of control ([`as_of`]) shows the timetable as it stood then (the registers only on
//! the present view). Access: the timetable's ([`Access::Timetable`]); the attendance register
//! is the audit route's ([`Access::Audit`]); the complaints register
//! ([`super::complaints`]) the complaints route's ([`Access::Complaints`]).

use super::{answer, as_of, check, cohorts, fr, params, PageError};
use crate::auth::{policy, Access, Principal};
use crate::http::AppState;
use crate::read;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Europe::Paris;
use fieldtrail_projections::attendance::AttendanceRegister;
use fieldtrail_projections::{
    ComplaintsRegister, SessionStatus, Timetable, TimetableModule, TimetableSession,
};
use maud::{html, Markup};
use std::collections::{BTreeMap, BTreeSet};

/// `GET /cohorts/{cohort_id}` (`?fragment=1&min_position=N`: the live region once the read
/// models include position N).
pub async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    cohort_id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    let result = match super::path_or_404(cohort_id) {
        Ok(cohort_id) => render(&state, &who, &cohort_id, &uri).await,
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
    cohort_id: &str,
    uri: &Uri,
) -> Result<Response, PageError> {
    check(
        who,
        &Access::Timetable { cohort: cohort_id },
        "l'emploi du temps de cette cohorte",
    )?;
    let params = params(uri);
    let (cut, control) = as_of::cut(&params).map_err(PageError::Invalid)?;
    let unknown = || PageError::NotFound(format!("Aucune cohorte « {cohort_id} »."));
    let facts = cohorts::facts(state, cohort_id)
        .await?
        .ok_or_else(unknown)?;
    let (timetable, position): (Option<Timetable>, _) =
        super::document_then(state, &params, read::TIMETABLE, cohort_id, cut, unknown).await?;
    // The register is the journal's as of now: shown on the present view only.
    let register_allowed = policy::allows(who, &Access::Audit);
    let register = if register_allowed && cut.is_none() {
        crate::audit::attendance_register(&state.journal, cohort_id)
            .await
            .map_err(PageError::journal)?
    } else {
        None
    };
    // The complaints register: staff and auditors (a learner reads only their own, over the
    // API); the present view only.
    let complaints = if cut.is_none()
        && policy::allows(who, &Access::Complaints { cohort: cohort_id })
        && who.role != crate::auth::Role::Learner
    {
        read::complaints_register(&state.journal, cohort_id)
            .await
            .map_err(PageError::journal)?
            .and_then(|doc| serde_json::from_value::<ComplaintsRegister>(doc).ok())
    } else {
        None
    };
    // The studies' links, for the roles that may read their histories (in this cohort).
    let studies = if policy::allows(
        who,
        &Access::History {
            cohort: Some(cohort_id),
            member: false,
        },
    ) {
        cohorts::field_studies(state, cohort_id).await?
    } else {
        Vec::new()
    };
    let live_allowed = position.is_some() && policy::allows(who, &Access::EventStream);
    let title = if facts.title.is_empty() {
        cohort_id.to_owned()
    } else {
        facts.title.clone()
    };
    let before = html! {
        h1 { (title) " " small { "(" (cohort_id) ")" } }
        @if let (Some(s), Some(e)) = (facts.starts_on, facts.ends_on) {
            p { "Du " (fr::date_long(s)) " au " (fr::date_long(e)) "." @if facts.closed { " Cohorte close." } }
        }
        nav aria-label="Dans cette cohorte" {
            ul.inline {
                li { a href="#modules" { "Modules" } }
                li { a href="#emploi-du-temps" { "Emploi du temps" } }
                @if register_allowed { li { a href="#registre" { "Registre de présence" } } }
                @if complaints.is_some() { li { a href="#reclamations" { "Réclamations" } } }
                @if register_allowed {
                    li { a href={ "/history/cohort/" (cohort_id) } { "Historique et vérification" } }
                }
            }
        }
        (as_of::form(&format!("/cohorts/{cohort_id}"), "Voir l'emploi du temps tel qu'il était", &control, cut.is_some()))
        @if !studies.is_empty() {
            section aria-labelledby="etudes" {
                h2 #etudes { "Études de terrain" }
                ul {
                    @for study in &studies {
                        li { a href={ "/field-studies/" (study) } { "Étude " (study) } }
                    }
                }
            }
        }
    };
    let live = html! {
        div #live
            data-live-stream=[live_allowed.then(|| format!("cohort/{cohort_id}"))]
            data-position=[position] {
            @if let Some(cut) = cut {
                p.as-of role="status" {
                    strong { (as_of::describe(cut).replace("Telle qu'elle", "Telle que la cohorte")) }
                    @if timetable.is_none() { " : la cohorte n'existait pas encore." }
                    @else if register_allowed { " — le registre de présence n'est montré que sur la vue actuelle." }
                }
            } @else if let Some(position) = position {
                p.live-status aria-live="polite" {
                    @if live_allowed { "Mises à jour en direct (position " (position) ")." }
                    @else { "Vue à la position " (position) " du journal ; rechargez la page pour la mettre à jour." }
                }
            }
            @if let Some(timetable) = &timetable {
                (modules(&timetable.modules))
                (weeks(&timetable.sessions))
            }
            @if let Some(register) = &register {
                (register_table(register, &facts, cohort_id, who))
            }
            @if let Some(complaints) = &complaints {
                (super::complaints::section(complaints))
            }
        }
    };
    Ok(answer(&params, &title, who, before, live))
}

/// The module bars: planned, scheduled and held half-days, with the numbers in words.
pub fn modules(modules: &[TimetableModule]) -> Markup {
    let widest = modules
        .iter()
        .flat_map(|m| [m.planned_half_days, m.scheduled_half_days, m.held_half_days])
        .max()
        .unwrap_or(1)
        .max(1);
    let bar = |value: u32, class: &str, label: &str| {
        let width = f64::from(value) * 100.0 / f64::from(widest);
        html! {
            div.bar-row {
                span.bar-label { (label) }
                span.bar-track aria-hidden="true" {
                    span class={ "bar " (class) } style={ "width:" (format!("{width:.1}")) "%" } {}
                }
                span.bar-value { (value) }
            }
        }
    };
    html! {
        section aria-labelledby="modules" {
            h2 #modules { "Modules : demi-journées prévues, programmées et tenues" }
            @for m in modules {
                figure.module data-module=(m.module_id) {
                    figcaption {
                        strong { "Module " (m.module_id) } " : "
                        (m.planned_half_days) " prévues, "
                        (m.scheduled_half_days) " programmées, "
                        (m.held_half_days) " tenues"
                    }
                    (bar(m.planned_half_days, "planned", "prévues"))
                    (bar(m.scheduled_half_days, "scheduled", "programmées"))
                    (bar(m.held_half_days, "held", "tenues"))
                }
            }
        }
    }
}

fn monday(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

/// The timetable by week (Europe/Paris): cancelled sessions struck through, rescheduled ones
/// with their earlier slots.
pub fn weeks(sessions: &[TimetableSession]) -> Markup {
    let mut by_week: BTreeMap<NaiveDate, Vec<&TimetableSession>> = BTreeMap::new();
    for s in sessions {
        let Some(start) = fr::parse(&s.starts_at) else {
            continue;
        };
        let week = monday(start.with_timezone(&Paris).date_naive());
        by_week.entry(week).or_default().push(s);
    }
    html! {
        section aria-labelledby="emploi-du-temps" {
            h2 #emploi-du-temps { "Emploi du temps (heure de Paris)" }
            p { (sessions.len()) " séances, dont "
                (sessions.iter().filter(|s| s.status == SessionStatus::Held).count()) " tenues et "
                (sessions.iter().filter(|s| s.status == SessionStatus::Cancelled).count()) " annulées." }
            @for (week, list) in &by_week {
                section.week {
                    h3 { "Semaine du " (fr::date_long(*week)) }
                    table.timetable {
                        thead { tr {
                            th scope="col" { "Jour et horaire" }
                            th scope="col" { "Module" }
                            th scope="col" { "Type" }
                            th scope="col" { "Intervenant·e" }
                            th scope="col" { "Demi-journées" }
                            th scope="col" { "État" }
                        } }
                        tbody {
                            @for s in list { (session_row(s)) }
                        }
                    }
                }
            }
        }
    }
}

fn slot(starts_at: &str, ends_at: &str) -> String {
    match (fr::parse(starts_at), fr::parse(ends_at)) {
        (Some(s), Some(e)) => format!("{}–{}", fr::datetime(&s), fr::time(&e)),
        _ => format!("{starts_at}–{ends_at}"),
    }
}

fn session_row(s: &TimetableSession) -> Markup {
    let status = serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let kind = serde_json::to_value(s.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let cancelled = s.status == SessionStatus::Cancelled;
    let cell = |text: String| {
        html! { @if cancelled { del { (text) } } @else { (text) } }
    };
    html! {
        tr id={ "session-" (s.session_id) } class={ "session " (status) } data-session=(s.session_id) {
            td {
                (cell(slot(&s.starts_at, &s.ends_at)))
                @if !s.previous_slots.is_empty() {
                    ul.previous-slots {
                        @for p in &s.previous_slots {
                            li { "Initialement : " s { (slot(&p.starts_at, &p.ends_at)) } " — déplacée : " (p.reason) }
                        }
                    }
                }
            }
            td { (cell(format!("{}{}", s.module_id, s.unit_id.as_deref().map(|u| format!(" · {u}")).unwrap_or_default()))) }
            td { (cell(fr::session_kind(&kind).to_owned())) }
            td { (cell(s.facilitator.clone())) }
            td { (cell(s.half_days.to_string())) }
            td { strong { (fr::session_status(&status)) } @if !s.previous_slots.is_empty() { " (déplacée)" } }
        }
    }
}

fn register_table(
    register: &AttendanceRegister,
    facts: &cohorts::CohortFacts,
    cohort_id: &str,
    who: &Principal,
) -> Markup {
    #[derive(Default)]
    struct Totals {
        held: u32,
        attended: u32,
        excused: u32,
        absent: u32,
        flags: BTreeSet<String>,
    }
    let mut per_learner: BTreeMap<&str, Totals> = BTreeMap::new();
    for t in &register.totals {
        let e = per_learner.entry(t.learner_id.as_str()).or_default();
        e.held += t.held_half_days;
        e.attended += t.attended_half_days;
        e.excused += t.excused_half_days;
        e.absent += t.absent_half_days;
    }
    for row in &register.rows {
        let e = per_learner.entry(row.learner_id.as_str()).or_default();
        for f in &row.flags {
            e.flags.insert(f.as_str().to_owned());
        }
    }
    html! {
        section aria-labelledby="registre" {
            h2 #registre { "Registre de présence (art. R6332-26 du Code du travail)" }
            table.register {
                caption { "Demi-journées par apprenant·e, tous modules ; les signalements sont écrits en toutes lettres." }
                thead { tr {
                    th scope="col" { "Apprenant·e" }
                    th scope="col" { "Tenues" }
                    th scope="col" { "Présent·e" }
                    th scope="col" { "Excusé·e" }
                    th scope="col" { "Absent·e" }
                    th scope="col" { "Signalements" }
                } }
                tbody {
                    @for l in &facts.learners {
                        @let t = per_learner.get(l.learner_id.as_str());
                        tr data-learner=(l.learner_id) {
                            th scope="row" {
                                @if policy::allows(who, &Access::Transcript { cohort: cohort_id, learner: &l.learner_id }) {
                                    a href={ "/cohorts/" (cohort_id) "/learners/" (l.learner_id) } { (l.name) }
                                } @else { (l.name) }
                                @if l.withdrawn { " (abandon)" }
                            }
                            td { (t.map_or(0, |t| t.held)) }
                            td { (t.map_or(0, |t| t.attended)) }
                            td { (t.map_or(0, |t| t.excused)) }
                            td { (t.map_or(0, |t| t.absent)) }
                            td {
                                @match t.filter(|t| !t.flags.is_empty()) {
                                    Some(t) => { @for (i, f) in t.flags.iter().enumerate() { @if i > 0 { ", " } mark { "⚠ " (fr::flag(f)) } } }
                                    None => { "aucun" }
                                }
                            }
                        }
                    }
                }
            }
            @if register.anomalies.is_empty() {
                p { "Aucune anomalie relevée." }
            } @else {
                h3 { "Anomalies" }
                ul.anomalies {
                    @for a in &register.anomalies {
                        li { strong { (fr::flag(a.flag.as_str())) } " — séance " (a.session_id)
                            @if let Some(l) = &a.learner_id { ", " (l) } " : " (a.detail) }
                    }
                }
            }
        }
    }
}
