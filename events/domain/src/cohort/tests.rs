//! Given/when/then for every cohort rule. The world: programme `p` (module `m1` with unit
//! `m1-1`, module `m2` without units), cohort `c` with learners `l1`, `l2` (DEIS pathway), `l3`
//! and `l4` (withdrawn), sessions on September 2024 days from 09:00 to 17:00 (+02:00).

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

#[tokio::test]
async fn a_missing_cohort_is_not_found() {
    for when in [
        enrol("l1", false),
        withdraw("l1"),
        record("s1", &[], &[]),
        close(),
        award("l1"),
        credit("l1"),
    ] {
        case(
            "missing cohort",
            lookups(),
            vec![],
            when,
            Rejected(Code::NotFound, "data.cohort_id: cohort c does not exist"),
        )
        .await;
    }
}

#[tokio::test]
async fn open_cohort_rules() {
    case(
        "opens",
        lookups(),
        vec![],
        open("p", "2024-09-01", "2025-06-30"),
        Events(vec![opened()]),
    )
    .await;
    case(
        "exists",
        lookups(),
        vec![opened()],
        open("p", "2024-09-01", "2025-06-30"),
        Rejected(Code::AlreadyExists, "cohort c already exists"),
    )
    .await;
    case(
        "no programme",
        lookups(),
        vec![],
        open("nope", "2024-09-01", "2025-06-30"),
        Rejected(Code::NotFound, "programme nope does not exist"),
    )
    .await;
    case(
        "ends first",
        lookups(),
        vec![],
        open("p", "2025-09-01", "2025-06-30"),
        Rejected(Code::Invalid, "data.ends_on"),
    )
    .await;
    case(
        "one day",
        lookups(),
        vec![],
        open("p", "2025-06-30", "2025-06-30"),
        Events(vec![CohortEvent::CohortOpened {
            cohort_id: id(C),
            programme_id: id("p"),
            title: "T".to_owned(),
            starts_on: "2025-06-30".parse().expect("date"),
            ends_on: "2025-06-30".parse().expect("date"),
        }]),
    )
    .await;
}

#[tokio::test]
async fn enrolment_rules() {
    case(
        "enrols",
        lookups(),
        base(vec![]),
        enrol("l5", true),
        Events(vec![enrolled("l5", true)]),
    )
    .await;
    case(
        "again",
        lookups(),
        base(vec![]),
        enrol("l1", false),
        Rejected(Code::AlreadyExists, "learner l1 is already enrolled"),
    )
    .await;
    case(
        "withdrawn, again",
        lookups(),
        base(vec![]),
        enrol("l4", false),
        Rejected(Code::AlreadyExists, "learner l4 is already enrolled"),
    )
    .await;
    case(
        "closed",
        lookups(),
        base(vec![closed()]),
        enrol("l5", false),
        Rejected(Code::Conflict, "cohort c is closed"),
    )
    .await;
    case(
        "withdraws",
        lookups(),
        base(vec![]),
        withdraw("l1"),
        Events(vec![withdrew("l1")]),
    )
    .await;
    case(
        "unknown",
        lookups(),
        base(vec![]),
        withdraw("zz"),
        Rejected(
            Code::NotFound,
            "data.learner_id: learner zz is not enrolled",
        ),
    )
    .await;
    case(
        "withdrawn twice",
        lookups(),
        base(vec![]),
        withdraw("l4"),
        Rejected(Code::Conflict, "learner l4 has already withdrawn"),
    )
    .await;
}

#[tokio::test]
async fn schedule_session_rules() {
    let given = || base(vec![scheduled("s1", "m1", 14)]);
    let ok = |s: &str, module: &str, unit: Option<&str>, (starts_at, ends_at), half_days| {
        Events(vec![CohortEvent::SessionScheduled {
            cohort_id: id(C),
            session_id: id(s),
            module_id: id(module),
            unit_id: unit.map(id),
            kind: SessionKind::Course,
            starts_at,
            ends_at,
            half_days,
            facilitator: "f".to_owned(),
        }])
    };
    case(
        "with unit",
        lookups(),
        given(),
        schedule("s2", "m1", Some("m1-1"), slot(15, 9, 12), 1),
        ok("s2", "m1", Some("m1-1"), slot(15, 9, 12), 1),
    )
    .await;
    case(
        "adjacent",
        lookups(),
        given(),
        schedule("s2", "m2", None, slot(14, 17, 19), 1),
        ok("s2", "m2", None, slot(14, 17, 19), 1),
    )
    .await;
    case(
        "over a cancelled one",
        lookups(),
        base(vec![scheduled("s1", "m1", 14), cancelled("s1")]),
        schedule("s2", "m2", None, slot(14, 9, 17), 2),
        ok("s2", "m2", None, slot(14, 9, 17), 2),
    )
    .await;
    case(
        "id exists",
        lookups(),
        given(),
        schedule("s1", "m1", None, slot(15, 9, 17), 2),
        Rejected(Code::AlreadyExists, "session s1 already exists"),
    )
    .await;
    case(
        "unknown module",
        lookups(),
        given(),
        schedule("s2", "m9", None, slot(15, 9, 17), 2),
        Rejected(
            Code::Invalid,
            "data.module_id: module m9 is not in programme p",
        ),
    )
    .await;
    case(
        "unit of another module",
        lookups(),
        given(),
        schedule("s2", "m2", Some("m1-1"), slot(15, 9, 17), 2),
        Rejected(Code::Invalid, "data.unit_id: unit m1-1 is not in module m2"),
    )
    .await;
    case(
        "ends before",
        lookups(),
        given(),
        schedule("s2", "m1", None, slot(15, 17, 9), 2),
        Rejected(Code::Invalid, "data.ends_at"),
    )
    .await;
    case(
        "empty slot",
        lookups(),
        given(),
        schedule("s2", "m1", None, slot(15, 9, 9), 2),
        Rejected(Code::Invalid, "data.ends_at"),
    )
    .await;
    case(
        "3 half-days",
        lookups(),
        given(),
        schedule("s2", "m1", None, slot(15, 9, 17), 3),
        Rejected(Code::Invalid, "data.half_days"),
    )
    .await;
    case(
        "0 half-days",
        lookups(),
        given(),
        schedule("s2", "m1", None, slot(15, 9, 17), 0),
        Rejected(Code::Invalid, "data.half_days"),
    )
    .await;
    case(
        "closed",
        lookups(),
        base(vec![closed()]),
        schedule("s2", "m1", None, slot(15, 9, 17), 2),
        Rejected(Code::Conflict, "cohort c is closed"),
    )
    .await;
    case(
        "overlap",
        lookups(),
        given(),
        schedule("s2", "m1", None, slot(14, 13, 18), 1),
        Rejected(Code::Conflict, "overlaps session s1"),
    )
    .await;
    case(
        "overlap with a held one",
        lookups(),
        base(vec![
            scheduled("s1", "m1", 14),
            held("s1", &["l1"], &[], &["l2", "l3"]),
        ]),
        schedule("s2", "m1", None, slot(14, 8, 10), 1),
        Rejected(Code::Conflict, "overlaps session s1"),
    )
    .await;
}

#[tokio::test]
async fn reschedule_and_cancel_rules() {
    let given = || base(vec![scheduled("s1", "m1", 14), scheduled("s2", "m1", 21)]);
    let moved = |s: &str, (starts_at, ends_at)| {
        Events(vec![CohortEvent::SessionRescheduled {
            cohort_id: id(C),
            session_id: id(s),
            starts_at,
            ends_at,
            reason: reason("r"),
        }])
    };
    case(
        "moves",
        lookups(),
        given(),
        reschedule("s1", slot(15, 9, 17)),
        moved("s1", slot(15, 9, 17)),
    )
    .await;
    case(
        "within its own slot",
        lookups(),
        given(),
        reschedule("s1", slot(14, 10, 18)),
        moved("s1", slot(14, 10, 18)),
    )
    .await;
    case(
        "unknown",
        lookups(),
        given(),
        reschedule("s9", slot(15, 9, 17)),
        Rejected(Code::NotFound, "data.session_id: session s9 does not exist"),
    )
    .await;
    case(
        "ends before",
        lookups(),
        given(),
        reschedule("s1", slot(15, 17, 9)),
        Rejected(Code::Invalid, "data.ends_at"),
    )
    .await;
    case(
        "held",
        lookups(),
        base(vec![
            scheduled("s1", "m1", 14),
            held("s1", &[], &[], &["l1", "l2", "l3"]),
        ]),
        reschedule("s1", slot(15, 9, 17)),
        Rejected(Code::Conflict, "session s1 is already held"),
    )
    .await;
    case(
        "cancelled",
        lookups(),
        base(vec![scheduled("s1", "m1", 14), cancelled("s1")]),
        reschedule("s1", slot(15, 9, 17)),
        Rejected(Code::Conflict, "session s1 is cancelled"),
    )
    .await;
    case(
        "overlaps another",
        lookups(),
        given(),
        reschedule("s1", slot(21, 16, 18)),
        Rejected(Code::Conflict, "overlaps session s2"),
    )
    .await;

    case(
        "cancels",
        lookups(),
        given(),
        cancel("s1"),
        Events(vec![cancelled("s1")]),
    )
    .await;
    case(
        "cancel unknown",
        lookups(),
        given(),
        cancel("s9"),
        Rejected(Code::NotFound, "session s9 does not exist"),
    )
    .await;
    case(
        "cancel held",
        lookups(),
        base(vec![
            scheduled("s1", "m1", 14),
            held("s1", &[], &[], &["l1", "l2", "l3"]),
        ]),
        cancel("s1"),
        Rejected(Code::Conflict, "session s1 is already held"),
    )
    .await;
    case(
        "cancel twice",
        lookups(),
        base(vec![scheduled("s1", "m1", 14), cancelled("s1")]),
        cancel("s1"),
        Rejected(Code::Conflict, "session s1 is cancelled"),
    )
    .await;
}

#[tokio::test]
async fn record_session_rules() {
    let given = || base(vec![scheduled("s1", "m1", 14)]);
    case(
        "absent filled in enrolment order",
        lookups(),
        base(vec![enrolled("l0", false), scheduled("s1", "m1", 14)]),
        record("s1", &["l2"], &["l1"]),
        Events(vec![held("s1", &["l2"], &["l1"], &["l3", "l0"])]),
    )
    .await;
    case(
        "nobody listed",
        lookups(),
        given(),
        record("s1", &[], &[]),
        Events(vec![held("s1", &[], &[], &["l1", "l2", "l3"])]),
    )
    .await;
    case(
        "unknown session",
        lookups(),
        given(),
        record("s9", &[], &[]),
        Rejected(Code::NotFound, "session s9 does not exist"),
    )
    .await;
    case(
        "never enrolled",
        lookups(),
        given(),
        record("s1", &["l1", "zz"], &[]),
        Rejected(Code::Invalid, "data.present[1]: learner zz is not enrolled"),
    )
    .await;
    case(
        "withdrawn",
        lookups(),
        given(),
        record("s1", &["l1"], &["l4"]),
        Rejected(Code::Invalid, "data.excused[0]: learner l4 has withdrawn"),
    )
    .await;
    case(
        "twice present",
        lookups(),
        given(),
        record("s1", &["l1", "l1"], &[]),
        Rejected(Code::Invalid, "data.present[1]: learner l1 is listed twice"),
    )
    .await;
    case(
        "present and excused",
        lookups(),
        given(),
        record("s1", &["l1"], &["l1"]),
        Rejected(Code::Invalid, "data.excused[0]: learner l1 is listed twice"),
    )
    .await;
    case(
        "cancelled",
        lookups(),
        base(vec![scheduled("s1", "m1", 14), cancelled("s1")]),
        record("s1", &["l1"], &[]),
        Rejected(Code::Conflict, "session s1 is cancelled"),
    )
    .await;
    case(
        "already held",
        lookups(),
        base(vec![
            scheduled("s1", "m1", 14),
            held("s1", &["l1"], &[], &["l2", "l3"]),
        ]),
        record("s1", &["l1"], &[]),
        Rejected(Code::Conflict, "session s1 is already held"),
    )
    .await;
}

#[tokio::test]
async fn correct_attendance_rules() {
    // l3 withdraws after s1 is recorded; l2 withdraws before.
    let given = || {
        vec![
            opened(),
            enrolled("l1", false),
            enrolled("l2", false),
            enrolled("l3", false),
            withdrew("l2"),
            scheduled("s1", "m1", 14),
            scheduled("s2", "m1", 21),
            held("s1", &["l1"], &[], &["l3"]),
            withdrew("l3"),
        ]
    };
    case(
        "corrects",
        lookups(),
        given(),
        correct("s1", "l3", Excused),
        Events(vec![corrected("s1", "l3", Absent, Excused)]),
    )
    .await;
    let mut again = given();
    again.push(corrected("s1", "l3", Absent, Excused));
    case(
        "after a correction",
        lookups(),
        again,
        correct("s1", "l3", Present),
        Events(vec![corrected("s1", "l3", Excused, Present)]),
    )
    .await;
    case(
        "unknown session",
        lookups(),
        given(),
        correct("s9", "l1", Absent),
        Rejected(Code::NotFound, "session s9 does not exist"),
    )
    .await;
    case(
        "unknown learner",
        lookups(),
        given(),
        correct("s1", "zz", Absent),
        Rejected(Code::NotFound, "learner zz is not enrolled"),
    )
    .await;
    case(
        "not held",
        lookups(),
        given(),
        correct("s2", "l1", Absent),
        Rejected(Code::Conflict, "session s2 is scheduled, not held"),
    )
    .await;
    case(
        "not counted",
        lookups(),
        given(),
        correct("s1", "l2", Present),
        Rejected(Code::Conflict, "learner l2 was not counted in session s1"),
    )
    .await;
}

#[tokio::test]
async fn close_cohort_rules() {
    case(
        "closes",
        lookups(),
        base(vec![]),
        close(),
        Events(vec![closed()]),
    )
    .await;
    case(
        "twice",
        lookups(),
        base(vec![closed()]),
        close(),
        Rejected(Code::Conflict, "cohort c is already closed"),
    )
    .await;
}

// ---- learner outcome ----

fn formed(fs: &str, members: &[&str]) -> FieldStudyEvent {
    FieldStudyEvent::FieldStudyFormed {
        field_study_id: id(fs),
        cohort_id: id(C),
        members: ids(members),
        organisation: Organisation {
            name: "o".to_owned(),
            sector: "s".to_owned(),
        },
    }
}
fn defence(fs: &str, d: &str, day: u32) -> FieldStudyEvent {
    FieldStudyEvent::DefenceScheduled {
        field_study_id: id(fs),
        defence_id: id(d),
        at: slot(day, 9, 10).0,
        jury: vec![],
    }
}
fn outcome(fs: &str, d: &str, l: &str, result: DefenceResult) -> FieldStudyEvent {
    let (field_study_id, defence_id, learner_id, remarks) = (id(fs), id(d), id(l), String::new());
    match result {
        DefenceResult::Passed => FieldStudyEvent::DefencePassed {
            field_study_id,
            defence_id,
            learner_id,
            remarks,
        },
        DefenceResult::Deferred => FieldStudyEvent::DefenceDeferred {
            field_study_id,
            defence_id,
            learner_id,
            remarks,
        },
        DefenceResult::Failed => FieldStudyEvent::DefenceFailed {
            field_study_id,
            defence_id,
            learner_id,
            remarks,
        },
    }
}
fn left(fs: &str, leave: &[&str], members: &[&str]) -> FieldStudyEvent {
    FieldStudyEvent::MembersChanged {
        field_study_id: id(fs),
        join: vec![],
        leave: ids(leave),
        reason: reason("r"),
        members: ids(members),
    }
}
fn joined(fs: &str, join: &[&str], members: &[&str]) -> FieldStudyEvent {
    FieldStudyEvent::MembersChanged {
        field_study_id: id(fs),
        join: ids(join),
        leave: vec![],
        reason: reason("r"),
        members: ids(members),
    }
}

/// fs1 = {l1, l2, l3, l4}: at d1 l1 passed, l2 and l4 deferred, l3 failed; at d2 l2 passed.
fn defended() -> InMemoryLookups {
    use DefenceResult::{Deferred, Failed, Passed};
    lookups().field_study(vec![
        formed("fs1", &["l1", "l2", "l3", "l4"]),
        defence("fs1", "d1", 10),
        outcome("fs1", "d1", "l1", Passed),
        outcome("fs1", "d1", "l2", Deferred),
        outcome("fs1", "d1", "l3", Failed),
        outcome("fs1", "d1", "l4", Deferred),
        defence("fs1", "d2", 20),
        outcome("fs1", "d2", "l2", Passed),
    ])
}

#[tokio::test]
async fn award_certificate_rules() {
    use DefenceResult::Passed;
    case(
        "passed",
        defended(),
        base(vec![]),
        award("l1"),
        Events(vec![awarded("l1")]),
    )
    .await;
    case(
        "passed after deferral",
        defended(),
        base(vec![]),
        award("l2"),
        Events(vec![awarded("l2")]),
    )
    .await;
    case(
        "unknown",
        defended(),
        base(vec![]),
        award("zz"),
        Rejected(Code::NotFound, "learner zz is not enrolled"),
    )
    .await;
    case(
        "twice",
        defended(),
        base(vec![awarded("l1")]),
        award("l1"),
        Rejected(Code::AlreadyExists, "already awarded to learner l1"),
    )
    .await;
    case(
        "withdrawn",
        defended(),
        base(vec![]),
        award("l4"),
        Rejected(Code::Conflict, "learner l4 has withdrawn"),
    )
    .await;
    case(
        "failed",
        defended(),
        base(vec![]),
        award("l3"),
        Rejected(Code::Conflict, "latest defence result is failed"),
    )
    .await;
    case(
        "no defence",
        defended(),
        base(vec![enrolled("l5", false)]),
        award("l5"),
        Rejected(Code::Conflict, "learner l5 has no defence result"),
    )
    .await;
    let deferred = lookups().field_study(vec![
        formed("fs1", &["l1", "l2", "l3"]),
        defence("fs1", "d1", 10),
        outcome("fs1", "d1", "l1", DefenceResult::Deferred),
    ]);
    case(
        "deferred",
        deferred,
        base(vec![]),
        award("l1"),
        Rejected(Code::Conflict, "latest defence result is deferred"),
    )
    .await;
    // l1 passed in fs1, then left it: fs1 is the study they last belonged to.
    let former = lookups().field_study(vec![
        formed("fs1", &["l1", "l2", "l3"]),
        defence("fs1", "d1", 10),
        outcome("fs1", "d1", "l1", Passed),
        left("fs1", &["l1"], &["l2", "l3"]),
    ]);
    case(
        "former member",
        former,
        base(vec![]),
        award("l1"),
        Events(vec![awarded("l1")]),
    )
    .await;
    // ... then joined fs2, which has not defended yet: fs2 is where the result must come from.
    let moved = lookups()
        .field_study(vec![
            formed("fs1", &["l1", "l2", "l3"]),
            defence("fs1", "d1", 10),
            outcome("fs1", "d1", "l1", Passed),
            left("fs1", &["l1"], &["l2", "l3"]),
        ])
        .field_study(vec![
            formed("fs2", &["l5", "l6", "l7"]),
            joined("fs2", &["l1"], &["l5", "l6", "l7", "l1"]),
        ]);
    case(
        "current study without defence",
        moved,
        base(vec![]),
        award("l1"),
        Rejected(Code::Conflict, "learner l1 has no defence result"),
    )
    .await;
}

#[tokio::test]
async fn record_deis_credit_rules() {
    case(
        "credits",
        lookups(),
        base(vec![awarded("l2")]),
        credit("l2"),
        Events(vec![credited("l2")]),
    )
    .await;
    case(
        "unknown",
        lookups(),
        base(vec![]),
        credit("zz"),
        Rejected(Code::NotFound, "learner zz is not enrolled"),
    )
    .await;
    case(
        "twice",
        lookups(),
        base(vec![awarded("l2"), credited("l2")]),
        credit("l2"),
        Rejected(Code::AlreadyExists, "already recorded"),
    )
    .await;
    case(
        "no certificate",
        lookups(),
        base(vec![]),
        credit("l2"),
        Rejected(Code::Conflict, "learner l2 has no certificate"),
    )
    .await;
    case(
        "not on the pathway",
        lookups(),
        base(vec![awarded("l1")]),
        credit("l1"),
        Rejected(Code::Conflict, "learner l1 is not on the DEIS pathway"),
    )
    .await;
}

#[test]
fn state_follows_the_events() {
    let mut cohort = Cohort::default();
    assert!(!cohort.exists());
    let events = base(vec![
        scheduled("s1", "m1", 14),
        held("s1", &["l1"], &["l2"], &["l3"]),
        corrected("s1", "l3", Absent, Excused),
        awarded("l2"),
        credited("l2"),
        closed(),
    ]);
    for event in events {
        cohort.apply(event);
    }
    assert_eq!(cohort.cohort_id().map(Id::as_str), Some(C));
    assert_eq!(cohort.programme_id().map(Id::as_str), Some("p"));
    assert_eq!((cohort.title(), cohort.is_closed()), ("T", true));
    assert_eq!(
        cohort
            .learners()
            .iter()
            .map(|l| l.learner_id().as_str())
            .collect::<Vec<_>>(),
        ["l1", "l2", "l3", "l4"]
    );
    assert!(cohort.is_active("l1") && !cohort.is_active("l4") && !cohort.is_active("zz"));
    let l2 = cohort.learner("l2").expect("l2");
    assert!(
        l2.deis_pathway() && l2.certificate_awarded() && l2.deis_credit() && !l2.is_withdrawn()
    );
    let s1 = cohort.session("s1").expect("s1");
    assert_eq!(s1.status(), SessionStatus::Held);
    assert_eq!(
        (
            s1.attendance_of("l1"),
            s1.attendance_of("l3"),
            s1.attendance_of("l4")
        ),
        (Some(Present), Some(Excused), None)
    );
    assert_eq!(s1.half_days(), 2);
    assert_eq!(SessionStatus::Cancelled.as_str(), "cancelled");
}
