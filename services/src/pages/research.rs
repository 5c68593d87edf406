//! The researchers' pages, made from the pseudonymised research export only (the same
//! [`crate::research::prepare`] / [`crate::research::write`] as `GET /research/trajectories`,
//! as JSON Lines kept in memory): no name, no free text, no raw id reaches them.
//!
//! - `GET /research`: every cohort of at least the minimum size, by pseudonym, with its
//!   summary row; smaller cohorts are counted, never named.
//! - `GET /research/cohorts/{pseudonym}`: that cohort's trajectories as SVG charts: the
//!   commission's version and the hypotheses over time per group, and the attendance rate
//!   per module; each chart also as a table.
//!
//! Access: the research export's ([`Access::Research`]).

use super::{check, layout, PageError};
use crate::auth::{Access, Principal};
use crate::http::AppState;
use crate::research::pseudonym::{PseudonymKey, Pseudonymiser};
use crate::research::shape::{DateMode, Shape};
use crate::research::writer::Format;
use crate::research::{self, ChunkSink, ExportRequest, ResearchError, DEFAULT_MIN_COHORT_SIZE};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

struct VecSink(Vec<u8>);

impl ChunkSink for VecSink {
    fn send(
        &mut self,
        chunk: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(), ResearchError>> + Send {
        self.0.extend_from_slice(&chunk);
        std::future::ready(Ok(()))
    }
}

fn page_error(e: ResearchError) -> PageError {
    match e {
        ResearchError::NoKey(_) => PageError::Unavailable(
            "Les exports de recherche sont désactivés sur ce serveur (aucune clé de pseudonymisation configurée).".to_owned(),
        ),
        ResearchError::NotFound(_) => PageError::NotFound("Aucune cohorte sous ce pseudonyme.".to_owned()),
        ResearchError::TooSmall { minimum, .. } => PageError::Forbidden(format!(
            "Cette cohorte compte moins de {minimum} apprenant·es : ses trajectoires ne sont pas montrées (risque de réidentification)."
        )),
        ResearchError::Invalid(m) => PageError::Invalid(m),
        other => PageError::journal(other),
    }
}

/// The export rows (JSON Lines parsed) of `cohorts` (every cohort when empty) in `shape`, and
/// how many cohorts were left out for being under the minimum size (only when `skip_small`).
async fn rows(
    state: &AppState,
    cohorts: Vec<String>,
    shape: Shape,
    skip_small: bool,
) -> Result<(Vec<Value>, usize), ResearchError> {
    let pseudonyms = Pseudonymiser::new(PseudonymKey::from_env()?);
    let mut request = ExportRequest {
        cohorts,
        format: Format::Jsonl,
        shape,
        dates: DateMode::Exact,
        min_cohort_size: DEFAULT_MIN_COHORT_SIZE,
        force: false,
    };
    let hidden = indicatif::ProgressBar::hidden();
    let mut left_out = 0;
    let prepared = match research::prepare(&state.journal, &request, &pseudonyms, &hidden).await {
        Err(ResearchError::TooSmall { cohorts: small, .. }) if skip_small => {
            let index = research::prepare(
                &state.journal,
                &ExportRequest {
                    force: true,
                    ..request.clone()
                },
                &pseudonyms,
                &hidden,
            )
            .await?;
            let all: Vec<String> = index.cohort_ids().into_iter().collect();
            left_out = small.len();
            request.cohorts = all
                .into_iter()
                .filter(|id| !small.iter().any(|s| &s.cohort_id == id))
                .collect();
            if request.cohorts.is_empty() {
                return Ok((Vec::new(), left_out));
            }
            research::prepare(&state.journal, &request, &pseudonyms, &hidden).await?
        }
        other => other?,
    };
    let mut sink = VecSink(Vec::new());
    research::write(
        &state.journal,
        prepared,
        &request,
        &pseudonyms,
        &mut sink,
        &hidden,
    )
    .await?;
    let rows = String::from_utf8_lossy(&sink.0)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok((rows, left_out))
}

fn text<'a>(row: &'a Value, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

fn number(row: &Value, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// `GET /research`.
pub async fn index(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Response {
    let result = async {
        check(&who, &Access::Research, "les pages de recherche")?;
        let (summary, left_out) = rows(&state, Vec::new(), Shape::Summary, true)
            .await
            .map_err(page_error)?;
        let columns = [
            ("learners", "Apprenant·es"),
            ("withdrawals", "Abandons"),
            ("field_studies", "Groupes"),
            ("renegotiations_total", "Renégociations"),
            ("median_days_commission_to_agreement", "Jours médians commande → accord"),
            ("defences_passed", "Soutenances réussies"),
            ("defences_deferred", "Ajournements"),
            ("certificates", "Certificats"),
        ];
        Ok::<_, PageError>(html! {
            h1 { "Trajectoires des cohortes" }
            p { "Données pseudonymisées uniquement (export de recherche) : ni nom, ni texte libre, ni identifiant réel." }
            @if left_out > 0 { p { (left_out) " cohorte(s) de moins de " (DEFAULT_MIN_COHORT_SIZE) " apprenant·es ne sont pas montrées." } }
            table {
                caption { "Une ligne par cohorte (pseudonyme C-…)" }
                thead { tr { th scope="col" { "Cohorte" } @for (_, label) in &columns { th scope="col" { (label) } } } }
                tbody {
                    @for row in &summary {
                        tr {
                            th scope="row" { a href={ "/research/cohorts/" (text(row, "cohort")) } { (text(row, "cohort")) } }
                            @for (key, _) in &columns {
                                td { @match number(row, key) { Some(n) => { (format_number(n)) } None => { "—" } } }
                            }
                        }
                    }
                }
            }
        })
    }
    .await;
    match result {
        Ok(body) => layout::page("Recherche", Some(&who), body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}").replace('.', ",")
    }
}

/// `GET /research/cohorts/{pseudonym}`.
pub async fn cohort(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    pseudonym: Result<Path<String>, PathRejection>,
) -> Response {
    let pseudonym = match super::path_or_404(pseudonym) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = async {
        check(&who, &Access::Research, "les pages de recherche")?;
        if !pseudonym.starts_with("C-") {
            return Err(PageError::NotFound(
                "Aucune cohorte sous ce pseudonyme.".to_owned(),
            ));
        }
        let (long, _) = rows(&state, vec![pseudonym.clone()], Shape::Long, false)
            .await
            .map_err(page_error)?;
        Ok(html! {
            h1 { "Cohorte " (pseudonym) }
            p { a href="/research" { "← Toutes les cohortes" } }
            (groups_chart(&long))
            (attendance_chart(&long))
        })
    }
    .await;
    match result {
        Ok(body) => layout::page(&format!("Cohorte {pseudonym}"), Some(&who), body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// One event of a group's path, deduplicated across its members' rows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Mark {
    at: DateTime<Utc>,
    milestone: String,
    version: Option<i64>,
    hypothesis: String,
}

fn parse_time(row: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text(row, "occurred_at"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 140.0;

fn groups_chart(rows: &[Value]) -> Markup {
    let mut groups: BTreeMap<String, BTreeSet<Mark>> = BTreeMap::new();
    for row in rows {
        let milestone = text(row, "milestone");
        if !milestone.starts_with("commission_") && !milestone.starts_with("hypothesis_") {
            continue;
        }
        let (Some(at), group) = (parse_time(row), text(row, "field_study")) else {
            continue;
        };
        if group.is_empty() {
            continue;
        }
        groups.entry(group.to_owned()).or_default().insert(Mark {
            at,
            milestone: milestone.to_owned(),
            version: row.get("version").and_then(Value::as_i64),
            hypothesis: text(row, "hypothesis").to_owned(),
        });
    }
    let all = groups.values().flatten().map(|m| m.at);
    let (Some(first), Some(last)) = (all.clone().min(), all.max()) else {
        return html! { section { h2 { "Commande et hypothèses par groupe" } p { "Aucune donnée." } } };
    };
    let span = (last - first).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| 40.0 + (t - first).num_seconds() as f64 / span * (WIDTH - 60.0);
    html! {
        section aria-labelledby="groupes" {
            h2 #groupes { "Commande et hypothèses au fil du temps, par groupe" }
            p { "Ligne en escalier : version de la commande (■ accord). Repères du bas : ● hypothèse formulée, ▲ révisée, ✕ abandonnée." }
            @for (group, marks) in &groups {
                (group_figure(group, marks, &x, (first, last)))
            }
        }
    }
}

fn group_figure(
    group: &str,
    marks: &BTreeSet<Mark>,
    x: &dyn Fn(DateTime<Utc>) -> f64,
    (first, last): (DateTime<Utc>, DateTime<Utc>),
) -> Markup {
    let max_version = marks
        .iter()
        .filter_map(|m| m.version)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let y = |v: f64| 20.0 + (1.0 - v / max_version) * 70.0;
    let mut line = String::new();
    let mut started = false;
    for m in marks
        .iter()
        .filter(|m| m.milestone != "commission_agreed" && m.milestone.starts_with("commission_"))
    {
        let v = m.version.unwrap_or(1) as f64;
        if started {
            line.push_str(&format!(" H{:.1} V{:.1}", x(m.at), y(v)));
        } else {
            line.push_str(&format!("M{:.1},{:.1}", x(m.at), y(v)));
            started = true;
        }
    }
    if started {
        line.push_str(&format!(" H{:.1}", WIDTH - 20.0));
    }
    html! {
        figure.chart data-group=(group) {
            svg role="img" aria-labelledby={ "t-" (group) } viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT) xmlns="http://www.w3.org/2000/svg" {
                title id={ "t-" (group) } { "Groupe " (group) " : versions de la commande et hypothèses dans le temps" }
                line x1="40" y1="90" x2=(WIDTH - 20.0) y2="90" stroke="currentColor" stroke-width="1" {}
                text x="4" y=(y(max_version) + 4.0) font-size="11" fill="currentColor" { "v" (max_version) }
                text x="4" y="94" font-size="11" fill="currentColor" { "v0" }
                path d=(line) fill="none" stroke="currentColor" stroke-width="2" {}
                @for m in marks {
                    @let cx = x(m.at);
                    @match m.milestone.as_str() {
                        "commission_agreed" => { rect x=(cx - 4.0) y=(y(m.version.unwrap_or(1) as f64) - 4.0) width="8" height="8" fill="currentColor" {} }
                        "hypothesis_stated" => { circle cx=(cx) cy="112" r="4" fill="currentColor" {} }
                        "hypothesis_revised" => { path d=(format!("M{:.1},107 L{:.1},117 L{:.1},117 Z", cx, cx - 5.0, cx + 5.0)) fill="currentColor" {} }
                        "hypothesis_abandoned" => { path d=(format!("M{:.1},108 L{:.1},116 M{:.1},108 L{:.1},116", cx - 4.0, cx + 4.0, cx + 4.0, cx - 4.0)) stroke="currentColor" stroke-width="2" {} }
                        _ => {}
                    }
                }
                text x="40" y="134" font-size="11" fill="currentColor" { (first.format("%Y-%m")) }
                text x=(WIDTH - 70.0) y="134" font-size="11" fill="currentColor" { (last.format("%Y-%m")) }
            }
            figcaption {
                details {
                    summary { "Groupe " (group) " : " (marks.len()) " jalons (tableau)" }
                    table {
                        thead { tr { th scope="col" { "Date" } th scope="col" { "Jalon" } th scope="col" { "Version" } th scope="col" { "Hypothèse" } } }
                        tbody { @for m in marks { tr { td { (m.at.format("%Y-%m-%d")) } td { (super::fr::event(&m.milestone)) } td { (m.version.map(|v| v.to_string()).unwrap_or_default()) } td { (m.hypothesis) } } } }
                    }
                }
            }
        }
    }
}

fn attendance_chart(rows: &[Value]) -> Markup {
    // The last month-end row of each (learner, module): that learner's totals in the module.
    let mut last: BTreeMap<(String, String), (DateTime<Utc>, f64, f64)> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| text(r, "milestone") == "attendance_month_end")
    {
        let Some(at) = parse_time(row) else { continue };
        let key = (
            text(row, "learner").to_owned(),
            text(row, "module").to_owned(),
        );
        let held = number(row, "held_half_days").unwrap_or(0.0);
        let attended = number(row, "attended_half_days").unwrap_or(0.0);
        let entry = last.entry(key).or_insert((at, held, attended));
        if at >= entry.0 {
            *entry = (at, held, attended);
        }
    }
    let mut modules: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
    for ((_, module), (_, held, attended)) in &last {
        let m = modules.entry(module.clone()).or_default();
        m.0 += held;
        m.1 += attended;
        m.2 += 1;
    }
    let bar_height = 26.0;
    let height = 20.0 + bar_height * modules.len() as f64;
    html! {
        section aria-labelledby="assiduite" {
            h2 #assiduite { "Assiduité par module (demi-journées présentes / tenues)" }
            @if modules.is_empty() { p { "Aucune donnée." } } @else {
                svg role="img" aria-label="Taux d'assiduité par module" viewBox={ "0 0 " (WIDTH) " " (height) } width=(WIDTH) height=(height) xmlns="http://www.w3.org/2000/svg" {
                    @for (i, (module, (held, attended, _))) in modules.iter().enumerate() {
                        @let rate = if *held > 0.0 { attended / held } else { 0.0 };
                        @let top = 10.0 + bar_height * i as f64;
                        text x="4" y=(top + 16.0) font-size="12" fill="currentColor" { (module) }
                        rect x="60" y=(top) width=(format!("{:.1}", rate * (WIDTH - 160.0))) height=(bar_height - 8.0) fill="currentColor" {}
                        text x=(70.0 + rate * (WIDTH - 160.0)) y=(top + 14.0) font-size="12" fill="currentColor" { (format!("{:.0} %", rate * 100.0)) }
                    }
                }
                table {
                    thead { tr { th scope="col" { "Module" } th scope="col" { "Apprenant·es" } th scope="col" { "Tenues" } th scope="col" { "Présentes" } th scope="col" { "Taux" } } }
                    tbody { @for (module, (held, attended, learners)) in &modules {
                        tr { th scope="row" { (module) } td { (learners) } td { (held) } td { (attended) }
                            td { (if *held > 0.0 { format!("{:.0} %", attended / held * 100.0) } else { "—".to_owned() }) } }
                    } }
                }
            }
        }
    }
}
