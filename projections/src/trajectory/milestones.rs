//! The milestones of each learner's trajectory in one cohort: a pure fold of the cohort's
//! stream and of its field studies' streams ([`CohortFold`]), finished into a
//! [`CohortTrajectory`] once every event of the cohort has been seen.
//!
//! Milestones carry raw ids and exact instants, as recorded; pseudonyms, date shifts and the
//! choice of columns are the exporter's business (`services/src/research`). Free text (names,
//! briefs, notes, remarks, reasons, titles) is not kept: reasons become a category
//! ([`super::reasons`]), organisations their sector.

use super::reasons::{self, KeptCategories, ReasonKind};
use crate::RecordedEvent;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use fieldtrail_domain::command::{AttendanceStatus, DefenceResult, SessionKind};
use fieldtrail_domain::{AnyEvent, CohortEvent, FieldStudyEvent, Id};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What happened to a learner. The `snake_case` names ([`MilestoneKind::as_str`]) are the
/// values of the exports' `milestone` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MilestoneKind {
    /// `enrolled`: the learner enrolled (with their DEIS pathway flag).
    Enrolled,
    /// `first_session_attended`: the earliest held session the learner was present at (after
    /// corrections).
    FirstSessionAttended,
    /// `last_session_attended`: the latest held session the learner was present at.
    LastSessionAttended,
    /// `attendance_month_end`: the learner's attendance in one module at the end of a month.
    AttendanceMonthEnd,
    /// `field_study_joined`: the learner became a member of a field study.
    FieldStudyJoined,
    /// `field_study_left`: the learner left a field study.
    FieldStudyLeft,
    /// `commission_negotiated`: version 1 of their field study's commission.
    CommissionNegotiated,
    /// `commission_renegotiated`: a new version of the commission.
    CommissionRenegotiated,
    /// `commission_agreed`: a version of the commission was agreed.
    CommissionAgreed,
    /// `hypothesis_stated`.
    HypothesisStated,
    /// `hypothesis_revised`.
    HypothesisRevised,
    /// `hypothesis_abandoned`.
    HypothesisAbandoned,
    /// `production_submitted`: a version of the field study's written production.
    ProductionSubmitted,
    /// `defence_attempt`: the learner's result at one defence (attempt 1, 2, ...).
    DefenceAttempt,
    /// `certificate_awarded`.
    CertificateAwarded,
    /// `certificate_revoked`: the certificate is no longer in force (a later
    /// `certificate_awarded` may follow).
    CertificateRevoked,
    /// `deis_credit_recorded`: the certificate was credited toward the DEIS.
    DeisCreditRecorded,
    /// `withdrew`: the learner withdrew from the cohort.
    Withdrew,
}

impl MilestoneKind {
    /// Every kind, in the order above.
    pub const ALL: [MilestoneKind; 18] = [
        Self::Enrolled,
        Self::FirstSessionAttended,
        Self::LastSessionAttended,
        Self::AttendanceMonthEnd,
        Self::FieldStudyJoined,
        Self::FieldStudyLeft,
        Self::CommissionNegotiated,
        Self::CommissionRenegotiated,
        Self::CommissionAgreed,
        Self::HypothesisStated,
        Self::HypothesisRevised,
        Self::HypothesisAbandoned,
        Self::ProductionSubmitted,
        Self::DefenceAttempt,
        Self::CertificateAwarded,
        Self::CertificateRevoked,
        Self::DeisCreditRecorded,
        Self::Withdrew,
    ];

    /// The `snake_case` name, e.g. `defence_attempt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "enrolled",
            Self::FirstSessionAttended => "first_session_attended",
            Self::LastSessionAttended => "last_session_attended",
            Self::AttendanceMonthEnd => "attendance_month_end",
            Self::FieldStudyJoined => "field_study_joined",
            Self::FieldStudyLeft => "field_study_left",
            Self::CommissionNegotiated => "commission_negotiated",
            Self::CommissionRenegotiated => "commission_renegotiated",
            Self::CommissionAgreed => "commission_agreed",
            Self::HypothesisStated => "hypothesis_stated",
            Self::HypothesisRevised => "hypothesis_revised",
            Self::HypothesisAbandoned => "hypothesis_abandoned",
            Self::ProductionSubmitted => "production_submitted",
            Self::DefenceAttempt => "defence_attempt",
            Self::CertificateAwarded => "certificate_awarded",
            Self::CertificateRevoked => "certificate_revoked",
            Self::DeisCreditRecorded => "deis_credit_recorded",
            Self::Withdrew => "withdrew",
        }
    }
}

/// A session kind's `snake_case` name (`course`, `field_work`, ...).
pub fn session_kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Course => "course",
        SessionKind::ReflexiveAccompaniment => "reflexive_accompaniment",
        SessionKind::CriticalDebate => "critical_debate",
        SessionKind::FieldWork => "field_work",
        SessionKind::Defence => "defence",
    }
}

/// Attendance counts of one module, in half-days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HalfDays {
    /// Half-days of held sessions the learner was counted in.
    pub held: u32,
    /// Of which present.
    pub attended: u32,
    /// Of which excused.
    pub excused: u32,
    /// Of which absent.
    pub absent: u32,
}

impl HalfDays {
    fn add(&mut self, status: AttendanceStatus, half_days: u32) {
        self.held = self.held.saturating_add(half_days);
        let bucket = match status {
            AttendanceStatus::Present => &mut self.attended,
            AttendanceStatus::Excused => &mut self.excused,
            AttendanceStatus::Absent => &mut self.absent,
        };
        *bucket = bucket.saturating_add(half_days);
    }

    /// `attended / held` (0 to 1); `None` when nothing was held.
    pub fn rate(&self) -> Option<f64> {
        (self.held > 0).then(|| f64::from(self.attended) / f64::from(self.held))
    }
}

/// One milestone of a learner's trajectory. Fields that do not apply to its kind are `None`
/// (or empty).
#[derive(Clone, Debug, PartialEq)]
pub struct Milestone {
    /// What happened.
    pub kind: MilestoneKind,
    /// When it happened in the world (the event's `occurred_at`, UTC); for
    /// `attendance_month_end`, the last second of the month (23:59:59 Europe/Paris).
    pub occurred_at: DateTime<Utc>,
    /// When the journal recorded the event (UTC); `None` for `attendance_month_end`.
    pub recorded_at: Option<DateTime<Utc>>,
    /// The global log position of the event it comes from; `None` for `attendance_month_end`.
    pub position: Option<i64>,
    /// Who recorded the event, `role:name` as stored; `None` for `attendance_month_end`.
    pub actor: Option<String>,
    /// The programme's module (`attendance_month_end`, first/last session attended).
    pub module_id: Option<String>,
    /// The session's kind (first/last session attended).
    pub session_kind: Option<SessionKind>,
    /// The session's facilitator as recorded, `facilitator:...` (first/last session attended).
    pub facilitator: Option<String>,
    /// The field study (field study, commission, hypothesis, production and defence milestones).
    pub field_study_id: Option<String>,
    /// The commissioning organisation's sector (`field_study_joined`).
    pub sector: Option<String>,
    /// The commission's version (commission milestones) or the production's version.
    pub version: Option<u32>,
    /// The hypothesis (hypothesis milestones).
    pub hypothesis_id: Option<String>,
    /// The reason's category ([`super::reasons::CATEGORIES`]): withdrawal, renegotiation,
    /// hypothesis revision or abandonment, leaving a field study.
    pub reason_category: Option<&'static str>,
    /// 1 for the learner's first defence, 2 for the second, ... (`defence_attempt`).
    pub attempt: Option<u32>,
    /// The defence's result (`defence_attempt`), after rectifications.
    pub result: Option<DefenceResult>,
    /// The jury members' names as recorded, in the jury's order (`defence_attempt`).
    pub jury: Vec<String>,
    /// Number of pages (`production_submitted`).
    pub pages: Option<u32>,
    /// Whether the learner follows the DEIS pathway (`enrolled`).
    pub deis_pathway: Option<bool>,
    /// Half-days in the module up to the month's end (`attendance_month_end`).
    pub half_days: Option<HalfDays>,
}

impl Milestone {
    fn new(kind: MilestoneKind, event: &RecordedEvent) -> Self {
        Self {
            recorded_at: Some(event.recorded_at),
            position: Some(event.position),
            actor: Some(event.actor.clone()),
            ..blank(kind, event.occurred_at)
        }
    }

    fn in_study(kind: MilestoneKind, event: &RecordedEvent, field_study_id: &str) -> Self {
        Self {
            field_study_id: Some(field_study_id.to_owned()),
            ..Self::new(kind, event)
        }
    }

    /// The order of milestones in a trajectory: occurred time, then log position (derived
    /// month-end rows after the events of the same instant), then kind, then module.
    fn sort_key(&self) -> (DateTime<Utc>, i64, MilestoneKind, Option<&str>) {
        (
            self.occurred_at,
            self.position.unwrap_or(i64::MAX),
            self.kind,
            self.module_id.as_deref(),
        )
    }
}

/// One learner's trajectory in a cohort.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerTrajectory {
    /// The learner's id (raw: the exporter replaces it by a pseudonym).
    pub learner_id: String,
    /// When the learner enrolled (occurred clock, UTC).
    pub enrolled_at: DateTime<Utc>,
    /// Whether they follow the DEIS pathway.
    pub deis_pathway: bool,
    /// When they withdrew, if they did.
    pub withdrew_at: Option<DateTime<Utc>>,
    /// Attendance over every module, in half-days (as the transcript counts it).
    pub attendance: HalfDays,
    /// Attendance per module, by module id.
    pub modules: BTreeMap<String, HalfDays>,
    /// Number of held sessions the learner was present at (after corrections).
    pub sessions_attended: u32,
    /// The milestones, ordered by occurred time (then log position).
    pub milestones: Vec<Milestone>,
}

impl LearnerTrajectory {
    /// The milestones of one kind, in trajectory order.
    pub fn of_kind(&self, kind: MilestoneKind) -> impl Iterator<Item = &Milestone> {
        self.milestones.iter().filter(move |m| m.kind == kind)
    }

    /// The award of the certificate in force (the last `certificate_awarded` with no
    /// `certificate_revoked` after it), if any.
    pub fn certificate_in_force(&self) -> Option<&Milestone> {
        self.last_unrevoked(MilestoneKind::CertificateAwarded)
    }

    /// The DEIS credit of the certificate in force, if any (a revocation ends it too).
    pub fn deis_credit_in_force(&self) -> Option<&Milestone> {
        self.last_unrevoked(MilestoneKind::DeisCreditRecorded)
    }

    fn last_unrevoked(&self, kind: MilestoneKind) -> Option<&Milestone> {
        self.milestones
            .iter()
            .rev()
            .find(|m| m.kind == kind || m.kind == MilestoneKind::CertificateRevoked)
            .filter(|m| m.kind == kind)
    }
}

/// What the cohort summary needs of a field study.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldStudyOutline {
    /// The field study's id (raw).
    pub field_study_id: String,
    /// The organisation's sector.
    pub sector: String,
    /// Number of `commission_renegotiated` events.
    pub renegotiations: u32,
    /// Calendar days (Europe/Paris dates) from version 1's negotiation to the study's last
    /// `commission_agreed`; `None` without both.
    pub days_commission_to_agreement: Option<i64>,
}

/// A cohort's trajectories: every enrolled learner, in enrolment order, and its field studies
/// in the order they were formed.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortTrajectory {
    /// The cohort's id (raw).
    pub cohort_id: String,
    /// Its learners.
    pub learners: Vec<LearnerTrajectory>,
    /// Its field studies.
    pub field_studies: Vec<FieldStudyOutline>,
}

#[derive(Clone, Debug)]
struct HeldSession {
    module_id: String,
    kind: Option<SessionKind>,
    facilitator: Option<String>,
    half_days: u32,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    position: i64,
    actor: String,
}

#[derive(Clone, Debug)]
struct ScheduledSession {
    kind: SessionKind,
    facilitator: String,
}

#[derive(Clone, Debug)]
struct LearnerState {
    learner_id: String,
    enrolled_at: DateTime<Utc>,
    deis_pathway: bool,
    withdrew_at: Option<DateTime<Utc>>,
    /// Index into `CohortFold::held` → the learner's status there (after corrections).
    attendance: BTreeMap<usize, AttendanceStatus>,
    defence_attempts: u32,
    milestones: Vec<Milestone>,
}

#[derive(Clone, Debug, Default)]
struct StudyState {
    members: Vec<String>,
    sector: String,
    juries: HashMap<String, Vec<String>>,
    negotiated_at: Option<DateTime<Utc>>,
    last_agreed_at: Option<DateTime<Utc>>,
    renegotiations: u32,
}

/// The fold of one cohort: apply its events (cohort stream and its field studies' streams) in
/// global-log order, then [`CohortFold::finish`]. Events of other cohorts, or that name
/// learners, sessions or studies the fold has not seen, change nothing; nothing panics.
#[derive(Clone, Debug)]
pub struct CohortFold {
    cohort_id: String,
    learners: Vec<LearnerState>,
    learner_index: HashMap<String, usize>,
    sessions: HashMap<String, ScheduledSession>,
    held: Vec<HeldSession>,
    held_index: HashMap<String, usize>,
    studies: Vec<(String, StudyState)>,
    /// The log position of each `(field study, defence, learner)` outcome (whose
    /// `defence_attempt` a rectification corrects).
    outcome_positions: HashMap<(String, String, String), i64>,
    study_index: HashMap<String, usize>,
    /// Categories kept by erasures, for reasons that read as the erasure marker.
    kept: Arc<KeptCategories>,
}

impl CohortFold {
    /// An empty fold for `cohort_id`.
    pub fn new(cohort_id: &str) -> Self {
        Self::with_kept(cohort_id, Arc::default())
    }

    /// An empty fold for `cohort_id` that reads an erased reason as the category its erasure
    /// kept in `kept` (collected from the whole log beforehand).
    pub fn with_kept(cohort_id: &str, kept: Arc<KeptCategories>) -> Self {
        Self {
            cohort_id: cohort_id.to_owned(),
            learners: Vec::new(),
            learner_index: HashMap::new(),
            sessions: HashMap::new(),
            held: Vec::new(),
            held_index: HashMap::new(),
            studies: Vec::new(),
            outcome_positions: HashMap::new(),
            study_index: HashMap::new(),
            kept,
        }
    }

    /// The category of `event`'s `reason` field, `text`.
    fn reason_category(&self, kind: ReasonKind, event: &RecordedEvent, text: &str) -> &'static str {
        self.kept.category(kind, &event.event_id, "reason", text)
    }

    /// The cohort's id.
    pub fn cohort_id(&self) -> &str {
        &self.cohort_id
    }

    /// The ids of the field studies formed in this cohort so far.
    pub fn field_study_ids(&self) -> impl Iterator<Item = &str> {
        self.studies.iter().map(|(id, _)| id.as_str())
    }

    fn learner(&mut self, id: &Id) -> Option<&mut LearnerState> {
        let i = *self.learner_index.get(id.as_str())?;
        self.learners.get_mut(i)
    }

    /// Folds one event (of this cohort's stream or of one of its field studies).
    pub fn apply(&mut self, event: &RecordedEvent) {
        match &event.event {
            AnyEvent::Cohort(e) => self.apply_cohort(event, e),
            AnyEvent::FieldStudy(e) => self.apply_study(event, e),
            // An erasure changes no milestone: the research export keeps no personal datum.
            AnyEvent::Programme(_) | AnyEvent::Subject(_) => {}
        }
    }

    fn apply_cohort(&mut self, event: &RecordedEvent, e: &CohortEvent) {
        use CohortEvent as C;
        use MilestoneKind as K;
        match e {
            C::LearnerEnrolled {
                learner_id,
                deis_pathway,
                ..
            } => {
                if self.learner_index.contains_key(learner_id.as_str()) {
                    return;
                }
                let mut enrolled = Milestone::new(K::Enrolled, event);
                enrolled.deis_pathway = Some(*deis_pathway);
                self.learner_index
                    .insert(learner_id.as_str().to_owned(), self.learners.len());
                self.learners.push(LearnerState {
                    learner_id: learner_id.as_str().to_owned(),
                    enrolled_at: event.occurred_at,
                    deis_pathway: *deis_pathway,
                    withdrew_at: None,
                    attendance: BTreeMap::new(),
                    defence_attempts: 0,
                    milestones: vec![enrolled],
                });
            }
            C::LearnerWithdrew {
                learner_id, reason, ..
            } => {
                let category = self.reason_category(ReasonKind::Withdrawal, event, reason.as_str());
                if let Some(learner) = self.learner(learner_id) {
                    if learner.withdrew_at.is_none() {
                        learner.withdrew_at = Some(event.occurred_at);
                    }
                    let mut m = Milestone::new(K::Withdrew, event);
                    m.reason_category = Some(category);
                    learner.milestones.push(m);
                }
            }
            C::SessionScheduled {
                session_id,
                kind,
                facilitator,
                ..
            } => {
                self.sessions.insert(
                    session_id.as_str().to_owned(),
                    ScheduledSession {
                        kind: *kind,
                        facilitator: facilitator.clone(),
                    },
                );
            }
            C::SessionHeld {
                session_id,
                module_id,
                half_days,
                present,
                excused,
                absent,
                ..
            } => {
                if self.held_index.contains_key(session_id.as_str()) {
                    return;
                }
                let scheduled = self.sessions.get(session_id.as_str());
                let index = self.held.len();
                self.held.push(HeldSession {
                    module_id: module_id.as_str().to_owned(),
                    kind: scheduled.map(|s| s.kind),
                    facilitator: scheduled.map(|s| s.facilitator.clone()),
                    half_days: u32::from(*half_days),
                    occurred_at: event.occurred_at,
                    recorded_at: event.recorded_at,
                    position: event.position,
                    actor: event.actor.clone(),
                });
                self.held_index
                    .insert(session_id.as_str().to_owned(), index);
                for (ids, status) in [
                    (present, AttendanceStatus::Present),
                    (excused, AttendanceStatus::Excused),
                    (absent, AttendanceStatus::Absent),
                ] {
                    for id in ids {
                        if let Some(learner) = self.learner(id) {
                            learner.attendance.entry(index).or_insert(status);
                        }
                    }
                }
            }
            C::AttendanceCorrected {
                session_id,
                learner_id,
                status,
                ..
            } => {
                let Some(&index) = self.held_index.get(session_id.as_str()) else {
                    return;
                };
                if let Some(learner) = self.learner(learner_id) {
                    if let Some(current) = learner.attendance.get_mut(&index) {
                        *current = *status;
                    }
                }
            }
            C::CertificateAwarded { learner_id, .. } => {
                if let Some(learner) = self.learner(learner_id) {
                    learner
                        .milestones
                        .push(Milestone::new(K::CertificateAwarded, event));
                }
            }
            C::DeisCreditRecorded { learner_id, .. } => {
                if let Some(learner) = self.learner(learner_id) {
                    learner
                        .milestones
                        .push(Milestone::new(K::DeisCreditRecorded, event));
                }
            }
            C::CertificateRevoked { learner_id, .. } => {
                if let Some(learner) = self.learner(learner_id) {
                    learner
                        .milestones
                        .push(Milestone::new(K::CertificateRevoked, event));
                }
            }
            C::CohortOpened { .. }
            | C::SessionRescheduled { .. }
            | C::SessionCancelled { .. }
            | C::CohortClosed { .. }
            | C::ComplaintFiled { .. }
            | C::ComplaintAnswered { .. } => {}
        }
    }

    /// Pushes a milestone built by `make` to every current member of the study.
    fn for_members(&mut self, study: usize, make: impl Fn() -> Milestone) {
        let Some((_, state)) = self.studies.get(study) else {
            return;
        };
        let members = state.members.clone();
        for member in members {
            if let Some(&i) = self.learner_index.get(&member) {
                if let Some(learner) = self.learners.get_mut(i) {
                    learner.milestones.push(make());
                }
            }
        }
    }

    fn apply_study(&mut self, event: &RecordedEvent, e: &FieldStudyEvent) {
        use FieldStudyEvent as F;
        use MilestoneKind as K;
        let fs = event.stream_id.as_str();
        if let F::FieldStudyFormed {
            members,
            organisation,
            split_from,
            ..
        } = e
        {
            if self.study_index.contains_key(fs) {
                return;
            }
            self.study_index.insert(fs.to_owned(), self.studies.len());
            self.studies.push((
                fs.to_owned(),
                StudyState {
                    members: members.iter().map(|m| m.as_str().to_owned()).collect(),
                    sector: organisation.sector.clone(),
                    ..StudyState::default()
                },
            ));
            let sector = organisation.sector.clone();
            for member in members {
                if let Some(learner) = self.learner(member) {
                    let mut m = Milestone::in_study(K::FieldStudyJoined, event, fs);
                    m.sector = Some(sector.clone());
                    m.reason_category = split_from.is_some().then_some(reasons::SPLIT);
                    learner.milestones.push(m);
                }
            }
            return;
        }
        let Some(&study) = self.study_index.get(fs) else {
            return;
        };
        match e {
            F::FieldStudyFormed { .. } => {}
            F::MembersChanged {
                join,
                leave,
                reason,
                members,
                ..
            } => {
                let sector = self
                    .studies
                    .get(study)
                    .map(|(_, s)| s.sector.clone())
                    .unwrap_or_default();
                let category = self.reason_category(ReasonKind::Leave, event, reason.as_str());
                for id in join {
                    if let Some(learner) = self.learner(id) {
                        let mut m = Milestone::in_study(K::FieldStudyJoined, event, fs);
                        m.sector = Some(sector.clone());
                        learner.milestones.push(m);
                    }
                }
                for id in leave {
                    if let Some(learner) = self.learner(id) {
                        let mut m = Milestone::in_study(K::FieldStudyLeft, event, fs);
                        m.reason_category = Some(category);
                        learner.milestones.push(m);
                    }
                }
                if let Some((_, state)) = self.studies.get_mut(study) {
                    state.members = members.iter().map(|m| m.as_str().to_owned()).collect();
                }
            }
            F::FieldStudySplit {
                members, remaining, ..
            } => {
                for id in members {
                    if let Some(learner) = self.learner(id) {
                        let mut m = Milestone::in_study(K::FieldStudyLeft, event, fs);
                        m.reason_category = Some(reasons::SPLIT);
                        learner.milestones.push(m);
                    }
                }
                if let Some((_, state)) = self.studies.get_mut(study) {
                    state.members = remaining.iter().map(|m| m.as_str().to_owned()).collect();
                }
            }
            F::DefenceResultRectified {
                defence_id,
                learner_id,
                result,
                ..
            } => {
                let key = (
                    fs.to_owned(),
                    defence_id.as_str().to_owned(),
                    learner_id.as_str().to_owned(),
                );
                let position = self.outcome_positions.get(&key).copied();
                if let (Some(learner), Some(position)) = (self.learner(learner_id), position) {
                    if let Some(m) = learner
                        .milestones
                        .iter_mut()
                        .find(|m| m.kind == K::DefenceAttempt && m.position == Some(position))
                    {
                        m.result = Some(*result);
                    }
                }
            }
            F::CommissionNegotiated { version, .. } => {
                if let Some((_, state)) = self.studies.get_mut(study) {
                    state.negotiated_at.get_or_insert(event.occurred_at);
                }
                self.for_members(study, || Milestone {
                    version: Some(*version),
                    ..Milestone::in_study(K::CommissionNegotiated, event, fs)
                });
            }
            F::CommissionRenegotiated {
                version, reason, ..
            } => {
                if let Some((_, state)) = self.studies.get_mut(study) {
                    state.renegotiations = state.renegotiations.saturating_add(1);
                }
                let category =
                    self.reason_category(ReasonKind::Renegotiation, event, reason.as_str());
                self.for_members(study, || Milestone {
                    version: Some(*version),
                    reason_category: Some(category),
                    ..Milestone::in_study(K::CommissionRenegotiated, event, fs)
                });
            }
            F::CommissionAgreed { version, .. } => {
                if let Some((_, state)) = self.studies.get_mut(study) {
                    state.last_agreed_at = Some(event.occurred_at);
                }
                self.for_members(study, || Milestone {
                    version: Some(*version),
                    ..Milestone::in_study(K::CommissionAgreed, event, fs)
                });
            }
            F::HypothesisStated { hypothesis_id, .. } => {
                self.for_members(study, || Milestone {
                    hypothesis_id: Some(hypothesis_id.as_str().to_owned()),
                    ..Milestone::in_study(K::HypothesisStated, event, fs)
                });
            }
            F::HypothesisRevised {
                hypothesis_id,
                reason,
                ..
            }
            | F::HypothesisAbandoned {
                hypothesis_id,
                reason,
                ..
            } => {
                let kind = if matches!(e, F::HypothesisRevised { .. }) {
                    K::HypothesisRevised
                } else {
                    K::HypothesisAbandoned
                };
                let category = self.reason_category(ReasonKind::Hypothesis, event, reason.as_str());
                self.for_members(study, || Milestone {
                    hypothesis_id: Some(hypothesis_id.as_str().to_owned()),
                    reason_category: Some(category),
                    ..Milestone::in_study(kind, event, fs)
                });
            }
            F::ProductionSubmitted { version, pages, .. } => {
                self.for_members(study, || Milestone {
                    version: Some(*version),
                    pages: Some(*pages),
                    ..Milestone::in_study(K::ProductionSubmitted, event, fs)
                });
            }
            F::DefenceScheduled {
                defence_id, jury, ..
            } => {
                if let Some((_, state)) = self.studies.get_mut(study) {
                    state.juries.insert(
                        defence_id.as_str().to_owned(),
                        jury.iter().map(|j| j.name.clone()).collect(),
                    );
                }
            }
            F::DefencePassed { .. } | F::DefenceDeferred { .. } | F::DefenceFailed { .. } => {
                let Some((defence_id, learner_id, result)) = e.defence_result() else {
                    return;
                };
                let jury = self
                    .studies
                    .get(study)
                    .and_then(|(_, s)| s.juries.get(defence_id.as_str()).cloned())
                    .unwrap_or_default();
                self.outcome_positions.insert(
                    (
                        fs.to_owned(),
                        defence_id.as_str().to_owned(),
                        learner_id.as_str().to_owned(),
                    ),
                    event.position,
                );
                if let Some(learner) = self.learner(learner_id) {
                    learner.defence_attempts = learner.defence_attempts.saturating_add(1);
                    let mut m = Milestone::in_study(K::DefenceAttempt, event, fs);
                    m.attempt = Some(learner.defence_attempts);
                    m.result = Some(result);
                    m.jury = jury;
                    learner.milestones.push(m);
                }
            }
            F::InterventionLogged { .. }
            | F::ReflexiveNoteRecorded { .. }
            | F::JuryMemberRecused { .. }
            | F::JuryMemberAppointed { .. }
            | F::DefenceCancelled { .. } => {}
        }
    }

    /// The trajectories: derived milestones (first and last session attended, month-end
    /// attendance) added, every learner's milestones sorted.
    pub fn finish(self) -> CohortTrajectory {
        let months = month_range(&self.held);
        let learners = self
            .learners
            .into_iter()
            .map(|learner| finish_learner(learner, &self.held, months))
            .collect();
        let field_studies = self
            .studies
            .into_iter()
            .map(|(id, s)| FieldStudyOutline {
                field_study_id: id,
                sector: s.sector,
                renegotiations: s.renegotiations,
                days_commission_to_agreement: match (s.negotiated_at, s.last_agreed_at) {
                    (Some(from), Some(to)) => Some(calendar_days(from, to)),
                    _ => None,
                },
            })
            .collect();
        CohortTrajectory {
            cohort_id: self.cohort_id,
            learners,
            field_studies,
        }
    }
}

/// Calendar days between the Europe/Paris dates of two instants (negative when `to` is
/// earlier).
pub fn calendar_days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let from = from.with_timezone(&Paris).date_naive();
    let to = to.with_timezone(&Paris).date_naive();
    (to - from).num_days()
}

/// A (year, month) of the Europe/Paris calendar.
type Month = (i32, u32);

fn month_of(t: DateTime<Utc>) -> Month {
    let local = t.with_timezone(&Paris);
    (local.year(), local.month())
}

fn next_month((year, month): Month) -> Month {
    if month >= 12 {
        (year.saturating_add(1), 1)
    } else {
        (year, month + 1)
    }
}

/// The first instant of a Europe/Paris month, in UTC.
fn month_start((year, month): Month) -> Option<DateTime<Utc>> {
    let midnight = NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?;
    Paris
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The months of the cohort's held sessions, first and last (Europe/Paris).
fn month_range(held: &[HeldSession]) -> Option<(Month, Month)> {
    let first = held.iter().map(|h| month_of(h.occurred_at)).min()?;
    let last = held.iter().map(|h| month_of(h.occurred_at)).max()?;
    Some((first, last))
}

/// At most this many month ends per learner (a guard against absurd dates, ~50 years).
const MAX_MONTHS: usize = 600;

fn finish_learner(
    mut learner: LearnerState,
    held: &[HeldSession],
    months: Option<(Month, Month)>,
) -> LearnerTrajectory {
    use MilestoneKind as K;
    let mut milestones = std::mem::take(&mut learner.milestones);
    let mut total = HalfDays::default();
    let mut modules: BTreeMap<String, HalfDays> = BTreeMap::new();
    let mut present: Vec<&HeldSession> = Vec::new();
    for (&index, &status) in &learner.attendance {
        let Some(session) = held.get(index) else {
            continue;
        };
        total.add(status, session.half_days);
        modules
            .entry(session.module_id.clone())
            .or_default()
            .add(status, session.half_days);
        if status == AttendanceStatus::Present {
            present.push(session);
        }
    }
    present.sort_by_key(|s| (s.occurred_at, s.position));
    for (kind, session) in [
        (K::FirstSessionAttended, present.first()),
        (K::LastSessionAttended, present.last()),
    ] {
        if let Some(s) = session {
            milestones.push(Milestone {
                kind,
                occurred_at: s.occurred_at,
                recorded_at: Some(s.recorded_at),
                position: Some(s.position),
                actor: Some(s.actor.clone()),
                module_id: Some(s.module_id.clone()),
                session_kind: s.kind,
                facilitator: s.facilitator.clone(),
                ..blank(kind, s.occurred_at)
            });
        }
    }
    milestones.extend(month_ends(&learner, held, months));
    milestones.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    LearnerTrajectory {
        learner_id: learner.learner_id,
        enrolled_at: learner.enrolled_at,
        deis_pathway: learner.deis_pathway,
        withdrew_at: learner.withdrew_at,
        attendance: total,
        modules,
        sessions_attended: u32::try_from(present.len()).unwrap_or(u32::MAX),
        milestones,
    }
}

/// A milestone with nothing but its kind and time (derived milestones start from it).
fn blank(kind: MilestoneKind, occurred_at: DateTime<Utc>) -> Milestone {
    Milestone {
        kind,
        occurred_at,
        recorded_at: None,
        position: None,
        actor: None,
        module_id: None,
        session_kind: None,
        facilitator: None,
        field_study_id: None,
        sector: None,
        version: None,
        hypothesis_id: None,
        reason_category: None,
        attempt: None,
        result: None,
        jury: Vec::new(),
        pages: None,
        deis_pathway: None,
        half_days: None,
    }
}

/// One `attendance_month_end` per module the learner was counted in, at the end of each month
/// from the month of the first session they were counted in to the cohort's last month of held
/// sessions (or the month they withdrew, if earlier). Sessions count in the month their
/// `session_held` occurred (Europe/Paris); corrections count with the session they correct.
fn month_ends(
    learner: &LearnerState,
    held: &[HeldSession],
    months: Option<(Month, Month)>,
) -> Vec<Milestone> {
    let Some((_, cohort_last)) = months else {
        return Vec::new();
    };
    let counted: Vec<(&HeldSession, AttendanceStatus)> = learner
        .attendance
        .iter()
        .filter_map(|(&i, &status)| held.get(i).map(|s| (s, status)))
        .collect();
    let Some(first) = counted.iter().map(|(s, _)| month_of(s.occurred_at)).min() else {
        return Vec::new();
    };
    let last = match learner.withdrew_at {
        Some(t) => cohort_last.min(month_of(t)),
        None => cohort_last,
    };
    let mut out = Vec::new();
    let mut month = first;
    for _ in 0..MAX_MONTHS {
        if month > last {
            break;
        }
        let next = next_month(month);
        let Some(cutoff) = month_start(next) else {
            break;
        };
        let mut per_module: BTreeMap<&str, HalfDays> = BTreeMap::new();
        for (session, status) in &counted {
            if session.occurred_at < cutoff {
                per_module
                    .entry(session.module_id.as_str())
                    .or_default()
                    .add(*status, session.half_days);
            }
        }
        let Some(end) = cutoff.checked_sub_signed(chrono::Duration::seconds(1)) else {
            break;
        };
        for (module, half_days) in per_module {
            if half_days.held > 0 {
                out.push(Milestone {
                    module_id: Some(module.to_owned()),
                    half_days: Some(half_days),
                    ..blank(MilestoneKind::AttendanceMonthEnd, end)
                });
            }
        }
        month = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_the_year() {
        assert_eq!(next_month((2025, 12)), (2026, 1));
        assert_eq!(next_month((2025, 3)), (2025, 4));
        let start = month_start((2025, 11)).unwrap();
        assert_eq!(start.to_rfc3339(), "2025-10-31T23:00:00+00:00");
    }

    #[test]
    fn calendar_days_use_paris_dates() {
        let a = DateTime::parse_from_rfc3339("2025-10-21T23:30:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let b = DateTime::parse_from_rfc3339("2025-10-22T22:30:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        // 2025-10-22 01:30 and 2025-10-23 00:30 in Paris.
        assert_eq!(calendar_days(a, b), 1);
        assert_eq!(calendar_days(b, a), -1);
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: std::collections::BTreeSet<_> =
            MilestoneKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), MilestoneKind::ALL.len());
    }
}
