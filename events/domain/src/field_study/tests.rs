//! Given/when/then for every field study rule. The world: cohort `c` with learners `l1` to `l8`
//! and `l9` (withdrawn) and session `s1`; field study `fs2` = {l4, l5, l6}; the study under test
//! is `fs`, formed with {l1, l2, l3}.

use super::*;
use crate::command::{
    AbandonHypothesis, AgreeCommission, ChangeMembers, FormFieldStudy, JuryMember, JuryRole,
    LogIntervention, NegotiateCommission, Outcome, RecordDefence, RecordReflexiveNote,
    RenegotiateCommission, ReviseHypothesis, ScheduleDefence, SessionKind, StateHypothesis,
    SubmitProduction,
};
use crate::event::CohortEvent;
use crate::testing::{at, check, id, ids, reason, InMemoryLookups, Then};
use crate::Code;
use DefenceResult::{Deferred, Failed, Passed};
use FieldStudyCommand as C;
use FieldStudyEvent as E;
use Then::{Events, Rejected};

const FS: &str = "fs";

fn cohort() -> Vec<CohortEvent> {
    let c = || id("c");
    let mut events = vec![CohortEvent::CohortOpened {
        cohort_id: c(),
        programme_id: id("p"),
        title: "T".to_owned(),
        starts_on: "2024-09-01".parse().expect("date"),
        ends_on: "2025-06-30".parse().expect("date"),
    }];
    for l in ["l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"] {
        events.push(CohortEvent::LearnerEnrolled {
            cohort_id: c(),
            learner_id: id(l),
            name: l.to_owned(),
            deis_pathway: false,
        });
    }
    events.push(CohortEvent::LearnerWithdrew {
        cohort_id: c(),
        learner_id: id("l9"),
        reason: reason("r"),
    });
    events.push(CohortEvent::SessionScheduled {
        cohort_id: c(),
        session_id: id("s1"),
        module_id: id("m1"),
        unit_id: None,
        kind: SessionKind::ReflexiveAccompaniment,
        starts_at: at("2024-10-01T09:00:00+02:00"),
        ends_at: at("2024-10-01T12:00:00+02:00"),
        half_days: 1,
        facilitator: "f".to_owned(),
    });
    events
}

fn org() -> Organisation {
    Organisation {
        name: "o".to_owned(),
        sector: "s".to_owned(),
    }
}

/// The cohort and fs2 = {l4, l5, l6}.
fn lookups() -> InMemoryLookups {
    let fs2 = E::FieldStudyFormed {
        field_study_id: id("fs2"),
        cohort_id: id("c"),
        members: ids(&["l4", "l5", "l6"]),
        organisation: org(),
    };
    InMemoryLookups::default()
        .cohort(cohort())
        .field_study(vec![fs2])
}

fn june(day: u32, hour: u32) -> DateTime<FixedOffset> {
    at(&format!("2025-06-{day:02}T{hour:02}:00:00+02:00"))
}

// ---- given ----

fn formed(members: &[&str]) -> FieldStudyEvent {
    E::FieldStudyFormed {
        field_study_id: id(FS),
        cohort_id: id("c"),
        members: ids(members),
        organisation: org(),
    }
}
fn changed(join: &[&str], leave: &[&str], members: &[&str]) -> FieldStudyEvent {
    E::MembersChanged {
        field_study_id: id(FS),
        join: ids(join),
        leave: ids(leave),
        reason: reason("r"),
        members: ids(members),
    }
}
fn negotiated() -> FieldStudyEvent {
    E::CommissionNegotiated {
        field_study_id: id(FS),
        version: 1,
        brief: "b".to_owned(),
        deliverables: vec![],
        negotiated_with: "w".to_owned(),
    }
}
fn renegotiated(version: u32) -> FieldStudyEvent {
    E::CommissionRenegotiated {
        field_study_id: id(FS),
        version,
        brief: "b".to_owned(),
        deliverables: vec![],
        reason: reason("r"),
    }
}
fn agreed(version: u32) -> FieldStudyEvent {
    E::CommissionAgreed {
        field_study_id: id(FS),
        version,
    }
}
fn stated(h: &str) -> FieldStudyEvent {
    E::HypothesisStated {
        field_study_id: id(FS),
        hypothesis_id: id(h),
        text: "t".to_owned(),
    }
}
fn abandoned(h: &str) -> FieldStudyEvent {
    E::HypothesisAbandoned {
        field_study_id: id(FS),
        hypothesis_id: id(h),
        reason: reason("r"),
    }
}
fn produced(version: u32) -> FieldStudyEvent {
    E::ProductionSubmitted {
        field_study_id: id(FS),
        version,
        title: "t".to_owned(),
        pages: 10,
    }
}
fn jury(roles: &[JuryRole]) -> Vec<JuryMember> {
    roles
        .iter()
        .map(|&role| JuryMember {
            name: "j".to_owned(),
            role,
        })
        .collect()
}
fn full_jury() -> Vec<JuryMember> {
    jury(&[JuryRole::Professional, JuryRole::TrainingCentre])
}
fn defence(d: &str, day: u32) -> FieldStudyEvent {
    E::DefenceScheduled {
        field_study_id: id(FS),
        defence_id: id(d),
        at: june(day, 9),
        jury: full_jury(),
    }
}
fn outcome(d: &str, l: &str, result: DefenceResult) -> FieldStudyEvent {
    let (field_study_id, defence_id, learner_id, remarks) = (id(FS), id(d), id(l), "r".to_owned());
    match result {
        Passed => E::DefencePassed {
            field_study_id,
            defence_id,
            learner_id,
            remarks,
        },
        Deferred => E::DefenceDeferred {
            field_study_id,
            defence_id,
            learner_id,
            remarks,
        },
        Failed => E::DefenceFailed {
            field_study_id,
            defence_id,
            learner_id,
            remarks,
        },
    }
}

/// fs formed with {l1, l2, l3}, then `more`.
fn base(more: Vec<FieldStudyEvent>) -> Vec<FieldStudyEvent> {
    let mut events = vec![formed(&["l1", "l2", "l3"])];
    events.extend(more);
    events
}

/// Ready to defend: commission agreed, production submitted.
fn ready(more: Vec<FieldStudyEvent>) -> Vec<FieldStudyEvent> {
    let mut events = base(vec![negotiated(), agreed(1), produced(1)]);
    events.extend(more);
    events
}

// ---- when ----

fn form(members: &[&str]) -> FieldStudyCommand {
    C::FormFieldStudy(FormFieldStudy {
        field_study_id: id(FS),
        cohort_id: id("c"),
        members: ids(members),
        organisation: org(),
    })
}
fn change(join: &[&str], leave: &[&str]) -> FieldStudyCommand {
    C::ChangeMembers(ChangeMembers {
        field_study_id: id(FS),
        join: ids(join),
        leave: ids(leave),
        reason: reason("r"),
    })
}
fn negotiate() -> FieldStudyCommand {
    C::NegotiateCommission(NegotiateCommission {
        field_study_id: id(FS),
        brief: "b".to_owned(),
        deliverables: vec![],
        negotiated_with: "w".to_owned(),
    })
}
fn renegotiate() -> FieldStudyCommand {
    C::RenegotiateCommission(RenegotiateCommission {
        field_study_id: id(FS),
        brief: "b".to_owned(),
        deliverables: vec![],
        reason: reason("r"),
    })
}
fn agree(version: u32) -> FieldStudyCommand {
    C::AgreeCommission(AgreeCommission {
        field_study_id: id(FS),
        version,
    })
}
fn state(h: &str) -> FieldStudyCommand {
    C::StateHypothesis(StateHypothesis {
        field_study_id: id(FS),
        hypothesis_id: id(h),
        text: "t".to_owned(),
    })
}
fn revise(h: &str) -> FieldStudyCommand {
    C::ReviseHypothesis(ReviseHypothesis {
        field_study_id: id(FS),
        hypothesis_id: id(h),
        text: "t2".to_owned(),
        reason: reason("r"),
    })
}
fn abandon(h: &str) -> FieldStudyCommand {
    C::AbandonHypothesis(AbandonHypothesis {
        field_study_id: id(FS),
        hypothesis_id: id(h),
        reason: reason("r"),
    })
}
fn intervene(i: &str) -> FieldStudyCommand {
    C::LogIntervention(LogIntervention {
        field_study_id: id(FS),
        intervention_id: id(i),
        kind: "k".to_owned(),
        summary: "s".to_owned(),
        participants: 12,
    })
}
fn note(n: &str, session: Option<&str>) -> FieldStudyCommand {
    C::RecordReflexiveNote(RecordReflexiveNote {
        field_study_id: id(FS),
        note_id: id(n),
        session_id: session.map(id),
        text: "t".to_owned(),
    })
}
fn submit() -> FieldStudyCommand {
    C::SubmitProduction(SubmitProduction {
        field_study_id: id(FS),
        title: "t".to_owned(),
        pages: 10,
    })
}
fn schedule(d: &str, day: u32, jury: Vec<JuryMember>) -> FieldStudyCommand {
    C::ScheduleDefence(ScheduleDefence {
        field_study_id: id(FS),
        defence_id: id(d),
        at: june(day, 9),
        jury,
    })
}
fn record(d: &str, outcomes: &[(&str, DefenceResult)]) -> FieldStudyCommand {
    let outcomes = outcomes
        .iter()
        .map(|&(l, result)| Outcome {
            learner_id: id(l),
            result,
            remarks: "r".to_owned(),
        })
        .collect();
    C::RecordDefence(RecordDefence {
        field_study_id: id(FS),
        defence_id: id(d),
        outcomes,
    })
}

/// The command stamped at `when`.
async fn case_at(
    name: &str,
    lookups: InMemoryLookups,
    given: Vec<FieldStudyEvent>,
    when: DateTime<FixedOffset>,
    command: FieldStudyCommand,
    then: Then<FieldStudyEvent>,
) {
    check::<FieldStudy>(
        lookups.services(),
        name,
        given,
        Stamped { at: when, command },
        then,
    )
    .await;
}

/// The command stamped on 30 June 2025, after every defence of these tests.
async fn case(
    name: &str,
    given: Vec<FieldStudyEvent>,
    command: FieldStudyCommand,
    then: Then<FieldStudyEvent>,
) {
    case_at(name, lookups(), given, june(30, 12), command, then).await;
}

#[tokio::test]
async fn a_missing_field_study_is_not_found() {
    for when in [
        change(&["l7"], &[]),
        negotiate(),
        agree(1),
        state("h"),
        submit(),
        schedule("d1", 10, full_jury()),
        record("d1", &[]),
    ] {
        case(
            "missing",
            vec![],
            when,
            Rejected(
                Code::NotFound,
                "data.field_study_id: field study fs does not exist",
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn form_field_study_rules() {
    case(
        "forms",
        vec![],
        form(&["l1", "l2", "l3"]),
        Events(vec![formed(&["l1", "l2", "l3"])]),
    )
    .await;
    case(
        "forms with 4",
        vec![],
        form(&["l1", "l2", "l3", "l7"]),
        Events(vec![formed(&["l1", "l2", "l3", "l7"])]),
    )
    .await;
    case(
        "exists",
        base(vec![]),
        form(&["l1", "l2", "l3"]),
        Rejected(Code::AlreadyExists, "field study fs already exists"),
    )
    .await;
    let no_cohort = C::FormFieldStudy(FormFieldStudy {
        field_study_id: id(FS),
        cohort_id: id("nope"),
        members: ids(&["l1", "l2", "l3"]),
        organisation: org(),
    });
    case(
        "no cohort",
        vec![],
        no_cohort,
        Rejected(Code::NotFound, "data.cohort_id: cohort nope does not exist"),
    )
    .await;
    case(
        "2 members",
        vec![],
        form(&["l1", "l2"]),
        Rejected(
            Code::Invalid,
            "data.members: a field study has 3 or 4 members, got 2",
        ),
    )
    .await;
    case(
        "5 members",
        vec![],
        form(&["l1", "l2", "l3", "l7", "l8"]),
        Rejected(Code::Invalid, "got 5"),
    )
    .await;
    case(
        "twice",
        vec![],
        form(&["l1", "l2", "l1"]),
        Rejected(Code::Invalid, "data.members[2]: learner l1 is listed twice"),
    )
    .await;
    case(
        "never enrolled",
        vec![],
        form(&["l1", "l2", "zz"]),
        Rejected(
            Code::Invalid,
            "data.members[2]: learner zz is not enrolled in cohort c",
        ),
    )
    .await;
    case(
        "withdrawn",
        vec![],
        form(&["l9", "l2", "l3"]),
        Rejected(Code::Invalid, "data.members[0]: learner l9 has withdrawn"),
    )
    .await;
    case(
        "in another study",
        vec![],
        form(&["l1", "l2", "l4"]),
        Rejected(
            Code::Conflict,
            "data.members[2]: learner l4 is already in field study fs2",
        ),
    )
    .await;
}

#[tokio::test]
async fn change_members_rules() {
    case(
        "joins",
        base(vec![]),
        change(&["l7"], &[]),
        Events(vec![changed(&["l7"], &[], &["l1", "l2", "l3", "l7"])]),
    )
    .await;
    case(
        "swaps",
        base(vec![]),
        change(&["l7"], &["l2"]),
        Events(vec![changed(&["l7"], &["l2"], &["l1", "l3", "l7"])]),
    )
    .await;
    case(
        "down to 2",
        base(vec![]),
        change(&[], &["l1"]),
        Events(vec![changed(&[], &["l1"], &["l2", "l3"])]),
    )
    .await;
    case(
        "down to 1",
        base(vec![]),
        change(&[], &["l3", "l2"]),
        Rejected(Code::Invalid, "would have 1 member;"),
    )
    .await;
    case(
        "up to 5",
        base(vec![]),
        change(&["l7", "l8"], &[]),
        Rejected(Code::Invalid, "would have 5 members"),
    )
    .await;
    case(
        "joiner withdrawn",
        base(vec![]),
        change(&["l9"], &[]),
        Rejected(Code::Invalid, "data.join[0]: learner l9 has withdrawn"),
    )
    .await;
    case(
        "joiner never enrolled",
        base(vec![]),
        change(&["zz"], &[]),
        Rejected(Code::Invalid, "data.join[0]: learner zz is not enrolled"),
    )
    .await;
    case(
        "joiner a member",
        base(vec![]),
        change(&["l1"], &[]),
        Rejected(
            Code::Invalid,
            "data.join[0]: learner l1 is already a member",
        ),
    )
    .await;
    case(
        "joiner twice",
        base(vec![]),
        change(&["l7", "l7"], &[]),
        Rejected(Code::Invalid, "data.join[1]: learner l7 is listed twice"),
    )
    .await;
    case(
        "leaver not a member",
        base(vec![]),
        change(&[], &["l7"]),
        Rejected(Code::Invalid, "data.leave[0]: learner l7 is not a member"),
    )
    .await;
    case(
        "joiner elsewhere",
        base(vec![]),
        change(&["l4"], &[]),
        Rejected(
            Code::Conflict,
            "data.join[0]: learner l4 is already in field study fs2",
        ),
    )
    .await;
    case(
        "joiner elsewhere, group too big",
        base(vec![]),
        change(&["l4", "l7"], &[]),
        Rejected(Code::Invalid, "would have 5 members"),
    )
    .await;
    // The journal's look-up also returns the study itself: it is not "another" study.
    let with_self = lookups().field_study(base(vec![changed(&[], &["l1"], &["l2", "l3"])]));
    case_at(
        "rejoins",
        with_self,
        base(vec![changed(&[], &["l1"], &["l2", "l3"])]),
        june(30, 12),
        change(&["l1"], &[]),
        Events(vec![changed(&["l1"], &[], &["l2", "l3", "l1"])]),
    )
    .await;
}

#[tokio::test]
async fn commission_rules() {
    case(
        "negotiates",
        base(vec![]),
        negotiate(),
        Events(vec![negotiated()]),
    )
    .await;
    case(
        "negotiates twice",
        base(vec![negotiated()]),
        negotiate(),
        Rejected(Code::Conflict, "a commission already exists"),
    )
    .await;
    case(
        "renegotiates",
        base(vec![negotiated()]),
        renegotiate(),
        Events(vec![renegotiated(2)]),
    )
    .await;
    case(
        "renegotiates again",
        base(vec![negotiated(), agreed(1), renegotiated(2)]),
        renegotiate(),
        Events(vec![renegotiated(3)]),
    )
    .await;
    case(
        "renegotiates nothing",
        base(vec![]),
        renegotiate(),
        Rejected(Code::Conflict, "no commission yet"),
    )
    .await;
    case(
        "agrees",
        base(vec![negotiated(), renegotiated(2)]),
        agree(2),
        Events(vec![agreed(2)]),
    )
    .await;
    case(
        "agrees nothing",
        base(vec![]),
        agree(1),
        Rejected(Code::Conflict, "no commission yet"),
    )
    .await;
    case(
        "agrees an old version",
        base(vec![negotiated(), renegotiated(2)]),
        agree(1),
        Rejected(
            Code::Conflict,
            "data.version: commission version 1 is not the latest (2)",
        ),
    )
    .await;
    case(
        "agrees a future version",
        base(vec![negotiated()]),
        agree(2),
        Rejected(Code::Conflict, "not the latest (1)"),
    )
    .await;
}

#[tokio::test]
async fn hypothesis_intervention_and_note_rules() {
    case(
        "states",
        base(vec![]),
        state("h1"),
        Events(vec![stated("h1")]),
    )
    .await;
    case(
        "states twice",
        base(vec![stated("h1")]),
        state("h1"),
        Rejected(Code::AlreadyExists, "hypothesis h1 already exists"),
    )
    .await;
    let revised = E::HypothesisRevised {
        field_study_id: id(FS),
        hypothesis_id: id("h1"),
        text: "t2".to_owned(),
        reason: reason("r"),
    };
    case(
        "revises",
        base(vec![stated("h1")]),
        revise("h1"),
        Events(vec![revised]),
    )
    .await;
    case(
        "revises unknown",
        base(vec![]),
        revise("h9"),
        Rejected(Code::NotFound, "hypothesis h9 does not exist"),
    )
    .await;
    case(
        "revises abandoned",
        base(vec![stated("h1"), abandoned("h1")]),
        revise("h1"),
        Rejected(Code::Conflict, "hypothesis h1 is abandoned"),
    )
    .await;
    case(
        "abandons",
        base(vec![stated("h1")]),
        abandon("h1"),
        Events(vec![abandoned("h1")]),
    )
    .await;
    case(
        "abandons unknown",
        base(vec![]),
        abandon("h9"),
        Rejected(Code::NotFound, "hypothesis h9 does not exist"),
    )
    .await;
    case(
        "abandons twice",
        base(vec![stated("h1"), abandoned("h1")]),
        abandon("h1"),
        Rejected(Code::Conflict, "hypothesis h1 is abandoned"),
    )
    .await;

    let logged = E::InterventionLogged {
        field_study_id: id(FS),
        intervention_id: id("i1"),
        kind: "k".to_owned(),
        summary: "s".to_owned(),
        participants: 12,
    };
    case(
        "logs",
        base(vec![]),
        intervene("i1"),
        Events(vec![logged.clone()]),
    )
    .await;
    case(
        "logs twice",
        base(vec![logged]),
        intervene("i1"),
        Rejected(Code::AlreadyExists, "intervention i1 already exists"),
    )
    .await;

    let noted = |session: Option<&str>| E::ReflexiveNoteRecorded {
        field_study_id: id(FS),
        note_id: id("n1"),
        session_id: session.map(id),
        text: "t".to_owned(),
    };
    case(
        "notes",
        base(vec![]),
        note("n1", None),
        Events(vec![noted(None)]),
    )
    .await;
    case(
        "notes a session",
        base(vec![]),
        note("n1", Some("s1")),
        Events(vec![noted(Some("s1"))]),
    )
    .await;
    case(
        "notes an unknown session",
        base(vec![]),
        note("n1", Some("s9")),
        Rejected(
            Code::NotFound,
            "data.session_id: session s9 does not exist in cohort c",
        ),
    )
    .await;
    case(
        "notes twice",
        base(vec![noted(None)]),
        note("n1", None),
        Rejected(Code::AlreadyExists, "note n1 already exists"),
    )
    .await;
}

#[tokio::test]
async fn production_rules() {
    case(
        "submits",
        base(vec![negotiated(), agreed(1)]),
        submit(),
        Events(vec![produced(1)]),
    )
    .await;
    case(
        "submits again",
        base(vec![negotiated(), agreed(1), produced(1)]),
        submit(),
        Events(vec![produced(2)]),
    )
    .await;
    case(
        "no commission",
        base(vec![]),
        submit(),
        Rejected(Code::Conflict, "no commission yet"),
    )
    .await;
    case(
        "not agreed",
        base(vec![negotiated()]),
        submit(),
        Rejected(Code::Conflict, "commission version 1 is not agreed"),
    )
    .await;
    case(
        "renegotiated since",
        base(vec![negotiated(), agreed(1), renegotiated(2)]),
        submit(),
        Rejected(Code::Conflict, "commission version 2 is not agreed"),
    )
    .await;
}

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
        "id exists",
        ready(vec![defence("d1", 10)]),
        schedule("d1", 10, full_jury()),
        Rejected(Code::AlreadyExists, "defence d1 already exists"),
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
