//! The second vocabulary on the field study: a defence's jury (recusal, appointment, and
//! `record_defence` while it is incomplete), the split, rectified results.

use super::*;
use crate::command::{AppointJuryMember, RectifyDefenceResult, RecuseJuryMember, SplitFieldStudy};

fn named(members: &[(&str, JuryRole)]) -> Vec<JuryMember> {
    members
        .iter()
        .map(|&(name, role)| JuryMember {
            name: name.to_owned(),
            role,
        })
        .collect()
}
/// d1 on 10 June before P (professional) and T (training centre).
fn sitting() -> FieldStudyEvent {
    E::DefenceScheduled {
        field_study_id: id(FS),
        defence_id: id("d1"),
        at: june(10, 9),
        jury: named(&[
            ("P", JuryRole::Professional),
            ("T", JuryRole::TrainingCentre),
        ]),
    }
}
fn recused(name: &str) -> FieldStudyEvent {
    E::JuryMemberRecused {
        field_study_id: id(FS),
        defence_id: id("d1"),
        name: name.to_owned(),
        reason: reason("a encadré le groupe"),
    }
}
fn appointed(name: &str, role: JuryRole) -> FieldStudyEvent {
    E::JuryMemberAppointed {
        field_study_id: id(FS),
        defence_id: id("d1"),
        name: name.to_owned(),
        role,
    }
}
fn recuse(d: &str, name: &str) -> FieldStudyCommand {
    C::RecuseJuryMember(RecuseJuryMember {
        field_study_id: id(FS),
        defence_id: id(d),
        name: name.to_owned(),
        reason: reason("a encadré le groupe"),
    })
}
fn appoint(d: &str, name: &str, role: JuryRole) -> FieldStudyCommand {
    C::AppointJuryMember(AppointJuryMember {
        field_study_id: id(FS),
        defence_id: id(d),
        name: name.to_owned(),
        role,
    })
}
fn split(new: &str, members: &[&str]) -> FieldStudyCommand {
    C::SplitFieldStudy(SplitFieldStudy {
        field_study_id: id(FS),
        new_field_study_id: id(new),
        members: ids(members),
        organisation: org(),
        reason: reason("deux commandes"),
    })
}
fn split_event(new: &str, members: &[&str], remaining: &[&str]) -> FieldStudyEvent {
    E::FieldStudySplit {
        field_study_id: id(FS),
        cohort_id: id("c"),
        new_field_study_id: id(new),
        members: ids(members),
        remaining: ids(remaining),
        organisation: org(),
        reason: reason("deux commandes"),
    }
}
fn rectify(d: &str, l: &str, result: DefenceResult) -> FieldStudyCommand {
    C::RectifyDefenceResult(RectifyDefenceResult {
        field_study_id: id(FS),
        defence_id: id(d),
        learner_id: id(l),
        result,
        reason: reason("erreur de délibération"),
    })
}
fn rectified(d: &str, l: &str, previous: DefenceResult, result: DefenceResult) -> FieldStudyEvent {
    E::DefenceResultRectified {
        field_study_id: id(FS),
        defence_id: id(d),
        learner_id: id(l),
        previous_result: previous,
        result,
        reason: reason("erreur de délibération"),
    }
}
/// d1 recorded: l1 passed, l2 and l3 deferred.
fn defended() -> Vec<FieldStudyEvent> {
    ready(vec![
        sitting(),
        outcome("d1", "l1", Passed),
        outcome("d1", "l2", Deferred),
        outcome("d1", "l3", Deferred),
    ])
}
/// As [`lookups`], with l1 holding a certificate.
fn certified() -> InMemoryLookups {
    let mut events = cohort();
    events.push(CohortEvent::CertificateAwarded {
        cohort_id: id("c"),
        learner_id: id("l1"),
    });
    InMemoryLookups::default().cohort(events)
}

#[tokio::test]
async fn jury_rules() {
    case(
        "recuses",
        ready(vec![sitting()]),
        recuse("d1", "T"),
        Events(vec![recused("T")]),
    )
    .await;
    case(
        "not on the jury",
        ready(vec![sitting()]),
        recuse("d1", "X"),
        Rejected(
            Code::Invalid,
            "data.name: \"X\" is not on the jury of defence d1",
        ),
    )
    .await;
    case(
        "already recused",
        ready(vec![sitting(), recused("T")]),
        recuse("d1", "T"),
        Rejected(Code::Invalid, "already recused"),
    )
    .await;
    case(
        "recusal after the outcome",
        defended(),
        recuse("d1", "T"),
        Rejected(Code::Conflict, "defence d1 is already recorded"),
    )
    .await;
    case(
        "recusal at an unknown defence",
        ready(vec![sitting()]),
        recuse("d9", "T"),
        Rejected(Code::NotFound, "defence d9 does not exist"),
    )
    .await;
    case(
        "appoints",
        ready(vec![sitting(), recused("T")]),
        appoint("d1", "U", JuryRole::TrainingCentre),
        Events(vec![appointed("U", JuryRole::TrainingCentre)]),
    )
    .await;
    case(
        "a recused member comes back",
        ready(vec![sitting(), recused("T")]),
        appoint("d1", "T", JuryRole::TrainingCentre),
        Events(vec![appointed("T", JuryRole::TrainingCentre)]),
    )
    .await;
    case(
        "already sitting",
        ready(vec![sitting()]),
        appoint("d1", "P", JuryRole::Professional),
        Rejected(
            Code::AlreadyExists,
            "\"P\" is already on the jury of defence d1",
        ),
    )
    .await;
    case(
        "appointment after the outcome",
        defended(),
        appoint("d1", "U", JuryRole::Professional),
        Rejected(Code::Conflict, "its jury can no longer change"),
    )
    .await;
}

#[tokio::test]
async fn record_defence_needs_a_sitting_jury_of_both_roles() {
    let all = [("l1", Passed), ("l2", Passed), ("l3", Passed)];
    let passed: Vec<FieldStudyEvent> = ["l1", "l2", "l3"]
        .iter()
        .map(|l| outcome("d1", l, Passed))
        .collect();
    case(
        "training centre recused",
        ready(vec![sitting(), recused("T")]),
        record("d1", &all),
        Rejected(
            Code::Conflict,
            "has no training_centre member: appoint one first",
        ),
    )
    .await;
    case(
        "professional recused",
        ready(vec![sitting(), recused("P")]),
        record("d1", &all),
        Rejected(Code::Conflict, "has no professional member"),
    )
    .await;
    case(
        "outcomes are checked first",
        ready(vec![sitting(), recused("T")]),
        record("d1", &all[..2]),
        Rejected(
            Code::Invalid,
            "learner l3 is due at defence d1 but has no outcome",
        ),
    )
    .await;
    case(
        "a replacement appointed",
        ready(vec![
            sitting(),
            recused("T"),
            appointed("U", JuryRole::TrainingCentre),
        ]),
        record("d1", &all),
        Events(passed.clone()),
    )
    .await;
    case(
        "the recused member back",
        ready(vec![
            sitting(),
            recused("T"),
            appointed("T", JuryRole::TrainingCentre),
        ]),
        record("d1", &all),
        Events(passed),
    )
    .await;
}

#[tokio::test]
async fn split_rules() {
    let four = || base(vec![changed(&["l7"], &[], &["l1", "l2", "l3", "l7"])]);
    case(
        "splits",
        four(),
        split("fs3", &["l3", "l7"]),
        Events(vec![split_event("fs3", &["l3", "l7"], &["l1", "l2"])]),
    )
    .await;
    case(
        "new id taken by another study",
        four(),
        split("fs2", &["l3", "l7"]),
        Rejected(Code::AlreadyExists, "field study fs2 already exists"),
    )
    .await;
    case(
        "new id is this study",
        four(),
        split(FS, &["l3", "l7"]),
        Rejected(Code::AlreadyExists, "field study fs already exists"),
    )
    .await;
    case(
        "not a member",
        four(),
        split("fs3", &["l3", "l4"]),
        Rejected(
            Code::Invalid,
            "data.members[1]: learner l4 is not a member of field study fs",
        ),
    )
    .await;
    case(
        "listed twice",
        four(),
        split("fs3", &["l3", "l3"]),
        Rejected(Code::Invalid, "listed twice"),
    )
    .await;
    case(
        "new group of one",
        four(),
        split("fs3", &["l3"]),
        Rejected(Code::Invalid, "field study fs3 would have 1 member"),
    )
    .await;
    case(
        "remaining group of one",
        four(),
        split("fs3", &["l2", "l3", "l7"]),
        Rejected(Code::Invalid, "field study fs would have 1 member"),
    )
    .await;
    case(
        "a defence without outcome",
        base(vec![
            changed(&["l7"], &[], &["l1", "l2", "l3", "l7"]),
            negotiated(),
            agreed(1),
            produced(1),
            sitting(),
        ]),
        split("fs3", &["l3", "l7"]),
        Rejected(Code::Conflict, "defence d1 is still without outcome"),
    )
    .await;
    // The new study's formation comes with the split, from the domain alone.
    let event = split_event("fs3", &["l3", "l7"], &["l1", "l2"]);
    let (new_id, formed) = event.split_companion().unwrap();
    assert_eq!(new_id, id("fs3"));
    assert_eq!(
        formed,
        E::FieldStudyFormed {
            field_study_id: id("fs3"),
            cohort_id: id("c"),
            members: ids(&["l3", "l7"]),
            organisation: org(),
            split_from: Some(id(FS)),
        }
    );
}

#[tokio::test]
async fn rectify_rules() {
    case(
        "rectifies",
        defended(),
        rectify("d1", "l2", Passed),
        Events(vec![rectified("d1", "l2", Deferred, Passed)]),
    )
    .await;
    case(
        "no outcome at that defence",
        defended(),
        rectify("d1", "l4", Passed),
        Rejected(Code::Invalid, "learner l4 has no outcome at defence d1"),
    )
    .await;
    case(
        "not enrolled",
        defended(),
        rectify("d1", "zz", Passed),
        Rejected(Code::NotFound, "learner zz is not enrolled"),
    )
    .await;
    case(
        "outcome not recorded",
        ready(vec![sitting()]),
        rectify("d1", "l1", Failed),
        Rejected(Code::Conflict, "has no outcome recorded yet"),
    )
    .await;
    case(
        "the result in force",
        defended(),
        rectify("d1", "l1", Passed),
        Rejected(Code::Conflict, "passed is already learner l1's result"),
    )
    .await;
    case(
        "the result in force after a rectification",
        ready(vec![
            sitting(),
            outcome("d1", "l1", Passed),
            outcome("d1", "l2", Deferred),
            outcome("d1", "l3", Deferred),
            rectified("d1", "l2", Deferred, Passed),
        ]),
        rectify("d1", "l2", Passed),
        Rejected(Code::Conflict, "passed is already learner l2's result"),
    )
    .await;
    let (given, when) = (defended(), june(30, 12));
    case_at(
        "a certificate in force",
        certified(),
        given.clone(),
        when,
        rectify("d1", "l1", Deferred),
        Rejected(Code::Conflict, "holds a certificate in force"),
    )
    .await;
    case_at(
        "a certificate in force, rectified to passed",
        certified(),
        given,
        when,
        rectify("d1", "l2", Passed),
        Events(vec![rectified("d1", "l2", Deferred, Passed)]),
    )
    .await;
}

#[tokio::test]
async fn the_next_defence_reads_rectified_results_and_current_members() {
    let later = || schedule("d2", 20, full_jury());
    let scheduled = E::DefenceScheduled {
        field_study_id: id(FS),
        defence_id: id("d2"),
        at: june(20, 9),
        jury: full_jury(),
    };
    let all_passed = ready(vec![
        sitting(),
        outcome("d1", "l1", Passed),
        outcome("d1", "l2", Passed),
        outcome("d1", "l3", Passed),
    ]);
    case(
        "nobody deferred",
        all_passed.clone(),
        later(),
        Rejected(Code::Conflict, "left nobody deferred"),
    )
    .await;
    let mut rectified_to_deferred = all_passed;
    rectified_to_deferred.push(rectified("d1", "l3", Passed, Deferred));
    case(
        "deferred by a rectification",
        rectified_to_deferred.clone(),
        later(),
        Events(vec![scheduled]),
    )
    .await;
    let mut with_d2 = rectified_to_deferred;
    with_d2.push(E::DefenceScheduled {
        field_study_id: id(FS),
        defence_id: id("d2"),
        at: june(20, 9),
        jury: full_jury(),
    });
    case(
        "due at d2: the rectified learner only",
        with_d2.clone(),
        record("d2", &[("l3", Passed)]),
        Events(vec![outcome("d2", "l3", Passed)]),
    )
    .await;
    // Members who left by a split are due at no further defence of the old study.
    let mut left = defended();
    left.push(split_event("fs3", &["l3", "l2"], &["l1"]));
    case(
        "the deferred left in a split",
        left,
        later(),
        Rejected(Code::Conflict, "left nobody deferred"),
    )
    .await;
}

#[test]
fn the_state_follows_the_split_and_the_rectifications() {
    let mut study = FieldStudy::default();
    let mut events = defended();
    events.push(rectified("d1", "l1", Passed, Failed));
    events.push(split_event("fs3", &["l2", "l3"], &["l1"]));
    for e in events {
        study.apply(e);
    }
    assert_eq!(study.members(), ids(&["l1"]).as_slice());
    assert!(study.was_member("l2") && !study.is_member("l2"));
    assert_eq!(study.latest_defence_result("l1"), Some(Failed));
    let mut new = FieldStudy::default();
    new.apply(
        split_event("fs3", &["l2", "l3"], &["l1"])
            .split_companion()
            .unwrap()
            .1,
    );
    assert_eq!(new.split_from(), Some(&id(FS)));
    // The new study has no result yet: the one from before the split stands.
    let studies = [study, new];
    assert_eq!(
        FieldStudy::latest_result_among(&studies, "l2"),
        Some(Deferred)
    );
    assert_eq!(
        FieldStudy::latest_result_among(&studies, "l1"),
        Some(Failed)
    );
}
