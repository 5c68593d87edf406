//! The second vocabulary (FORMAT.md, "Second vocabulary: the harder paths"), on both backends:
//! the rule probes of `tests/data/harder.jsonl` against their right answers
//! (`harder.expected.json`: each line's code and, after some lines, the effects on the read
//! models and the reservations), and a full path through the seven commands
//! (`harder-path.jsonl`) against its expected documents (`harder-path.expected.json`).

use crate::helpers::TestEnv;
use fieldtrail::Outcome;
use serde_json::{json, Value};

/// The probes of the second vocabulary.
const PROBES: &str = include_str!("../data/harder.jsonl");
/// Their right answers.
const PROBES_EXPECTED: &str = include_str!("../data/harder.expected.json");

/// What `then` names after a line: a document (`transcript C/L`, `history F`, `complaints C`)
/// or a reservation (`reservation KIND KEY`, whose holder is a stream or `null`).
async fn observed(env: &TestEnv, what: &str) -> Value {
    let (kind, key) = what.split_once(' ').expect("`kind key`");
    match kind {
        "reservation" => {
            let (claim_kind, claim_key) = key.split_once(' ').expect("`KIND KEY`");
            let held = env.journal.reservations().await.expect("reservations");
            held.iter()
                .find(|r| r.claim_kind == claim_kind && r.claim_key == claim_key)
                .map_or(Value::Null, |r| json!(r.holder))
        }
        "complaints" => fieldtrail::read::complaints_register(&env.journal, key)
            .await
            .expect("read model")
            .unwrap_or(Value::Null),
        _ => env.document(kind, key).await.unwrap_or(Value::Null),
    }
}

/// Compares the fields `want` names (`#field`: the length of the array `field`) with `got`.
fn check_fields(line: &Value, what: &str, got: &Value, want: &Value) {
    let Some(fields) = want.as_object() else {
        assert_eq!(got, want, "line {}: {what}", line["line"]);
        return;
    };
    for (field, value) in fields {
        match field.strip_prefix('#') {
            Some(array) => assert_eq!(
                got[array].as_array().map(Vec::len),
                value.as_u64().map(|n| n as usize),
                "line {}: {what}: number of {array}",
                line["line"]
            ),
            None => assert_eq!(&got[field], value, "line {}: {what}: {field}", line["line"]),
        }
    }
}

crate::both_backends!(
    harder_probes_get_the_expected_codes_and_effects,
    harder_probes_get_the_expected_codes_and_effects_on
);

async fn harder_probes_get_the_expected_codes_and_effects_on(env: TestEnv) {
    let expected: Vec<Value> = serde_json::from_str(PROBES_EXPECTED).unwrap();
    let lines: Vec<&str> = PROBES.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), expected.len());
    let handler = env.handler();
    for (n, (line, want)) in lines.iter().zip(&expected).enumerate() {
        // Each line as a batch of one: the import's path (a split falls back to the
        // handler's, which appends its two streams).
        let events = env.event_count().await;
        let outcome = handler
            .handle_batch(&[line], chrono::Utc::now(), None)
            .await
            .unwrap()
            .remove(0);
        let appended = env.event_count().await - events;
        let (command_id, expect, message) = match &outcome {
            Outcome::Applied { command_id, .. } => (Some(command_id.clone()), json!("ok"), None),
            Outcome::Duplicate { command_id, .. } => {
                (Some(command_id.clone()), json!("duplicate"), None)
            }
            Outcome::Rejected {
                command_id,
                code,
                message,
            } => (command_id.clone(), json!(code), Some(message)),
        };
        let got = json!({"command_id": command_id, "line": n + 1, "expect": expect});
        let mut answer = want.clone();
        answer.as_object_mut().unwrap().remove("then");
        assert_eq!(got, answer, "{outcome:?}");
        // Applied lines append, refused ones nothing; every refusal says why.
        assert_eq!(
            appended > 0,
            expect == "ok",
            "line {}: {appended} events",
            n + 1
        );
        assert!(message.is_none_or(|m| !m.is_empty()), "line {}", n + 1);
        if let Some(then) = want["then"].as_object() {
            env.project().await;
            for (what, fields) in then {
                check_fields(want, what, &observed(&env, what).await, fields);
            }
        }
    }
    // The split appended two streams in one transaction, one ledger row: the journal verifies,
    // the reservations rebuilt from the events equal the live ones, and the read models a
    // replay.
    env.project().await;
    let report = env.journal.verify(None).await.unwrap();
    assert!(report.intact(), "{:?}", report.breaks);
    let live = env.journal.reservations().await.unwrap();
    env.journal.rebuild_reservations().await.unwrap();
    assert_eq!(env.journal.reservations().await.unwrap(), live);
    env.assert_read_models_equal_replay().await;
    // Re-sending the split answers its first answer: both streams' positions, nothing new.
    let split = lines
        .iter()
        .zip(&expected)
        .find(|(l, w)| l.contains("\"split_field_study\"") && w["expect"] == "ok")
        .map(|(l, _)| *l)
        .unwrap();
    let again = serde_json::to_value(
        handler
            .handle_json(split, chrono::Utc::now())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(again["stream"], "field_study/h-fa");
    let [first, last] = [0, 1].map(|i| again["positions"][i].as_i64().unwrap());
    assert_eq!(last, first + 1, "the new study's formation, then the split");
    let new_study = env.journal.stream("field_study", "h-fc", 0).await.unwrap();
    let old_study = env.journal.stream("field_study", "h-fa", 0).await.unwrap();
    assert_eq!(new_study[0].position, first);
    assert_eq!(new_study[0].event_type, "field_study_formed");
    assert_eq!(new_study[0].payload["split_from"], "h-fa");
    let split_event = old_study.iter().find(|e| e.position == last).unwrap();
    assert_eq!(split_event.event_type, "field_study_split");
    assert_eq!(split_event.command_id, new_study[0].command_id);
    env.cleanup().await;
}

fn metadata(command_id: &str) -> fieldtrail_journal::CommandMetadata {
    fieldtrail_journal::CommandMetadata {
        command_id: command_id.to_owned(),
        command: "split_field_study".to_owned(),
        actor: "staff:test".to_owned(),
        reported_actor: None,
        occurred_at: chrono::Utc::now().into(),
        correlation_id: command_id.to_owned(),
        causation_id: command_id.to_owned(),
        event_ids: Vec::new(),
    }
}

fn formed(study: &str, members: &[&str], split_from: Option<&str>) -> fieldtrail_journal::NewEvent {
    (
        "field_study_formed".to_owned(),
        "2".to_owned(),
        json!({"field_study_id": study, "cohort_id": "c1", "members": members,
               "organisation": {"name": "o", "sector": "s"}, "split_from": split_from}),
    )
}

fn part(
    study: &str,
    expected: i64,
    events: Vec<fieldtrail_journal::NewEvent>,
) -> fieldtrail_journal::StreamAppend {
    fieldtrail_journal::StreamAppend {
        stream_type: "field_study".to_owned(),
        stream_id: study.to_owned(),
        expected,
        events,
    }
}

crate::both_backends!(
    a_split_appends_both_streams_or_nothing,
    a_split_appends_both_streams_or_nothing_on
);

/// The journal itself, without the aggregates' checks: `append_streams` appends every part or
/// none, with one ledger row, and moves the members' places only from the study split from.
async fn a_split_appends_both_streams_or_nothing_on(env: TestEnv) {
    use fieldtrail_journal::JournalError;
    let j = &env.journal;
    j.append(
        "field_study",
        "a",
        0,
        &[formed("a", &["l1", "l2", "l3", "l4"], None)],
        &metadata("form-a"),
    )
    .await
    .unwrap();
    j.append(
        "field_study",
        "c",
        0,
        &[formed("c", &["l5", "l6", "l7"], None)],
        &metadata("form-c"),
    )
    .await
    .unwrap();
    j.append(
        "field_study",
        "x",
        0,
        &[formed("x", &["l8", "l9", "l10"], None)],
        &metadata("form-x"),
    )
    .await
    .unwrap();
    let split = |members: &[&str]| {
        (
            "field_study_split".to_owned(),
            "1".to_owned(),
            json!({"field_study_id": "a", "cohort_id": "c1", "new_field_study_id": "n",
                   "members": members, "remaining": ["l1", "l2"],
                   "organisation": {"name": "o", "sector": "s"}, "reason": "r"}),
        )
    };
    let (events, claims) = (env.event_count().await, j.reservations().await.unwrap());
    // A place another study holds: refused, nothing appended, nothing moved.
    let err = j
        .append_streams(
            &[
                part("n", 0, vec![formed("n", &["l3", "l5"], Some("a"))]),
                part("a", 1, vec![split(&["l3", "l5"])]),
            ],
            &metadata("split-1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::ClaimHeld { holder, .. } if holder == "field_study/c"),
        "{err:?}"
    );
    // The new stream exists already: refused by its version check.
    let err = j
        .append_streams(
            &[
                part("x", 0, vec![formed("x", &["l3", "l4"], Some("a"))]),
                part("a", 1, vec![split(&["l3", "l4"])]),
            ],
            &metadata("split-2"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::VersionConflict { .. }),
        "{err:?}"
    );
    // The old stream moved on meanwhile: refused too.
    let err = j
        .append_streams(
            &[
                part("n", 0, vec![formed("n", &["l3", "l4"], Some("a"))]),
                part("a", 0, vec![split(&["l3", "l4"])]),
            ],
            &metadata("split-3"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::VersionConflict { .. }),
        "{err:?}"
    );
    assert_eq!(env.event_count().await, events);
    assert_eq!(j.reservations().await.unwrap(), claims);
    assert!(j.applied("split-1").await.unwrap().is_none());
    // Accepted: both streams, one ledger row naming the old study, the places moved.
    let positions = j
        .append_streams(
            &[
                part("n", 0, vec![formed("n", &["l3", "l4"], Some("a"))]),
                part("a", 1, vec![split(&["l3", "l4"])]),
            ],
            &metadata("split-4"),
        )
        .await
        .unwrap();
    assert_eq!(positions[1][0], positions[0][0] + 1);
    let ledger = j.applied("split-4").await.unwrap().unwrap();
    assert_eq!(
        (
            ledger.stream.as_str(),
            ledger.first_position,
            ledger.last_position
        ),
        ("field_study/a", positions[0][0], positions[1][0])
    );
    let holder = |key: &str| {
        let key = key.to_owned();
        async move {
            j.reservations()
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.claim_key == key)
                .map(|r| r.holder)
        }
    };
    assert_eq!(holder("c1/l3").await.as_deref(), Some("field_study/n"));
    assert_eq!(holder("c1/l1").await.as_deref(), Some("field_study/a"));
    assert_eq!(holder("c1/l5").await.as_deref(), Some("field_study/c"));
    let err = j
        .append_streams(
            &[
                part("m", 0, vec![formed("m", &["l1", "l2"], Some("a"))]),
                part("a", 2, vec![split(&["l1", "l2"])]),
            ],
            &metadata("split-4"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::DuplicateCommand(_)), "{err:?}");
    let report = j.verify(None).await.unwrap();
    assert!(report.intact(), "{:?}", report.breaks);
    let live = j.reservations().await.unwrap();
    j.rebuild_reservations().await.unwrap();
    assert_eq!(j.reservations().await.unwrap(), live);
    env.cleanup().await;
}

crate::both_backends!(
    two_splits_racing_for_one_new_study_id_give_it_to_one,
    two_splits_racing_for_one_new_study_id_give_it_to_one_on
);

/// Two handlers (as two servers) split two studies into the same new id at once: the new
/// stream's version check lets one through; the other, decided again, is `already_exists`.
async fn two_splits_racing_for_one_new_study_id_give_it_to_one_on(env: TestEnv) {
    let mut setup: String = PROBES.lines().take(11).map(|l| format!("{l}\n")).collect();
    // h-fb = {h-l5, h-l6, h-l7} gains h-l8, so that both studies can split in two.
    for (id, command, data) in [
        (
            "race-0",
            "enrol_learner",
            json!({"cohort_id": "h-cohort", "learner_id": "h-l8", "name": "Personne 8", "deis_pathway": false}),
        ),
        (
            "race-1",
            "change_members",
            json!({"field_study_id": "h-fb", "join": ["h-l8"], "leave": [], "reason": "renfort"}),
        ),
    ] {
        let line = json!({"command_id": id, "command": command, "at": "2025-10-07T10:00:00+02:00",
                          "actor": "staff:coordinator", "data": data});
        setup.push_str(&format!("{line}\n"));
    }
    assert_eq!(env.import(&setup).await.rejected, 0);
    let (a, b) = (env.handler(), env.handler());
    let line = |study: &str, members: [&str; 2], id: &str| {
        json!({"command_id": id, "command": "split_field_study", "at": "2026-02-02T10:00:00+01:00",
               "actor": "staff:coordinator", "data": {"field_study_id": study, "new_field_study_id": "h-new",
               "members": members, "organisation": {"name": "o", "sector": "s"}, "reason": "r"}})
        .to_string()
    };
    let (left, right) = (
        line("h-fa", ["h-l3", "h-l4"], "race-a"),
        line("h-fb", ["h-l7", "h-l8"], "race-b"),
    );
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let (ba, bb) = (barrier.clone(), barrier);
    let (x, y) = tokio::join!(
        async {
            ba.wait().await;
            a.handle_json(&left, chrono::Utc::now()).await.unwrap()
        },
        async {
            bb.wait().await;
            b.handle_json(&right, chrono::Utc::now()).await.unwrap()
        }
    );
    let outcomes = [
        serde_json::to_value(x).unwrap(),
        serde_json::to_value(y).unwrap(),
    ];
    let applied = outcomes
        .iter()
        .filter(|o| o["outcome"] == "applied")
        .count();
    let refused: Vec<&Value> = outcomes
        .iter()
        .filter(|o| o["outcome"] == "rejected")
        .collect();
    assert_eq!((applied, refused.len()), (1, 1), "{outcomes:?}");
    assert_eq!(refused[0]["code"], "already_exists", "{outcomes:?}");
    let formed = env.journal.stream("field_study", "h-new", 0).await.unwrap();
    assert_eq!(formed.len(), 1);
    let report = env.journal.verify(None).await.unwrap();
    assert!(report.intact(), "{:?}", report.breaks);
    env.cleanup().await;
}

crate::both_backends!(
    a_version_1_formation_reads_as_version_2_without_a_split,
    a_version_1_formation_reads_as_version_2_without_a_split_on
);

/// `field_study_formed` gained `split_from` in version 2: a row an older writer stored (v1)
/// stays as written and reads as v2 with `split_from: null` on every path (the aggregate, the
/// claims, the read models, the auditor's history); its history document has no lineage key.
async fn a_version_1_formation_reads_as_version_2_without_a_split_on(env: TestEnv) {
    let setup: String = PROBES.lines().take(9).map(|l| format!("{l}\n")).collect();
    env.import(&setup).await;
    let v1 = (
        "field_study_formed".to_owned(),
        "1".to_owned(),
        json!({"field_study_id": "old", "cohort_id": "h-cohort", "members": ["h-l1", "h-l2", "h-l3"],
               "organisation": {"name": "o", "sector": "s"}}),
    );
    env.journal
        .append("field_study", "old", 0, &[v1], &metadata("old-form"))
        .await
        .unwrap();
    let history = env
        .journal
        .history(
            fieldtrail_journal::HistoryOf::Stream {
                stream_type: "field_study",
                stream_id: "old",
            },
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            history[0].event_version.as_str(),
            &history[0].payload["split_from"]
        ),
        ("2", &Value::Null)
    );
    // The aggregate reads it (a change of members is decided on it), and so do the claims.
    let change = json!({"command_id": "old-change", "command": "change_members", "at": "2025-10-07T10:00:00+02:00",
        "actor": "staff:coordinator", "data": {"field_study_id": "old", "join": ["h-l4"], "leave": [], "reason": "renfort"}});
    let outcome = env
        .handler()
        .handle_json(&change.to_string(), chrono::Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, fieldtrail::Outcome::Applied { .. }),
        "{outcome:?}"
    );
    let held = env.journal.reservations().await.unwrap();
    assert!(held
        .iter()
        .any(|r| r.claim_key == "h-cohort/h-l1" && r.holder == "field_study/old"));
    env.project().await;
    let doc = env.document("history", "old").await.unwrap();
    assert_eq!(doc["members"], json!(["h-l1", "h-l2", "h-l3", "h-l4"]));
    assert!(
        doc.get("split_from").is_none() && doc.get("split_into").is_none(),
        "{doc}"
    );
    env.cleanup().await;
}
