//! The tentative path: commission, hypotheses, interventions, notes, productions.

use super::*;

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
