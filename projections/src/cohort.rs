//! The fold of a cohort's stream: its sessions (timetable), its learners (transcripts) and its
//! complaints (the complaints register).

use crate::complaints::Complaints;
use crate::time::paris_date;
use crate::timetable::{SessionState, SessionStatus};
use crate::transcript::{LearnerState, LearnerStatus};
use chrono::{DateTime, Utc};
use fieldtrail_domain::command::AttendanceStatus;
use fieldtrail_domain::{CohortEvent, Id};
use std::collections::BTreeMap;

/// A cohort as the fold keeps it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CohortState {
    pub programme_id: String,
    pub sessions: BTreeMap<String, SessionState>,
    pub learners: BTreeMap<String, LearnerState>,
    pub complaints: Complaints,
}

impl CohortState {
    /// A cohort just opened on a programme.
    pub fn opened(programme_id: &Id) -> Self {
        Self {
            programme_id: programme_id.to_string(),
            sessions: BTreeMap::new(),
            learners: BTreeMap::new(),
            complaints: Complaints::default(),
        }
    }

    /// Applies one event of this cohort's stream (not `cohort_opened`, which creates it).
    /// `occurred_at` is the event's `occurred_at`.
    pub fn apply(&mut self, event: &CohortEvent, occurred_at: &DateTime<Utc>) {
        use CohortEvent as E;
        match event {
            E::CohortOpened { .. } | E::CohortClosed { .. } => {}
            E::LearnerEnrolled { learner_id, .. } => {
                self.learners
                    .entry(learner_id.to_string())
                    .or_insert_with(LearnerState::enrolled);
            }
            E::LearnerWithdrew { learner_id, .. } => {
                if let Some(learner) = self.learners.get_mut(learner_id.as_str()) {
                    learner.status = LearnerStatus::Withdrawn;
                }
            }
            E::SessionScheduled {
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
                self.sessions
                    .entry(session_id.to_string())
                    .or_insert_with(|| SessionState {
                        module_id: module_id.to_string(),
                        unit_id: unit_id.as_ref().map(Id::to_string),
                        kind: *kind,
                        starts_at: starts_at.with_timezone(&Utc),
                        ends_at: ends_at.with_timezone(&Utc),
                        half_days: u32::from(*half_days),
                        status: SessionStatus::Scheduled,
                        facilitator: facilitator.clone(),
                        previous_slots: Vec::new(),
                        held: None,
                        attendance: BTreeMap::new(),
                    });
            }
            E::SessionRescheduled {
                session_id,
                starts_at,
                ends_at,
                reason,
                ..
            } => {
                if let Some(session) = self.sessions.get_mut(session_id.as_str()) {
                    session.reschedule(
                        starts_at.with_timezone(&Utc),
                        ends_at.with_timezone(&Utc),
                        reason.as_str(),
                    );
                }
            }
            E::SessionCancelled { session_id, .. } => {
                if let Some(session) = self.sessions.get_mut(session_id.as_str()) {
                    if session.status == SessionStatus::Scheduled {
                        session.status = SessionStatus::Cancelled;
                    }
                }
            }
            E::SessionHeld {
                session_id,
                module_id,
                half_days,
                present,
                excused,
                absent,
                ..
            } => {
                self.hold(
                    session_id,
                    module_id,
                    u32::from(*half_days),
                    [present, excused, absent],
                );
            }
            E::AttendanceCorrected {
                session_id,
                learner_id,
                status,
                ..
            } => {
                self.correct(session_id, learner_id, *status);
            }
            E::CertificateAwarded { learner_id, .. } => {
                if let Some(learner) = self.learners.get_mut(learner_id.as_str()) {
                    learner.certificate_awarded_on = Some(paris_date(occurred_at));
                }
            }
            E::DeisCreditRecorded { learner_id, .. } => {
                if let Some(learner) = self.learners.get_mut(learner_id.as_str()) {
                    learner.deis_credit = true;
                }
            }
            E::CertificateRevoked { learner_id, .. } => {
                if let Some(learner) = self.learners.get_mut(learner_id.as_str()) {
                    learner.certificate_awarded_on = None;
                    learner.deis_credit = false;
                }
            }
            E::ComplaintFiled {
                complaint_id,
                from,
                subject,
                ..
            } => self
                .complaints
                .file(complaint_id.as_str(), from, subject, *occurred_at),
            E::ComplaintAnswered {
                complaint_id,
                answer,
                action,
                ..
            } => self
                .complaints
                .answer(complaint_id.as_str(), *occurred_at, answer, action),
        }
    }

    /// Records a held session. Every learner active now counts it once: in the first list that
    /// names them (present, excused, absent), or as absent when no list does. Learners who are
    /// not enrolled, or withdrawn, count nothing.
    fn hold(&mut self, session_id: &Id, module_id: &Id, half_days: u32, lists: [&Vec<Id>; 3]) {
        let Some(session) = self.sessions.get_mut(session_id.as_str()) else {
            return;
        };
        if session.status != SessionStatus::Scheduled {
            return;
        }
        let statuses = [
            AttendanceStatus::Present,
            AttendanceStatus::Excused,
            AttendanceStatus::Absent,
        ];
        let mut attendance: BTreeMap<String, AttendanceStatus> = BTreeMap::new();
        for (list, status) in lists.into_iter().zip(statuses) {
            for learner_id in list {
                attendance.entry(learner_id.to_string()).or_insert(status);
            }
        }
        let mut counted = BTreeMap::new();
        for (learner_id, learner) in &mut self.learners {
            if learner.status != LearnerStatus::Active {
                continue;
            }
            let status = attendance
                .get(learner_id)
                .copied()
                .unwrap_or(AttendanceStatus::Absent);
            learner.count(module_id.as_str(), half_days, status);
            counted.insert(learner_id.clone(), status);
        }
        session.status = SessionStatus::Held;
        session.held = Some((module_id.to_string(), half_days));
        session.attendance = counted;
    }

    /// Moves one learner's half-days of a held session to the bucket of `status`, from the
    /// bucket the learner is in now (so that repeated corrections add up).
    fn correct(&mut self, session_id: &Id, learner_id: &Id, status: AttendanceStatus) {
        let Some(session) = self.sessions.get_mut(session_id.as_str()) else {
            return;
        };
        let Some((module_id, half_days)) = &session.held else {
            return;
        };
        let Some(current) = session.attendance.get_mut(learner_id.as_str()) else {
            return;
        };
        let Some(learner) = self.learners.get_mut(learner_id.as_str()) else {
            return;
        };
        learner.correct(module_id, *half_days, *current, status);
        *current = status;
    }

    /// The learners a held session counted (for [`crate::ReadModels::touched`]).
    pub fn counted_in(&self, session_id: &Id) -> Vec<String> {
        self.sessions
            .get(session_id.as_str())
            .map(|s| s.attendance.keys().cloned().collect())
            .unwrap_or_default()
    }
}
