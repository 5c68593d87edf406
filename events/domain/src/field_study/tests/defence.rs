//! Defences, and the state after the events.

use super::*;

#[tokio::test]
async fn schedule_defence_rules() {
    let scheduled = |d: &str, day| Events(vec![defence(d, day)]);
    case(
        "schedules",
        ready(vec![]),
        schedule("d1", 10, full_jury()),
        scheduled("d1", 10),
    )
    .await;
    case(
        "id of a defence still without outcome",
        ready(vec![defence("d1", 10)]),
        schedule("d1", 10, full_jury()),
        Rejected(
            Code::Conflict,
            "defence d1 is already scheduled and has no outcome yet",
        ),
    )
    .await;
    case(
        "id of a closed defence",
        ready(vec![
            defence("d1", 10),
            outcome("d1", "l1", Deferred),
            outcome("d1", "l2", Deferred),
            outcome("d1", "l3", Deferred),
        ]),
        schedule("d1", 20, full_jury()),
        Rejected(
            Code::AlreadyExists,
            "defence d1 already exists (it is closed)",
        ),
    )
    .await;
    case(
        "no training centre",
        ready(vec![]),
        schedule("d1", 10, jury(&[JuryRole::Professional])),
        Rejected(
            Code::Invalid,
            "data.jury: a jury needs at least one training_centre member",
        ),
    )
    .await;
    case(
        "no professional",
        ready(vec![]),
        schedule("d1", 10, jury(&[JuryRole::TrainingCentre])),
        Rejected(Code::Invalid, "at least one professional member"),
    )
    .await;
    case(
        "bad jury, no production",
        base(vec![negotiated(), agreed(1)]),
        schedule("d1", 10, vec![]),
        Rejected(Code::Invalid, "data.jury"),
    )
    .await;
    case(
        "no production",
        base(vec![negotiated(), agreed(1)]),
        schedule("d1", 10, full_jury()),
        Rejected(Code::Conflict, "no production has been submitted"),
    )
    .await;
    case(
        "earlier pending",
        ready(vec![defence("d1", 10)]),
        schedule("d2", 11, full_jury()),
        Rejected(Code::Conflict, "defence d1 is still without outcome"),
    )
    .await;
    let all_decided = ready(vec![
        defence("d1", 10),
        outcome("d1", "l1", Passed),
        outcome("d1", "l2", Failed),
        outcome("d1", "l3", Passed),
    ]);
    case(
        "nobody deferred",
        all_decided,
        schedule("d2", 20, full_jury()),
        Rejected(Code::Conflict, "defence d1 left nobody deferred"),
    )
    .await;
    let one_deferred = ready(vec![
        defence("d1", 10),
        outcome("d1", "l1", Passed),
        outcome("d1", "l2", Deferred),
        outcome("d1", "l3", Passed),
    ]);
    case(
        "someone deferred",
        one_deferred,
        schedule("d2", 20, full_jury()),
        scheduled("d2", 20),
    )
    .await;
}

#[tokio::test]
async fn record_defence_rules() {
    let first = || ready(vec![defence("d1", 10)]);
    let mixed = [("l2", Deferred), ("l1", Passed), ("l3", Failed)];
    let mixed_events = || {
        vec![
            outcome("d1", "l2", Deferred),
            outcome("d1", "l1", Passed),
            outcome("d1", "l3", Failed),
        ]
    };
    case(
        "records in the order given",
        first(),
        record("d1", &mixed),
        Events(mixed_events()),
    )
    .await;
    case(
        "unknown defence",
        first(),
        record("d9", &mixed),
        Rejected(
            Code::NotFound,
            "defence d9 does not exist in field study fs",
        ),
    )
    .await;
    let mut recorded = first();
    recorded.extend(mixed_events());
    case(
        "already recorded, outcomes wrong too",
        recorded,
        record("d1", &[("l2", Passed)]),
        Rejected(Code::Conflict, "defence d1 is already recorded"),
    )
    .await;
    case(
        "a member missing",
        first(),
        record("d1", &[("l1", Passed), ("l2", Passed)]),
        Rejected(
            Code::Invalid,
            "data.outcomes: learner l3 is due at defence d1 but has no outcome",
        ),
    )
    .await;
    case(
        "not a member",
        first(),
        record(
            "d1",
            &[
                ("l1", Passed),
                ("l2", Passed),
                ("l3", Passed),
                ("l7", Passed),
            ],
        ),
        Rejected(
            Code::Invalid,
            "data.outcomes[3].learner_id: learner l7 is not due",
        ),
    )
    .await;
    case(
        "named twice",
        first(),
        record(
            "d1",
            &[
                ("l1", Passed),
                ("l2", Passed),
                ("l1", Failed),
                ("l3", Passed),
            ],
        ),
        Rejected(
            Code::Invalid,
            "data.outcomes[2].learner_id: learner l1 is named twice",
        ),
    )
    .await;
    let all_passed = [("l1", Passed), ("l2", Passed), ("l3", Passed)];
    case_at(
        "before the defence",
        lookups(),
        first(),
        june(9, 12),
        record("d1", &all_passed),
        Rejected(
            Code::Conflict,
            "at: defence d1 is scheduled for 2025-06-10T09:00:00+02:00",
        ),
    )
    .await;
    let all_passed_events = || {
        vec![
            outcome("d1", "l1", Passed),
            outcome("d1", "l2", Passed),
            outcome("d1", "l3", Passed),
        ]
    };
    case_at(
        "at the defence",
        lookups(),
        first(),
        june(10, 9),
        record("d1", &all_passed),
        Events(all_passed_events()),
    )
    .await;
    case_at(
        "wrong list before the defence",
        lookups(),
        first(),
        june(9, 12),
        record("d1", &[("l1", Passed)]),
        Rejected(Code::Invalid, "data.outcomes"),
    )
    .await;
    // Members who joined before the first defence are due at it.
    let grown = ready(vec![
        changed(&["l7"], &["l3"], &["l1", "l2", "l7"]),
        defence("d1", 10),
    ]);
    case(
        "current members are due",
        grown,
        record("d1", &[("l1", Passed), ("l2", Passed), ("l3", Passed)]),
        Rejected(Code::Invalid, "learner l3 is not due"),
    )
    .await;

    // At a later defence, only those deferred at the previous one are due.
    let mut second = first();
    second.extend(mixed_events());
    second.push(defence("d2", 20));
    case(
        "second: the deferred",
        second.clone(),
        record("d2", &[("l2", Passed)]),
        Events(vec![outcome("d2", "l2", Passed)]),
    )
    .await;
    case(
        "second: not deferred",
        second,
        record("d2", &[("l1", Passed), ("l2", Passed)]),
        Rejected(
            Code::Invalid,
            "data.outcomes[0].learner_id: learner l1 is not due at defence d2",
        ),
    )
    .await;
}

#[test]
fn state_follows_the_events() {
    let mut study = FieldStudy::default();
    assert!(!study.exists());
    let events = ready(vec![
        renegotiated(2),
        changed(&["l7"], &["l3"], &["l1", "l2", "l7"]),
        defence("d1", 10),
        outcome("d1", "l1", Passed),
        outcome("d1", "l2", Deferred),
        outcome("d1", "l7", Passed),
        defence("d2", 20),
        outcome("d2", "l2", Failed),
    ]);
    for event in events {
        study.apply(event);
    }
    assert_eq!(study.field_study_id().map(Id::as_str), Some(FS));
    assert_eq!(study.cohort_id().map(Id::as_str), Some("c"));
    assert_eq!(study.organisation(), Some(&org()));
    assert_eq!(study.members(), ids(&["l1", "l2", "l7"]).as_slice());
    assert!(
        study.is_member("l7")
            && !study.is_member("l3")
            && study.was_member("l3")
            && !study.was_member("l4")
    );
    assert_eq!(
        (
            study.commission_version(),
            study.agreed_commission_version(),
            study.production_version()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(study.latest_defence_result("l2"), Some(Failed));
    assert_eq!(study.latest_defence_result("l1"), Some(Passed));
    assert_eq!(study.latest_defence_result("l3"), None);
}

#[test]
fn latest_result_among_studies() {
    let fold = |events: Vec<FieldStudyEvent>| {
        let mut study = FieldStudy::default();
        for event in events {
            study.apply(event);
        }
        study
    };
    let other = |events: Vec<FieldStudyEvent>| {
        fold(
            events
                .into_iter()
                .map(|e| match e {
                    E::FieldStudyFormed {
                        members,
                        organisation,
                        ..
                    } => E::FieldStudyFormed {
                        field_study_id: id("fsb"),
                        cohort_id: id("c"),
                        members,
                        organisation,
                        split_from: None,
                    },
                    other => other,
                })
                .collect(),
        )
    };
    // l1 failed in fs (June 10th) and left; in fsb they passed on June 20th and left as well.
    let a = fold(ready(vec![
        defence("d1", 10),
        outcome("d1", "l1", Failed),
        outcome("d1", "l2", Passed),
        outcome("d1", "l3", Passed),
        changed(&[], &["l1"], &["l2", "l3"]),
    ]));
    let b = other(vec![
        formed(&["l1", "l4", "l5"]),
        defence("d1", 20),
        outcome("d1", "l1", Passed),
        changed(&[], &["l1"], &["l4", "l5"]),
    ]);
    assert_eq!(
        FieldStudy::latest_result_among(&[a.clone(), b.clone()], "l1"),
        Some(Passed)
    );
    assert_eq!(
        FieldStudy::latest_result_among(&[b, a.clone()], "l1"),
        Some(Passed)
    );
    // A current study wins, even without a defence.
    let c = other(vec![formed(&["l1", "l4", "l5"])]);
    assert_eq!(FieldStudy::latest_result_among(&[a.clone(), c], "l1"), None);
    assert_eq!(FieldStudy::latest_result_among(&[a], "zz"), None);
}
