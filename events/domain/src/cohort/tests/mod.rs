//! Given/when/then for every cohort rule. The world: programme `p` (module `m1` with unit
//! `m1-1`, module `m2` without units), cohort `c` with learners `l1`, `l2` (DEIS pathway), `l3`
//! and `l4` (withdrawn), sessions on September 2024 days from 09:00 to 17:00 (+02:00).

mod attendance;
mod harder;
mod outcome;
mod timetable;

use super::*;
use crate::command::{
    AwardCertificate, CancelSession, CloseCohort, CorrectAttendance, DefenceResult, EnrolLearner,
    ModulePlan, OpenCohort, Organisation, RecordDeisCredit, RecordSession, RescheduleSession,
    ScheduleSession, UnitPlan, WithdrawLearner,
};
use crate::event::{FieldStudyEvent, ProgrammeEvent};
use crate::testing::{at, check, id, ids, reason, InMemoryLookups, Then};
use crate::Code;
use AttendanceStatus::{Absent, Excused, Present};
use Then::{Events, Rejected};

const C: &str = "c";

fn programme() -> Vec<ProgrammeEvent> {
    let unit = UnitPlan {
        unit_id: id("m1-1"),
        title: "u".to_owned(),
        half_days: 2,
    };
    let m1 = ModulePlan {
        module_id: id("m1"),
        title: "m1".to_owned(),
        half_days: 4,
        units: vec![unit],
    };
    let m2 = ModulePlan {
        module_id: id("m2"),
        title: "m2".to_owned(),
        half_days: 4,
        units: vec![],
    };
    vec![ProgrammeEvent::ProgrammeDefined {
        programme_id: id("p"),
        title: "P".to_owned(),
        modules: vec![m1, m2],
    }]
}

fn lookups() -> InMemoryLookups {
    InMemoryLookups::default().programme(programme())
}

/// `2024-09-<day>` from `from` to `to` o'clock, Paris summer time.
fn slot(day: u32, from: u32, to: u32) -> (DateTime<FixedOffset>, DateTime<FixedOffset>) {
    let t = |h: u32| at(&format!("2024-09-{day:02}T{h:02}:00:00+02:00"));
    (t(from), t(to))
}

// ---- given ----

fn opened() -> CohortEvent {
    CohortEvent::CohortOpened {
        cohort_id: id(C),
        programme_id: id("p"),
        title: "T".to_owned(),
        starts_on: "2024-09-01".parse().expect("date"),
        ends_on: "2025-06-30".parse().expect("date"),
    }
}
fn enrolled(l: &str, deis_pathway: bool) -> CohortEvent {
    CohortEvent::LearnerEnrolled {
        cohort_id: id(C),
        learner_id: id(l),
        name: l.to_uppercase(),
        deis_pathway,
    }
}
fn withdrew(l: &str) -> CohortEvent {
    CohortEvent::LearnerWithdrew {
        cohort_id: id(C),
        learner_id: id(l),
        reason: reason("r"),
    }
}
fn scheduled(s: &str, module: &str, day: u32) -> CohortEvent {
    let (starts_at, ends_at) = slot(day, 9, 17);
    CohortEvent::SessionScheduled {
        cohort_id: id(C),
        session_id: id(s),
        module_id: id(module),
        unit_id: None,
        kind: SessionKind::Course,
        starts_at,
        ends_at,
        half_days: 2,
        facilitator: "f".to_owned(),
        room: None,
    }
}
fn held(s: &str, present: &[&str], excused: &[&str], absent: &[&str]) -> CohortEvent {
    CohortEvent::SessionHeld {
        cohort_id: id(C),
        session_id: id(s),
        module_id: id("m1"),
        half_days: 2,
        present: ids(present),
        excused: ids(excused),
        absent: ids(absent),
    }
}
fn cancelled(s: &str) -> CohortEvent {
    CohortEvent::SessionCancelled {
        cohort_id: id(C),
        session_id: id(s),
        reason: reason("r"),
    }
}
fn corrected(
    s: &str,
    l: &str,
    previous_status: AttendanceStatus,
    status: AttendanceStatus,
) -> CohortEvent {
    CohortEvent::AttendanceCorrected {
        cohort_id: id(C),
        session_id: id(s),
        learner_id: id(l),
        previous_status,
        status,
        reason: reason("r"),
    }
}
fn closed() -> CohortEvent {
    CohortEvent::CohortClosed { cohort_id: id(C) }
}
fn awarded(l: &str) -> CohortEvent {
    CohortEvent::CertificateAwarded {
        cohort_id: id(C),
        learner_id: id(l),
    }
}
fn credited(l: &str) -> CohortEvent {
    CohortEvent::DeisCreditRecorded {
        cohort_id: id(C),
        learner_id: id(l),
        note: "n".to_owned(),
    }
}

/// The cohort opened with its four learners (l4 withdrawn), then `more`.
fn base(more: Vec<CohortEvent>) -> Vec<CohortEvent> {
    let mut events = vec![
        opened(),
        enrolled("l1", false),
        enrolled("l2", true),
        enrolled("l3", false),
        enrolled("l4", false),
        withdrew("l4"),
    ];
    events.extend(more);
    events
}

// ---- when ----

fn open(programme_id: &str, starts_on: &str, ends_on: &str) -> CohortCommand {
    CohortCommand::OpenCohort(OpenCohort {
        cohort_id: id(C),
        programme_id: id(programme_id),
        title: "T".to_owned(),
        starts_on: starts_on.parse().expect("date"),
        ends_on: ends_on.parse().expect("date"),
    })
}
fn enrol(l: &str, deis_pathway: bool) -> CohortCommand {
    CohortCommand::EnrolLearner(EnrolLearner {
        cohort_id: id(C),
        learner_id: id(l),
        name: l.to_uppercase(),
        deis_pathway,
    })
}
fn withdraw(l: &str) -> CohortCommand {
    CohortCommand::WithdrawLearner(WithdrawLearner {
        cohort_id: id(C),
        learner_id: id(l),
        reason: reason("r"),
    })
}
fn schedule(
    s: &str,
    module: &str,
    unit: Option<&str>,
    (starts_at, ends_at): (DateTime<FixedOffset>, DateTime<FixedOffset>),
    half_days: u8,
) -> CohortCommand {
    CohortCommand::ScheduleSession(ScheduleSession {
        cohort_id: id(C),
        session_id: id(s),
        module_id: id(module),
        unit_id: unit.map(id),
        kind: SessionKind::Course,
        starts_at,
        ends_at,
        half_days,
        facilitator: "f".to_owned(),
        room: None,
    })
}
fn reschedule(
    s: &str,
    (starts_at, ends_at): (DateTime<FixedOffset>, DateTime<FixedOffset>),
) -> CohortCommand {
    CohortCommand::RescheduleSession(RescheduleSession {
        cohort_id: id(C),
        session_id: id(s),
        starts_at,
        ends_at,
        reason: reason("r"),
    })
}
fn cancel(s: &str) -> CohortCommand {
    CohortCommand::CancelSession(CancelSession {
        cohort_id: id(C),
        session_id: id(s),
        reason: reason("r"),
    })
}
fn record(s: &str, present: &[&str], excused: &[&str]) -> CohortCommand {
    CohortCommand::RecordSession(RecordSession {
        cohort_id: id(C),
        session_id: id(s),
        present: ids(present),
        excused: ids(excused),
    })
}
fn correct(s: &str, l: &str, status: AttendanceStatus) -> CohortCommand {
    CohortCommand::CorrectAttendance(CorrectAttendance {
        cohort_id: id(C),
        session_id: id(s),
        learner_id: id(l),
        status,
        reason: reason("r"),
    })
}
fn close() -> CohortCommand {
    CohortCommand::CloseCohort(CloseCohort { cohort_id: id(C) })
}
fn award(l: &str) -> CohortCommand {
    CohortCommand::AwardCertificate(AwardCertificate {
        cohort_id: id(C),
        learner_id: id(l),
    })
}
fn credit(l: &str) -> CohortCommand {
    CohortCommand::RecordDeisCredit(RecordDeisCredit {
        cohort_id: id(C),
        learner_id: id(l),
        note: "n".to_owned(),
    })
}

async fn case(
    name: &str,
    lookups: InMemoryLookups,
    given: Vec<CohortEvent>,
    when: CohortCommand,
    then: Then<CohortEvent>,
) {
    let command = Stamped {
        at: at("2024-09-01T10:00:00+02:00"),
        command: when,
    };
    check::<Cohort>(lookups.services(), name, given, command, then).await;
}
