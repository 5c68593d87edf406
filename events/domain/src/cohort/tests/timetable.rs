//! Opening the cohort, enrolment, scheduling, rescheduling and cancelling sessions.

use super::*;

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
            room: None,
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
