//! Given/when/then for every field study rule. The world: cohort `c` with learners `l1` to `l8`
//! and `l9` (withdrawn) and session `s1`; field study `fs2` = {l4, l5, l6}; the study under test
//! is `fs`, formed with {l1, l2, l3}.

mod defence;
mod group;
mod harder;
mod path;

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
        room: None,
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
        split_from: None,
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
        split_from: None,
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
        .enumerate()
        .map(|(i, &role)| JuryMember {
            name: format!("j{i}"),
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
