//! The auditor's view of the history entries: the previous value beside the new one, and why.

use super::fixture::scenario;
use crate::ReadModels;
use serde_json::{json, Value};

fn entries() -> Vec<Value> {
    let history = ReadModels::fold(&scenario().events)
        .history("fs1")
        .expect("history");
    serde_json::to_value(history.entries)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .expect("entries")
}

fn entry(entries: &[Value], event: &str, nth: usize) -> Value {
    entries
        .iter()
        .filter(|e| e["event"] == event)
        .nth(nth)
        .cloned()
        .unwrap_or_else(|| panic!("no {event} #{nth}"))
}

#[test]
fn each_revision_shows_the_previous_value_the_new_one_and_the_reason() {
    let entries = entries();
    let pick = |event: &str, nth: usize| {
        let e = entry(&entries, event, nth);
        (e["previous"].clone(), e["new"].clone(), e["reason"].clone())
    };
    assert_eq!(
        pick("members_changed", 0),
        (
            json!({"members": ["l1", "l2", "l3"]}),
            json!({"members": ["l1", "l3"]}),
            json!("Retrait de la formation")
        )
    );
    assert_eq!(
        pick("commission_negotiated", 0),
        (
            Value::Null,
            json!({"version": 1, "brief": "Brief 1", "deliverables": ["rapport"], "negotiated_with": "Directrice"}),
            Value::Null
        )
    );
    assert_eq!(
        pick("commission_agreed", 0),
        (
            json!({"agreed_version": null}),
            json!({"agreed_version": 2}),
            Value::Null
        )
    );
    assert_eq!(
        pick("hypothesis_revised", 0),
        (
            json!({"hypothesis_id": "h1", "status": "open", "text": "H1 a"}),
            json!({"hypothesis_id": "h1", "status": "open", "text": "H1 b"}),
            json!("Entretiens")
        )
    );
    assert_eq!(
        pick("hypothesis_abandoned", 0),
        (
            json!({"hypothesis_id": "h2", "status": "open", "text": "H2"}),
            json!({"hypothesis_id": "h2", "status": "abandoned", "text": "H2"}),
            json!("Hors sujet")
        )
    );
    assert_eq!(
        pick("production_submitted", 0),
        (
            Value::Null,
            json!({"version": 1, "title": "Écrire le terrain", "pages": 42}),
            Value::Null
        )
    );
    // Events that revise nothing carry nulls.
    assert_eq!(
        pick("defence_passed", 0),
        (Value::Null, Value::Null, Value::Null)
    );
}

#[test]
fn a_second_production_shows_the_first_as_previous() {
    let mut log = scenario();
    log.push(
        "field_study",
        "production_submitted",
        "2026-05-20T10:00:00+02:00",
        "learner:l1",
        json!({"field_study_id": "fs1", "version": 2, "title": "Réécrire le terrain", "pages": 51}),
    );
    let history = ReadModels::fold(&log.events)
        .history("fs1")
        .expect("history");
    let last = history.entries.last().expect("entry");
    assert_eq!(
        last.previous,
        Some(json!({"version": 1, "title": "Écrire le terrain", "pages": 42}))
    );
    assert_eq!(
        last.new,
        Some(json!({"version": 2, "title": "Réécrire le terrain", "pages": 51}))
    );
}

#[test]
fn stored_entries_without_the_new_fields_still_read() {
    let old = json!({"position": 1, "event": "field_study_formed", "occurred_at": "2025-09-20T08:00:00Z",
                     "recorded_at": "2025-09-20T08:01:30Z", "actor": "staff:coordinator", "summary": "formed"});
    let entry: crate::HistoryEntry = serde_json::from_value(old).expect("reads");
    assert_eq!(
        (entry.previous, entry.new, entry.reason),
        (None, None, None)
    );
}
