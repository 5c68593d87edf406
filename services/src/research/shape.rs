//! The columns of each export shape and the rows of one cohort: where raw ids become
//! pseudonyms, and dates are kept, shifted or coarsened.
//!
//! Nothing but what is listed in [`Shaper::columns`] leaves: no name, no free text (briefs,
//! notes, remarks, titles, reasons), no raw id, organisations as their sector only.

use super::pseudonym::{Pseudonymiser, MAX_SHIFT_DAYS};
use super::writer::{Cell, ColType, Column};
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Europe::Paris;
use fieldtrail_projections::trajectory::{
    calendar_days, reasons, session_kind_name, CohortSummary, CohortTrajectory, LearnerTrajectory,
    Milestone, MilestoneKind,
};

/// One row per milestone, one row per learner, or one row per cohort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// One row per milestone of each learner (long format).
    Long,
    /// One row per learner (wide format).
    Wide,
    /// One row per cohort (the cohort summaries).
    Summary,
}

impl Shape {
    /// `long`, `wide` or `summary`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "long" => Some(Self::Long),
            "wide" => Some(Self::Wide),
            "summary" => Some(Self::Summary),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Long => "long",
            Self::Wide => "wide",
            Self::Summary => "summary",
        }
    }
}

/// How dates are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DateMode {
    /// As recorded (UTC instants).
    Exact,
    /// Each learner's instants moved by the learner's keyed shift (whole days, ±90).
    Shifted,
    /// Each instant replaced by its ISO week (`YYYY-Www`, Europe/Paris calendar).
    Week,
}

impl DateMode {
    /// `exact`, `shifted` or `week`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "exact" => Some(Self::Exact),
            "shifted" => Some(Self::Shifted),
            "week" => Some(Self::Week),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Shifted => "shifted",
            Self::Week => "week",
        }
    }
}

impl DateMode {
    fn column_type(self) -> ColType {
        match self {
            DateMode::Week => ColType::Str,
            DateMode::Exact | DateMode::Shifted => ColType::Time,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            DateMode::Exact => "UTC instant",
            DateMode::Shifted => "UTC instant, shifted per learner",
            DateMode::Week => "ISO week (YYYY-Www)",
        }
    }

    fn note(self) -> String {
        match self {
            DateMode::Exact => "As recorded.".to_owned(),
            DateMode::Shifted => format!(
                "Moved by the learner's keyed shift: the same whole number of days (from -{MAX_SHIFT_DAYS} to +{MAX_SHIFT_DAYS}) for every date of the learner, so intervals are kept."
            ),
            DateMode::Week => "Coarsened to the ISO week of the Europe/Paris date.".to_owned(),
        }
    }

    fn column(self, name: &'static str, nullable: bool, meaning: &str) -> Column {
        column(
            name,
            self.column_type(),
            nullable,
            self.unit(),
            format!("{meaning} {}", self.note()),
        )
    }
}

/// The columns of an export of `shape` with `dates`, in order: the data dictionary.
pub fn columns(shape: Shape, dates: DateMode) -> Vec<Column> {
    match shape {
        Shape::Long => long_columns(dates),
        Shape::Wide => wide_columns(dates),
        Shape::Summary => summary_columns(),
    }
}

/// The ISO week of an instant's Europe/Paris date: `2025-W38`.
pub fn iso_week(t: &DateTime<Utc>) -> String {
    let week = t.with_timezone(&Paris).date_naive().iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// Builds an export's columns and rows.
#[derive(Clone, Debug)]
pub struct Shaper<'a> {
    shape: Shape,
    dates: DateMode,
    pseudonyms: &'a Pseudonymiser,
}

const PSEUDONYM: &str = "pseudonym";

fn column(
    name: &'static str,
    ty: ColType,
    nullable: bool,
    unit: &'static str,
    meaning: impl Into<String>,
) -> Column {
    Column {
        name,
        ty,
        nullable,
        unit,
        meaning: meaning.into(),
    }
}

impl<'a> Shaper<'a> {
    /// A shaper for `shape` with `dates`, naming with `pseudonyms`.
    pub fn new(shape: Shape, dates: DateMode, pseudonyms: &'a Pseudonymiser) -> Self {
        Self {
            shape,
            dates,
            pseudonyms,
        }
    }

    /// A date cell for an instant of `learner` (shifted by the learner's shift if asked).
    fn date(&self, t: Option<DateTime<Utc>>, learner: Option<&str>) -> Cell {
        let Some(t) = t else {
            return Cell::Null;
        };
        match self.dates {
            DateMode::Exact => Cell::Time(t),
            DateMode::Shifted => {
                let shift = learner.map_or(0, |l| self.pseudonyms.shift_days(l));
                chrono::Duration::try_days(shift)
                    .and_then(|d| t.checked_add_signed(d))
                    .map_or(Cell::Null, Cell::Time)
            }
            DateMode::Week => Cell::Str(iso_week(&t)),
        }
    }

    /// A count of days, or null when dates are coarsened to weeks.
    fn days(&self, days: Option<i64>) -> Cell {
        match self.dates {
            DateMode::Week => Cell::Null,
            DateMode::Exact | DateMode::Shifted => Cell::opt_int(days),
        }
    }

    /// The export's columns, in order (the data dictionary).
    pub fn columns(&self) -> Vec<Column> {
        columns(self.shape, self.dates)
    }

    /// The rows of one cohort.
    pub fn rows(&self, cohort: &CohortTrajectory) -> Vec<Vec<Cell>> {
        match self.shape {
            Shape::Long => self.long_rows(cohort),
            Shape::Wide => cohort
                .learners
                .iter()
                .map(|l| self.wide_row(&cohort.cohort_id, l))
                .collect(),
            Shape::Summary => vec![self.summary_row(&CohortSummary::of(cohort))],
        }
    }

    fn cohort_column() -> Column {
        column(
            "cohort",
            ColType::Str,
            false,
            PSEUDONYM,
            "The cohort: C- and 16 hex digits of HMAC-SHA256(key, \"cohort:\" + cohort id).",
        )
    }

    fn learner_column() -> Column {
        column(
            "learner",
            ColType::Str,
            false,
            PSEUDONYM,
            "The learner: L- and 16 hex digits of HMAC-SHA256(key, \"learner:\" + learner id); the same in every cohort and export made with the same key.",
        )
    }

    fn long_rows(&self, cohort: &CohortTrajectory) -> Vec<Vec<Cell>> {
        let p = self.pseudonyms;
        let cohort_code = p.cohort(&cohort.cohort_id);
        let mut rows = Vec::new();
        for learner in &cohort.learners {
            let learner_code = p.learner(&learner.learner_id);
            let id = Some(learner.learner_id.as_str());
            for (i, m) in learner.milestones.iter().enumerate() {
                let half_days = m.half_days;
                let (role, actor) = match &m.actor {
                    Some(a) => {
                        let (role, code) = p.actor(a);
                        (Some(role), Some(code))
                    }
                    None => (None, None),
                };
                let jury: Vec<String> = m.jury.iter().map(|j| p.jury(j)).collect();
                rows.push(vec![
                    Cell::Str(cohort_code.clone()),
                    Cell::Str(learner_code.clone()),
                    Cell::Int(i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1)),
                    Cell::Str(m.kind.as_str().to_owned()),
                    self.date(Some(m.occurred_at), id),
                    self.date(m.recorded_at, id),
                    self.days(Some(calendar_days(learner.enrolled_at, m.occurred_at))),
                    Cell::opt_str(m.module_id.clone()),
                    Cell::opt_str(m.session_kind.map(session_kind_name)),
                    Cell::opt_str(m.facilitator.as_deref().map(|f| p.facilitator(f))),
                    Cell::opt_str(m.field_study_id.as_deref().map(|f| p.field_study(f))),
                    Cell::opt_str(m.sector.clone()),
                    Cell::opt_int(m.version),
                    Cell::opt_str(hypothesis(p, m)),
                    Cell::opt_str(m.reason_category),
                    Cell::opt_int(m.attempt),
                    Cell::opt_str(m.result.map(|r| r.as_str())),
                    Cell::opt_str((!jury.is_empty()).then(|| jury.join(";"))),
                    Cell::opt_int(m.pages),
                    Cell::opt_bool(m.deis_pathway),
                    Cell::opt_int(half_days.map(|h| h.held)),
                    Cell::opt_int(half_days.map(|h| h.attended)),
                    Cell::opt_int(half_days.map(|h| h.excused)),
                    Cell::opt_int(half_days.map(|h| h.absent)),
                    Cell::opt_float(half_days.and_then(|h| h.rate())),
                    Cell::opt_str(role),
                    Cell::opt_str(actor),
                ]);
            }
        }
        rows
    }

    fn wide_row(&self, cohort_id: &str, l: &LearnerTrajectory) -> Vec<Cell> {
        use MilestoneKind as K;
        let p = self.pseudonyms;
        let id = Some(l.learner_id.as_str());
        let first = |k: K| l.of_kind(k).next();
        let last = |k: K| l.of_kind(k).last();
        let n = |k: K| i64::try_from(l.of_kind(k).count()).unwrap_or(i64::MAX);
        let at = |m: Option<&Milestone>| self.date(m.map(|m| m.occurred_at), id);
        let joined = last(K::FieldStudyJoined);
        let left = joined.and_then(|j| {
            l.of_kind(K::FieldStudyLeft)
                .filter(|m| m.field_study_id == j.field_study_id && m.occurred_at >= j.occurred_at)
                .last()
        });
        let negotiated = first(K::CommissionNegotiated);
        let agreed = last(K::CommissionAgreed);
        let versions = l
            .milestones
            .iter()
            .filter(|m| {
                matches!(
                    m.kind,
                    K::CommissionNegotiated | K::CommissionRenegotiated | K::CommissionAgreed
                )
            })
            .filter_map(|m| m.version)
            .max()
            .unwrap_or(0);
        let production = last(K::ProductionSubmitted);
        let defence = last(K::DefenceAttempt);
        vec![
            Cell::Str(p.cohort(cohort_id)),
            Cell::Str(p.learner(&l.learner_id)),
            Cell::Bool(l.deis_pathway),
            Cell::Str(
                if l.withdrew_at.is_some() {
                    "withdrawn"
                } else {
                    "active"
                }
                .to_owned(),
            ),
            self.date(Some(l.enrolled_at), id),
            self.date(l.withdrew_at, id),
            Cell::opt_str(first(K::Withdrew).and_then(|m| m.reason_category)),
            at(first(K::FirstSessionAttended)),
            at(first(K::LastSessionAttended)),
            Cell::Int(i64::from(l.sessions_attended)),
            Cell::Int(i64::from(l.attendance.held)),
            Cell::Int(i64::from(l.attendance.attended)),
            Cell::Int(i64::from(l.attendance.excused)),
            Cell::Int(i64::from(l.attendance.absent)),
            Cell::opt_float(l.attendance.rate()),
            Cell::opt_str(
                joined
                    .and_then(|j| j.field_study_id.as_deref())
                    .map(|f| p.field_study(f)),
            ),
            Cell::opt_str(joined.and_then(|j| j.sector.clone())),
            at(joined),
            at(left),
            at(negotiated),
            at(agreed),
            Cell::Int(i64::from(versions)),
            Cell::Int(n(K::CommissionRenegotiated)),
            self.days(match (negotiated, agreed) {
                (Some(a), Some(b)) => Some(calendar_days(a.occurred_at, b.occurred_at)),
                _ => None,
            }),
            Cell::Int(n(K::HypothesisStated)),
            Cell::Int(n(K::HypothesisRevised)),
            Cell::Int(n(K::HypothesisAbandoned)),
            Cell::Int(n(K::ProductionSubmitted)),
            at(production),
            Cell::opt_int(production.and_then(|m| m.pages)),
            Cell::Int(n(K::DefenceAttempt)),
            at(first(K::DefenceAttempt)),
            at(defence),
            Cell::opt_str(defence.and_then(|m| m.result).map(|r| r.as_str())),
            at(l.certificate_in_force()),
            at(l.deis_credit_in_force()),
        ]
    }

    fn summary_row(&self, s: &CohortSummary) -> Vec<Cell> {
        let a = s.attendance;
        let renegotiations: Vec<String> = s
            .renegotiations_per_field_study
            .iter()
            .map(u32::to_string)
            .collect();
        let total: i64 = s
            .renegotiations_per_field_study
            .iter()
            .map(|&n| i64::from(n))
            .sum();
        vec![
            Cell::Str(self.pseudonyms.cohort(&s.cohort_id)),
            Cell::Int(i64::from(s.learners)),
            Cell::Int(i64::from(s.withdrawals)),
            Cell::Int(i64::from(s.field_studies)),
            Cell::opt_float(s.median_days_commission_to_agreement),
            Cell::Int(total),
            Cell::Str(renegotiations.join(";")),
            Cell::Int(i64::from(s.defence_attempts)),
            Cell::Int(i64::from(s.defences_passed)),
            Cell::Int(i64::from(s.defences_deferred)),
            Cell::Int(i64::from(s.defences_failed)),
            Cell::Int(i64::from(s.certificates)),
            Cell::Int(i64::from(s.deis_credits)),
            Cell::Int(a.map_or(0, |a| i64::from(a.count))),
            Cell::opt_float(a.map(|a| a.min)),
            Cell::opt_float(a.map(|a| a.q1)),
            Cell::opt_float(a.map(|a| a.median)),
            Cell::opt_float(a.map(|a| a.q3)),
            Cell::opt_float(a.map(|a| a.max)),
            Cell::opt_float(a.map(|a| a.mean)),
        ]
    }
}

fn long_columns(dates: DateMode) -> Vec<Column> {
    let milestones: Vec<&str> = MilestoneKind::ALL.iter().map(|k| k.as_str()).collect();
    let categories = reasons::CATEGORIES.join(", ");
    vec![
        Shaper::cohort_column(),
        Shaper::learner_column(),
        column("seq", ColType::Int, false, "rank", "Order of the milestone in the learner's trajectory (1, 2, ...): by occurred time, then journal order."),
        column("milestone", ColType::Str, false, "category", format!("What happened: {}.", milestones.join(", "))),
        dates.column("occurred_at", false, "When it happened in the world (the event's occurred clock); for attendance_month_end, 23:59:59 Europe/Paris on the month's last day."),
        dates.column("recorded_at", true, "When the journal recorded the event (server clock); empty for attendance_month_end."),
        column("days_since_enrolment", ColType::Int, true, "days", "Europe/Paris calendar days from the learner's enrolment to occurred_at; empty when dates are coarsened to weeks."),
        column("module", ColType::Str, true, "programme module id", "The programme's module (m1, m2, ...): attendance_month_end, first/last_session_attended."),
        column("session_kind", ColType::Str, true, "category", "The session's kind (course, reflexive_accompaniment, critical_debate, field_work, defence): first/last_session_attended."),
        column("facilitator", ColType::Str, true, PSEUDONYM, "The session's facilitator: F- and 16 hex digits of HMAC-SHA256(key, \"facilitator:\" + name)."),
        column("field_study", ColType::Str, true, PSEUDONYM, "The field study: G- and 16 hex digits of HMAC-SHA256(key, \"field_study:\" + id)."),
        column("sector", ColType::Str, true, "category", "The commissioning organisation's sector (the organisation's name is never exported): field_study_joined."),
        column("version", ColType::Int, true, "version number", "The commission's version (commission_*) or the production's version (production_submitted)."),
        column("hypothesis", ColType::Str, true, PSEUDONYM, "The hypothesis: H- and 16 hex digits of HMAC-SHA256(key, \"hypothesis:\" + field study id + \"/\" + hypothesis id)."),
        column("reason_category", ColType::Str, true, "category", format!("The reason's category, derived from the event kind and keywords of the reason (whose text is never exported): withdrew, field_study_left (and field_study_joined after a split: split), commission_renegotiated, hypothesis_revised, hypothesis_abandoned. One of: {categories}.")),
        column("attempt", ColType::Int, true, "count", "The learner's defence attempt: 1 for their first defence, 2 for the next, ... (defence_attempt)."),
        column("result", ColType::Str, true, "category", "The defence's result: passed, deferred, failed (defence_attempt)."),
        column("jury", ColType::Str, true, PSEUDONYM, "The jury members, J- pseudonyms (HMAC-SHA256(key, \"jury:\" + name)) separated by ';', in the jury's order (defence_attempt)."),
        column("pages", ColType::Int, true, "pages", "The production's length (production_submitted)."),
        column("deis_pathway", ColType::Bool, true, "", "Whether the learner follows the DEIS pathway (enrolled)."),
        column("held_half_days", ColType::Int, true, "half-days", "Half-days of the module's held sessions the learner was counted in, up to the month's end (attendance_month_end)."),
        column("attended_half_days", ColType::Int, true, "half-days", "Of which present (attendance_month_end; corrections applied to the session they correct)."),
        column("excused_half_days", ColType::Int, true, "half-days", "Of which excused (attendance_month_end)."),
        column("absent_half_days", ColType::Int, true, "half-days", "Of which absent (attendance_month_end)."),
        column("attendance_rate", ColType::Float, true, "ratio 0..1", "attended_half_days / held_half_days (attendance_month_end)."),
        column("actor_role", ColType::Str, true, "category", "Who recorded the event: learner, facilitator, jury, staff, other; empty for attendance_month_end."),
        column("actor", ColType::Str, true, PSEUDONYM, "Who recorded it: L-, F-, J- or S- pseudonym (X- for another role)."),
    ]
}

fn wide_columns(dates: DateMode) -> Vec<Column> {
    let d = |name, meaning: &str| dates.column(name, true, meaning);
    let int = |name, unit, meaning: &str| column(name, ColType::Int, false, unit, meaning);
    vec![
        Shaper::cohort_column(),
        Shaper::learner_column(),
        column("deis_pathway", ColType::Bool, false, "", "Whether the learner follows the DEIS pathway."),
        column("status", ColType::Str, false, "category", "active or withdrawn (at the time of the export)."),
        dates.column("enrolled_at", false, "When the learner enrolled (occurred clock)."),
        d("withdrew_at", "When the learner withdrew (occurred clock); empty if they did not."),
        column("withdrawal_reason_category", ColType::Str, true, "category", format!("The withdrawal reason's category (the text is never exported): one of {}.", reasons::CATEGORIES.join(", "))),
        d("first_session_attended_at", "The session_held record of the first session the learner was present at."),
        d("last_session_attended_at", "The session_held record of the last session the learner was present at."),
        int("sessions_attended", "sessions", "Held sessions the learner was present at (after corrections)."),
        int("held_half_days", "half-days", "Half-days of held sessions the learner was counted in, all modules (as the transcript counts them)."),
        int("attended_half_days", "half-days", "Of which present."),
        int("excused_half_days", "half-days", "Of which excused."),
        int("absent_half_days", "half-days", "Of which absent."),
        column("attendance_rate", ColType::Float, true, "ratio 0..1", "attended_half_days / held_half_days; empty when nothing was held. Per module and month: the long format's attendance_month_end rows."),
        column("field_study", ColType::Str, true, PSEUDONYM, "The last field study the learner joined (G- pseudonym)."),
        column("sector", ColType::Str, true, "category", "Its commissioning organisation's sector."),
        d("field_study_joined_at", "When the learner joined it."),
        d("field_study_left_at", "When the learner left it; empty if they did not."),
        d("commission_negotiated_at", "Version 1 of the commission of the learner's field study (first seen as a member)."),
        d("commission_agreed_at", "The last agreement of a commission version seen as a member."),
        int("commission_versions", "versions", "The highest commission version seen as a member (0 if none)."),
        int("commission_renegotiations", "count", "commission_renegotiated events seen as a member."),
        column("days_commission_to_agreement", ColType::Int, true, "days", "Europe/Paris calendar days from commission_negotiated_at to commission_agreed_at; empty without both or when dates are coarsened to weeks."),
        int("hypotheses_stated", "count", "hypothesis_stated events seen as a member."),
        int("hypotheses_revised", "count", "hypothesis_revised events seen as a member."),
        int("hypotheses_abandoned", "count", "hypothesis_abandoned events seen as a member."),
        int("productions_submitted", "count", "production_submitted events seen as a member."),
        d("last_production_at", "The last production version's submission."),
        column("last_production_pages", ColType::Int, true, "pages", "Its length."),
        int("defence_attempts", "count", "Defence results recorded for the learner."),
        d("first_defence_at", "The first defence result's record."),
        d("last_defence_at", "The last defence result's record."),
        column("final_defence_result", ColType::Str, true, "category", "The last defence result: passed, deferred, failed; empty if none."),
        d("certificate_awarded_at", "When the certificate in force was awarded; empty if none (never awarded, or revoked since)."),
        d("deis_credit_at", "When the DEIS credit of the certificate in force was recorded; empty if none."),
    ]
}

fn hypothesis(p: &Pseudonymiser, m: &Milestone) -> Option<String> {
    let h = m.hypothesis_id.as_deref()?;
    Some(p.hypothesis(m.field_study_id.as_deref().unwrap_or_default(), h))
}

fn summary_columns() -> Vec<Column> {
    let int = |name, unit, meaning: &str| column(name, ColType::Int, false, unit, meaning);
    let rate = |name, meaning: &str| {
        column(
            name,
            ColType::Float,
            true,
            "ratio 0..1",
            format!("{meaning} of the learners' attendance rates (attended / held half-days over all modules; learners counted in no held session left out). Quartiles interpolate linearly between order statistics (numpy's default)."),
        )
    };
    vec![
        Shaper::cohort_column(),
        int("learners", "learners", "Learners enrolled (withdrawn ones included): the cohort's size."),
        int("withdrawals", "learners", "Learners who withdrew."),
        int("field_studies", "field studies", "Field studies formed."),
        column("median_days_commission_to_agreement", ColType::Float, true, "days", "Median over the field studies with an agreement of the Europe/Paris calendar days from version 1 of the commission to the study's last commission_agreed."),
        int("renegotiations_total", "count", "commission_renegotiated events over all field studies."),
        column("renegotiations_per_field_study", ColType::Str, false, "counts", "commission_renegotiated events per field study, ascending, separated by ';' (e.g. 0;1;2)."),
        int("defence_attempts", "count", "Defence results recorded (one per learner and defence)."),
        int("defences_passed", "count", "Of which passed."),
        int("defences_deferred", "count", "Of which deferred."),
        int("defences_failed", "count", "Of which failed."),
        int("certificates", "learners", "Learners holding a certificate in force (awarded, not revoked since)."),
        int("deis_credits", "learners", "Learners whose certificate in force is credited toward the DEIS."),
        int("attendance_learners", "learners", "Learners in the attendance distribution (counted in at least one held session)."),
        rate("attendance_rate_min", "Minimum"),
        rate("attendance_rate_q1", "First quartile"),
        rate("attendance_rate_median", "Median"),
        rate("attendance_rate_q3", "Third quartile"),
        rate("attendance_rate_max", "Maximum"),
        rate("attendance_rate_mean", "Mean"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::research::pseudonym::PseudonymKey;

    #[test]
    fn iso_weeks_use_the_paris_date() {
        let t = DateTime::parse_from_rfc3339("2025-12-28T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // 2025-12-29 00:30 in Paris: Monday of ISO week 2026-W01.
        assert_eq!(iso_week(&t), "2026-W01");
    }

    #[test]
    fn every_shape_has_unique_column_names_and_rows_of_that_width() {
        let p = Pseudonymiser::new(PseudonymKey::new(b"0123456789abcdef").unwrap());
        let empty = CohortTrajectory {
            cohort_id: "c".into(),
            learners: vec![],
            field_studies: vec![],
        };
        for shape in [Shape::Long, Shape::Wide, Shape::Summary] {
            for dates in [DateMode::Exact, DateMode::Shifted, DateMode::Week] {
                let shaper = Shaper::new(shape, dates, &p);
                let columns = shaper.columns();
                let names: std::collections::BTreeSet<_> = columns.iter().map(|c| c.name).collect();
                assert_eq!(names.len(), columns.len());
                for row in shaper.rows(&empty) {
                    assert_eq!(row.len(), columns.len());
                }
            }
        }
    }
}
