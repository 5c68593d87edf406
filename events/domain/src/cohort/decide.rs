//! The rules of enrolment and the timetable (the learners' outcomes are in `outcome.rs`): each
//! command either yields its one event or is refused with the code of FORMAT.md. Checks run in
//! the order the rules list them: existence (`not_found`, `already_exists`), then the data
//! (`invalid`), then the state (`conflict`).

use super::{Cohort, SessionStatus};
use crate::command::{
    CancelSession, CohortCommand, CorrectAttendance, EnrolLearner, OpenCohort, RecordSession,
    RescheduleSession, ScheduleSession, WithdrawLearner,
};
use crate::error::{DecideError, Rejection};
use crate::event::CohortEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use crate::{LearnerRecord, SessionRecord};
use chrono::{DateTime, FixedOffset, Utc};
use std::collections::HashSet;

impl Cohort {
    /// Decides `command`, which happened at `at` (the envelope's time), against the current
    /// state, fetching what it needs through `lookups`.
    pub(super) async fn decide(
        &self,
        command: CohortCommand,
        at: DateTime<Utc>,
        lookups: &dyn Lookups,
    ) -> Result<CohortEvent, DecideError> {
        use CohortCommand as C;
        if !matches!(command, C::OpenCohort(_)) && !self.exists() {
            return Err(Rejection::not_found(format!(
                "data.cohort_id: cohort {} does not exist",
                command.cohort_id()
            ))
            .into());
        }
        Ok(match command {
            C::OpenCohort(c) => self.open(c, lookups).await?,
            C::EnrolLearner(c) => self.enrol(c)?,
            C::WithdrawLearner(c) => self.withdraw(c)?,
            C::ScheduleSession(c) => self.schedule(c, lookups).await?,
            C::RescheduleSession(c) => self.reschedule(c)?,
            C::CancelSession(c) => self.cancel(c)?,
            C::RecordSession(c) => self.record(c)?,
            C::CorrectAttendance(c) => self.correct(c)?,
            C::CloseCohort(c) => {
                if self.closed {
                    return Err(Rejection::conflict(format!(
                        "cohort {} is already closed",
                        c.cohort_id
                    ))
                    .into());
                }
                CohortEvent::CohortClosed {
                    cohort_id: c.cohort_id,
                }
            }
            C::AwardCertificate(c) => self.award(c, lookups).await?,
            C::RecordDeisCredit(c) => self.credit(c)?,
            C::RevokeCertificate(c) => self.revoke(c)?,
            C::FileComplaint(c) => self.file_complaint(c)?,
            C::AnswerComplaint(c) => self.answer_complaint(c, at)?,
        })
    }

    async fn open(&self, c: OpenCohort, lookups: &dyn Lookups) -> Result<CohortEvent, DecideError> {
        if self.exists() {
            return Err(Rejection::already_exists(format!(
                "data.cohort_id: cohort {} already exists",
                c.cohort_id
            ))
            .into());
        }
        if !lookups
            .programme(c.programme_id.as_str())
            .await?
            .is_some_and(|p| p.exists())
        {
            return Err(Rejection::not_found(format!(
                "data.programme_id: programme {} does not exist",
                c.programme_id
            ))
            .into());
        }
        if c.ends_on < c.starts_on {
            return Err(Rejection::invalid(format!(
                "data.ends_on: the cohort ends on {} before it starts on {}",
                c.ends_on, c.starts_on
            ))
            .into());
        }
        Ok(CohortEvent::CohortOpened {
            cohort_id: c.cohort_id,
            programme_id: c.programme_id,
            title: c.title,
            starts_on: c.starts_on,
            ends_on: c.ends_on,
        })
    }

    fn enrol(&self, c: EnrolLearner) -> Result<CohortEvent, Rejection> {
        if self.learner(c.learner_id.as_str()).is_some() {
            return Err(Rejection::already_exists(format!(
                "data.learner_id: learner {} is already enrolled in cohort {}",
                c.learner_id, c.cohort_id
            )));
        }
        if self.closed {
            return Err(Rejection::conflict(format!(
                "cohort {} is closed: no more enrolments",
                c.cohort_id
            )));
        }
        Ok(CohortEvent::LearnerEnrolled {
            cohort_id: c.cohort_id,
            learner_id: c.learner_id,
            name: c.name,
            deis_pathway: c.deis_pathway,
        })
    }

    fn withdraw(&self, c: WithdrawLearner) -> Result<CohortEvent, Rejection> {
        if self.enrolled(&c.learner_id, &c.cohort_id)?.withdrawn {
            return Err(Rejection::conflict(format!(
                "learner {} has already withdrawn",
                c.learner_id
            )));
        }
        Ok(CohortEvent::LearnerWithdrew {
            cohort_id: c.cohort_id,
            learner_id: c.learner_id,
            reason: c.reason,
        })
    }

    async fn schedule(
        &self,
        c: ScheduleSession,
        lookups: &dyn Lookups,
    ) -> Result<CohortEvent, DecideError> {
        if self.session(c.session_id.as_str()).is_some() {
            return Err(Rejection::already_exists(format!(
                "data.session_id: session {} already exists",
                c.session_id
            ))
            .into());
        }
        let programme_id = self.programme_id.as_ref().map_or("", Id::as_str);
        let Some(programme) = lookups.programme(programme_id).await? else {
            return Err(Rejection::not_found(format!(
                "programme {programme_id} of cohort {} does not exist",
                c.cohort_id
            ))
            .into());
        };
        let Some(module) = programme.module(c.module_id.as_str()) else {
            return Err(Rejection::invalid(format!(
                "data.module_id: module {} is not in programme {programme_id}",
                c.module_id
            ))
            .into());
        };
        if let Some(unit_id) = &c.unit_id {
            if !module.units.iter().any(|u| u.unit_id == *unit_id) {
                return Err(Rejection::invalid(format!(
                    "data.unit_id: unit {unit_id} is not in module {}",
                    c.module_id
                ))
                .into());
            }
        }
        check_slot(c.starts_at, c.ends_at)?;
        if !(1..=2).contains(&c.half_days) {
            return Err(Rejection::invalid(format!(
                "data.half_days: a session lasts 1 or 2 half-days, got {}",
                c.half_days
            ))
            .into());
        }
        if self.closed {
            return Err(Rejection::conflict(format!(
                "cohort {} is closed: no more sessions",
                c.cohort_id
            ))
            .into());
        }
        self.check_free(&c.session_id, c.starts_at, c.ends_at)?;
        Ok(CohortEvent::SessionScheduled {
            cohort_id: c.cohort_id,
            session_id: c.session_id,
            module_id: c.module_id,
            unit_id: c.unit_id,
            kind: c.kind,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            half_days: c.half_days,
            facilitator: c.facilitator,
            room: c.room,
        })
    }

    fn reschedule(&self, c: RescheduleSession) -> Result<CohortEvent, Rejection> {
        let session = self.scheduled(&c.session_id, &c.cohort_id)?;
        check_slot(c.starts_at, c.ends_at)?;
        check_open(session)?;
        self.check_free(&c.session_id, c.starts_at, c.ends_at)?;
        Ok(CohortEvent::SessionRescheduled {
            cohort_id: c.cohort_id,
            session_id: c.session_id,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            reason: c.reason,
        })
    }

    fn cancel(&self, c: CancelSession) -> Result<CohortEvent, Rejection> {
        check_open(self.scheduled(&c.session_id, &c.cohort_id)?)?;
        Ok(CohortEvent::SessionCancelled {
            cohort_id: c.cohort_id,
            session_id: c.session_id,
            reason: c.reason,
        })
    }

    fn record(&self, c: RecordSession) -> Result<CohortEvent, Rejection> {
        let session = self.scheduled(&c.session_id, &c.cohort_id)?;
        let mut listed = HashSet::new();
        for (field, list) in [("present", &c.present), ("excused", &c.excused)] {
            for (i, learner_id) in list.iter().enumerate() {
                match self.learner(learner_id.as_str()) {
                    None => {
                        return Err(Rejection::invalid(format!(
                            "data.{field}[{i}]: learner {learner_id} is not enrolled in cohort {}",
                            c.cohort_id
                        )))
                    }
                    Some(l) if l.withdrawn => {
                        return Err(Rejection::invalid(format!(
                            "data.{field}[{i}]: learner {learner_id} has withdrawn from cohort {}",
                            c.cohort_id
                        )))
                    }
                    Some(_) => {}
                }
                if !listed.insert(learner_id) {
                    return Err(Rejection::invalid(format!(
                        "data.{field}[{i}]: learner {learner_id} is listed twice"
                    )));
                }
            }
        }
        check_open(session)?;
        let absent = self
            .learners
            .iter()
            .filter(|l| !l.withdrawn && !listed.contains(&l.learner_id))
            .map(|l| l.learner_id.clone())
            .collect();
        Ok(CohortEvent::SessionHeld {
            cohort_id: c.cohort_id,
            session_id: c.session_id,
            module_id: session.module_id.clone(),
            half_days: session.half_days,
            present: c.present,
            excused: c.excused,
            absent,
        })
    }

    fn correct(&self, c: CorrectAttendance) -> Result<CohortEvent, Rejection> {
        let session = self.scheduled(&c.session_id, &c.cohort_id)?;
        self.enrolled(&c.learner_id, &c.cohort_id)?;
        if session.status != SessionStatus::Held {
            return Err(Rejection::conflict(format!(
                "session {} is {}, not held: there is no attendance to correct",
                c.session_id,
                session.status.as_str()
            )));
        }
        let Some(previous_status) = session.attendance_of(c.learner_id.as_str()) else {
            return Err(Rejection::conflict(format!(
                "learner {} was not counted in session {} (not active when it was recorded)",
                c.learner_id, c.session_id
            )));
        };
        Ok(CohortEvent::AttendanceCorrected {
            cohort_id: c.cohort_id,
            session_id: c.session_id,
            learner_id: c.learner_id,
            previous_status,
            status: c.status,
            reason: c.reason,
        })
    }

    /// The learner acted on, or `not_found`.
    pub(super) fn enrolled(
        &self,
        learner_id: &Id,
        cohort_id: &Id,
    ) -> Result<&LearnerRecord, Rejection> {
        self.learner(learner_id.as_str()).ok_or_else(|| {
            Rejection::not_found(format!(
                "data.learner_id: learner {learner_id} is not enrolled in cohort {cohort_id}"
            ))
        })
    }

    /// The session acted on, or `not_found`.
    fn scheduled(&self, session_id: &Id, cohort_id: &Id) -> Result<&SessionRecord, Rejection> {
        self.session(session_id.as_str()).ok_or_else(|| {
            Rejection::not_found(format!(
                "data.session_id: session {session_id} does not exist in cohort {cohort_id}"
            ))
        })
    }

    /// `conflict` when the slot overlaps a session other than `session_id` that is not cancelled.
    fn check_free(
        &self,
        session_id: &Id,
        starts_at: DateTime<FixedOffset>,
        ends_at: DateTime<FixedOffset>,
    ) -> Result<(), Rejection> {
        let taken = self.sessions.iter().find(|s| {
            s.session_id != *session_id
                && s.status != SessionStatus::Cancelled
                && s.overlaps(starts_at, ends_at)
        });
        match taken {
            Some(other) => Err(Rejection::conflict(format!(
                "the slot {} to {} overlaps session {} ({} to {})",
                starts_at.to_rfc3339(),
                ends_at.to_rfc3339(),
                other.session_id,
                other.starts_at.to_rfc3339(),
                other.ends_at.to_rfc3339()
            ))),
            None => Ok(()),
        }
    }
}

/// `invalid` unless `ends_at` is after `starts_at`.
fn check_slot(
    starts_at: DateTime<FixedOffset>,
    ends_at: DateTime<FixedOffset>,
) -> Result<(), Rejection> {
    if ends_at <= starts_at {
        return Err(Rejection::invalid(format!(
            "data.ends_at: {} is not after starts_at {}",
            ends_at.to_rfc3339(),
            starts_at.to_rfc3339()
        )));
    }
    Ok(())
}

/// `conflict` when the session is already held or cancelled.
fn check_open(session: &SessionRecord) -> Result<(), Rejection> {
    match session.status {
        SessionStatus::Scheduled => Ok(()),
        SessionStatus::Held => Err(Rejection::conflict(format!(
            "session {} is already held",
            session.session_id
        ))),
        SessionStatus::Cancelled => Err(Rejection::conflict(format!(
            "session {} is cancelled",
            session.session_id
        ))),
    }
}
