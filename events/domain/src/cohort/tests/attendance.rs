//! Recording sessions, correcting attendance, closing the cohort.

use super::*;

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
