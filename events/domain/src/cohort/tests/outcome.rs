//! The learners' outcomes: certificate and DEIS credit; the state after the events.

use super::*;

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
        split_from: None,
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
