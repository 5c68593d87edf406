//! The cohort aggregate (stream `cohort/<cohort_id>`): enrolment, the timetable, attendance and
//! the learners' outcomes (certificate, DEIS credit).
//!
//! `mod.rs` holds the state and how events fold into it; `decide.rs` holds the rules of
//! enrolment and the timetable, `outcome.rs` those of the certificate (award, revocation) and
//! the DEIS credit, `complaints.rs` those of the complaints (Qualiopi indicator 31).

mod complaints;

mod decide;
mod outcome;
#[cfg(test)]
mod tests;

use crate::command::{AttendanceStatus, CohortCommand, SessionKind, Stamped};
use crate::error::DecideError;
use crate::event::CohortEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The cohort aggregate: what it follows, its learners in enrolment order and its sessions in
/// scheduling order. Empty ([`Cohort::exists`] is `false`) before `cohort_opened`.
///
/// The programme's module plans are not kept here: the rules that need them fetch the programme
/// through [`Lookups`] when they run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    cohort_id: Option<Id>,
    programme_id: Option<Id>,
    title: String,
    starts_on: Option<NaiveDate>,
    ends_on: Option<NaiveDate>,
    closed: bool,
    learners: Vec<LearnerRecord>,
    sessions: Vec<SessionRecord>,
    /// Every complaint filed, in filing order.
    complaints: Vec<Complaint>,
}

/// A learner as the cohort knows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnerRecord {
    learner_id: Id,
    name: String,
    deis_pathway: bool,
    withdrawn: bool,
    certificate_awarded: bool,
    deis_credit: bool,
}

/// A session as the cohort knows it: its current slot, its status and, once held, each counted
/// learner's attendance (after corrections).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    session_id: Id,
    module_id: Id,
    unit_id: Option<Id>,
    kind: SessionKind,
    starts_at: DateTime<FixedOffset>,
    ends_at: DateTime<FixedOffset>,
    half_days: u8,
    facilitator: String,
    status: SessionStatus,
    attendance: Vec<(Id, AttendanceStatus)>,
}

/// Where a session stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// On the timetable, not yet recorded.
    #[default]
    Scheduled,
    /// Recorded as held (`session_held`); its attendance is known.
    Held,
    /// Cancelled; it counts for nothing.
    Cancelled,
}

impl SessionStatus {
    /// `scheduled`, `held` or `cancelled`, as in the timetable read model.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Held => "held",
            Self::Cancelled => "cancelled",
        }
    }
}

impl Cohort {
    /// Whether the cohort has been opened.
    pub fn exists(&self) -> bool {
        self.cohort_id.is_some()
    }

    /// The cohort's id; `None` before it is opened.
    pub fn cohort_id(&self) -> Option<&Id> {
        self.cohort_id.as_ref()
    }

    /// The programme the cohort follows; `None` before it is opened.
    pub fn programme_id(&self) -> Option<&Id> {
        self.programme_id.as_ref()
    }

    /// The cohort's title (empty before it is opened).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// First day (calendar date); `None` before it is opened.
    pub fn starts_on(&self) -> Option<NaiveDate> {
        self.starts_on
    }

    /// Last day (calendar date); `None` before it is opened.
    pub fn ends_on(&self) -> Option<NaiveDate> {
        self.ends_on
    }

    /// Whether the cohort is closed (no more enrolments or sessions).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Every learner ever enrolled, withdrawn ones included, in enrolment order.
    pub fn learners(&self) -> &[LearnerRecord] {
        &self.learners
    }

    /// The learner `learner_id`, if ever enrolled.
    pub fn learner(&self, learner_id: &str) -> Option<&LearnerRecord> {
        self.learners.iter().find(|l| l.learner_id == *learner_id)
    }

    /// Whether `learner_id` is active: enrolled and not withdrawn.
    pub fn is_active(&self, learner_id: &str) -> bool {
        self.learner(learner_id).is_some_and(|l| !l.withdrawn)
    }

    /// Every session ever scheduled, cancelled ones included, in scheduling order.
    pub fn sessions(&self) -> &[SessionRecord] {
        &self.sessions
    }

    /// The session `session_id`, if ever scheduled.
    pub fn session(&self, session_id: &str) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.session_id == *session_id)
    }

    fn learner_mut(&mut self, learner_id: &Id) -> Option<&mut LearnerRecord> {
        self.learners
            .iter_mut()
            .find(|l| l.learner_id == *learner_id)
    }

    fn session_mut(&mut self, session_id: &Id) -> Option<&mut SessionRecord> {
        self.sessions
            .iter_mut()
            .find(|s| s.session_id == *session_id)
    }
}

impl LearnerRecord {
    /// The learner's id.
    pub fn learner_id(&self) -> &Id {
        &self.learner_id
    }

    /// The learner's name (personal data).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the learner follows the DEIS pathway.
    pub fn deis_pathway(&self) -> bool {
        self.deis_pathway
    }

    /// Whether the learner has withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn
    }

    /// Whether the learner holds a certificate in force (awarded and not revoked since).
    pub fn certificate_awarded(&self) -> bool {
        self.certificate_awarded
    }

    /// Whether the certificate in force has been credited toward the learner's DEIS.
    pub fn deis_credit(&self) -> bool {
        self.deis_credit
    }
}

impl SessionRecord {
    /// The session's id.
    pub fn session_id(&self) -> &Id {
        &self.session_id
    }

    /// The programme module it belongs to.
    pub fn module_id(&self) -> &Id {
        &self.module_id
    }

    /// The unit of that module, if any.
    pub fn unit_id(&self) -> Option<&Id> {
        self.unit_id.as_ref()
    }

    /// What kind of session it is.
    pub fn kind(&self) -> SessionKind {
        self.kind
    }

    /// Start of the current slot.
    pub fn starts_at(&self) -> DateTime<FixedOffset> {
        self.starts_at
    }

    /// End of the current slot (after the start).
    pub fn ends_at(&self) -> DateTime<FixedOffset> {
        self.ends_at
    }

    /// Its length in half-days: 1 or 2.
    pub fn half_days(&self) -> u8 {
        self.half_days
    }

    /// Who leads it.
    pub fn facilitator(&self) -> &str {
        &self.facilitator
    }

    /// Where it stands.
    pub fn status(&self) -> SessionStatus {
        self.status
    }

    /// Once held: each learner counted in it (active when it was recorded) with their current
    /// status, present first, then excused, then absent as recorded. Empty before.
    pub fn attendance(&self) -> &[(Id, AttendanceStatus)] {
        &self.attendance
    }

    /// The current attendance status of `learner_id`; `None` when the session is not held or the
    /// learner was not counted in it.
    pub fn attendance_of(&self, learner_id: &str) -> Option<AttendanceStatus> {
        self.attendance
            .iter()
            .find(|(l, _)| *l == *learner_id)
            .map(|(_, s)| *s)
    }

    /// Whether the current slot shares time with `[starts_at, ends_at)`.
    pub fn overlaps(
        &self,
        starts_at: DateTime<FixedOffset>,
        ends_at: DateTime<FixedOffset>,
    ) -> bool {
        self.starts_at < ends_at && starts_at < self.ends_at
    }
}

/// A complaint of the cohort as the rules read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Complaint {
    complaint_id: Id,
    answered: bool,
    /// When it was filed (the `complaint_filed` event's `occurred_at`, UTC); `None` only while
    /// a fold without times ([`Aggregate::apply`] alone) built the state.
    filed_at: Option<DateTime<Utc>>,
}

impl Cohort {
    /// Folds `event`, which happened at `occurred_at` (its envelope's time): as
    /// [`Aggregate::apply`], and a complaint's filing time is kept (the answer cannot be dated
    /// before it).
    pub fn apply_at(&mut self, event: CohortEvent, occurred_at: DateTime<Utc>) {
        let filed = filed_complaint(&event);
        self.apply(event);
        if let Some(id) = filed {
            self.stamp_filed(&id, occurred_at);
        }
    }

    fn stamp_filed(&mut self, complaint_id: &Id, at: DateTime<Utc>) {
        if let Some(c) = self
            .complaints
            .iter_mut()
            .find(|c| c.complaint_id == *complaint_id)
        {
            c.filed_at.get_or_insert(at);
        }
    }
}

fn filed_complaint(event: &CohortEvent) -> Option<Id> {
    match event {
        CohortEvent::ComplaintFiled { complaint_id, .. } => Some(complaint_id.clone()),
        _ => None,
    }
}

impl Aggregate for Cohort {
    const TYPE: &'static str = "cohort";
    type Command = Stamped<CohortCommand>;
    type Event = CohortEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    /// Decides a cohort command (the rules are in `decide.rs` and `outcome.rs`); emits nothing
    /// when it is refused.
    ///
    /// Errors: [`DecideError::Rejected`] with the FORMAT.md code; [`DecideError::Lookup`] when the
    /// programme or the field studies could not be read.
    async fn handle(
        &mut self,
        command: Self::Command,
        lookups: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DecideError> {
        let at = command.at.with_timezone(&Utc);
        let event = self.decide(command.command, at, lookups.as_ref()).await?;
        let filed = filed_complaint(&event);
        sink.write(event, self).await;
        // The state kept after deciding knows the filing time, as a replay would.
        if let Some(id) = filed {
            self.stamp_filed(&id, at);
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CohortEvent::CohortOpened {
                cohort_id,
                programme_id,
                title,
                starts_on,
                ends_on,
            } => {
                self.cohort_id = Some(cohort_id);
                self.programme_id = Some(programme_id);
                self.title = title;
                self.starts_on = Some(starts_on);
                self.ends_on = Some(ends_on);
            }
            CohortEvent::LearnerEnrolled {
                learner_id,
                name,
                deis_pathway,
                ..
            } => {
                if self.learner(learner_id.as_str()).is_none() {
                    self.learners.push(LearnerRecord {
                        learner_id,
                        name,
                        deis_pathway,
                        withdrawn: false,
                        certificate_awarded: false,
                        deis_credit: false,
                    });
                }
            }
            CohortEvent::LearnerWithdrew { learner_id, .. } => {
                if let Some(l) = self.learner_mut(&learner_id) {
                    l.withdrawn = true;
                }
            }
            CohortEvent::SessionScheduled {
                session_id,
                module_id,
                unit_id,
                kind,
                starts_at,
                ends_at,
                half_days,
                facilitator,
                ..
            } => {
                if self.session(session_id.as_str()).is_none() {
                    self.sessions.push(SessionRecord {
                        session_id,
                        module_id,
                        unit_id,
                        kind,
                        starts_at,
                        ends_at,
                        half_days,
                        facilitator,
                        status: SessionStatus::Scheduled,
                        attendance: Vec::new(),
                    });
                }
            }
            CohortEvent::SessionRescheduled {
                session_id,
                starts_at,
                ends_at,
                ..
            } => {
                if let Some(s) = self.session_mut(&session_id) {
                    s.starts_at = starts_at;
                    s.ends_at = ends_at;
                }
            }
            CohortEvent::SessionCancelled { session_id, .. } => {
                if let Some(s) = self.session_mut(&session_id) {
                    s.status = SessionStatus::Cancelled;
                }
            }
            CohortEvent::SessionHeld {
                session_id,
                present,
                excused,
                absent,
                ..
            } => {
                if let Some(s) = self.session_mut(&session_id) {
                    s.status = SessionStatus::Held;
                    let marked = |ids: Vec<Id>, status| ids.into_iter().map(move |l| (l, status));
                    s.attendance = marked(present, AttendanceStatus::Present)
                        .chain(marked(excused, AttendanceStatus::Excused))
                        .chain(marked(absent, AttendanceStatus::Absent))
                        .collect();
                }
            }
            CohortEvent::AttendanceCorrected {
                session_id,
                learner_id,
                status,
                ..
            } => {
                if let Some(s) = self.session_mut(&session_id) {
                    if let Some(entry) = s.attendance.iter_mut().find(|(l, _)| *l == learner_id) {
                        entry.1 = status;
                    }
                }
            }
            CohortEvent::CohortClosed { .. } => self.closed = true,
            CohortEvent::CertificateAwarded { learner_id, .. } => {
                if let Some(l) = self.learner_mut(&learner_id) {
                    l.certificate_awarded = true;
                }
            }
            CohortEvent::DeisCreditRecorded { learner_id, .. } => {
                if let Some(l) = self.learner_mut(&learner_id) {
                    l.deis_credit = true;
                }
            }
            CohortEvent::CertificateRevoked { learner_id, .. } => {
                if let Some(l) = self.learner_mut(&learner_id) {
                    l.certificate_awarded = false;
                    l.deis_credit = false;
                }
            }
            CohortEvent::ComplaintFiled { complaint_id, .. } => {
                if !self
                    .complaints
                    .iter()
                    .any(|c| c.complaint_id == complaint_id)
                {
                    self.complaints.push(Complaint {
                        complaint_id,
                        answered: false,
                        filed_at: None,
                    });
                }
            }
            CohortEvent::ComplaintAnswered { complaint_id, .. } => {
                if let Some(entry) = self
                    .complaints
                    .iter_mut()
                    .find(|c| c.complaint_id == complaint_id)
                {
                    entry.answered = true;
                }
            }
        }
    }
}
