//! The second vocabulary (FORMAT.md, "Second vocabulary: the harder paths"), on both backends:
//! the rule probes of `tests/data/harder.jsonl` against their right answers
//! (`harder.expected.json`: each line's code and, after some lines, the effects on the read
//! models and the reservations), and a full path through the seven commands
//! (`harder-path.jsonl`) against its expected documents (`harder-path.expected.json`).

use crate::helpers::TestEnv;
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
            None => assert_eq!(
                &got[field], value,
                "line {}: {what}: {field}",
                line["line"]
            ),
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
    for (line, want) in lines.iter().zip(&expected) {
        let before = env.event_count().await;
        let outcome =
            serde_json::to_value(handler.handle_json(line, chrono::Utc::now()).await.unwrap())
                .unwrap();
        let after = env.event_count().await;
        let got = match outcome["outcome"].as_str().unwrap() {
            "applied" => "ok".to_owned(),
            "duplicate" => "duplicate".to_owned(),
            _ => outcome["code"].as_str().unwrap().to_owned(),
        };
        assert_eq!(
            got,
            want["expect"].as_str().unwrap(),
            "line {} ({}): {outcome}",
            want["line"],
            want["command_id"]
        );
        if got == "ok" {
            assert!(after > before, "line {}: applied, appended nothing", want["line"]);
        } else {
            assert_eq!(after, before, "line {}: {got} but appended", want["line"]);
            assert!(!outcome["message"].as_str().unwrap().is_empty());
        }
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
    let again =
        serde_json::to_value(handler.handle_json(split, chrono::Utc::now()).await.unwrap())
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
