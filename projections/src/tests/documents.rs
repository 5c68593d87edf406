//! Exact documents of the scenario.

use super::fixture::scenario;
use crate::{DocKey, DocKind, ReadModels};
use serde_json::json;

fn models() -> ReadModels {
    ReadModels::fold(&scenario().events)
}

#[test]
fn the_timetable_counts_half_days_and_shows_both_clocks() {
    let doc = models()
        .document(&DocKey::timetable("c1"))
        .expect("timetable");
    assert_eq!(
        doc,
        json!({
            "cohort_id": "c1",
            "modules": [
                {"module_id": "m1", "planned_half_days": 4, "scheduled_half_days": 2, "held_half_days": 2},
                {"module_id": "m2", "planned_half_days": 6, "scheduled_half_days": 1, "held_half_days": 1}
            ],
            "sessions": [
                {"session_id": "s1", "module_id": "m1", "unit_id": "m1-1", "kind": "course",
                 "starts_at": "2025-09-15T07:00:00Z", "ends_at": "2025-09-15T15:00:00Z", "starts_at_local": "2025-09-15T09:00:00",
                 "half_days": 2, "status": "held", "facilitator": "intervenant-a", "previous_slots": []},
                {"session_id": "s3", "module_id": "m1", "unit_id": null, "kind": "field_work",
                 "starts_at": "2025-09-29T07:00:00Z", "ends_at": "2025-09-29T15:00:00Z", "starts_at_local": "2025-09-29T09:00:00",
                 "half_days": 2, "status": "cancelled", "facilitator": "intervenant-a", "previous_slots": []},
                {"session_id": "s2", "module_id": "m2", "unit_id": null, "kind": "critical_debate",
                 "starts_at": "2025-10-28T08:00:00Z", "ends_at": "2025-10-28T11:30:00Z", "starts_at_local": "2025-10-28T09:00:00",
                 "half_days": 1, "status": "held", "facilitator": "intervenant-b",
                 "previous_slots": [{"starts_at": "2025-09-22T07:00:00Z", "ends_at": "2025-09-22T10:30:00Z", "reason": "Grève"}]}
            ]
        })
    );
}

#[test]
fn transcripts_follow_attendance_corrections_withdrawal_and_outcomes() {
    let models = models();
    let doc = |l: &str| {
        models
            .document(&DocKey::transcript("c1", l))
            .expect("transcript")
    };
    let zero = |m: &str| json!({"module_id": m, "held_half_days": 0, "attended_half_days": 0, "excused_half_days": 0, "absent_half_days": 0});
    assert_eq!(
        doc("l1"),
        json!({
            "cohort_id": "c1", "learner_id": "l1", "status": "active",
            "modules": [
                {"module_id": "m1", "held_half_days": 2, "attended_half_days": 2, "excused_half_days": 0, "absent_half_days": 0},
                {"module_id": "m2", "held_half_days": 1, "attended_half_days": 1, "excused_half_days": 0, "absent_half_days": 0}
            ],
            "field_study_id": "fs1", "defences": [{"defence_id": "d1", "result": "passed"}],
            "certificate_awarded_on": "2026-06-26", "deis_credit": true
        })
    );
    // Withdrawn before s2 was held: counts nothing for it; stays shown with the study it left.
    assert_eq!(
        doc("l2"),
        json!({
            "cohort_id": "c1", "learner_id": "l2", "status": "withdrawn",
            "modules": [
                {"module_id": "m1", "held_half_days": 2, "attended_half_days": 0, "excused_half_days": 2, "absent_half_days": 0},
                zero("m2")
            ],
            "field_study_id": "fs1", "defences": [], "certificate_awarded_on": null, "deis_credit": false
        })
    );
    // Absent, corrected to excused, then to present; awarded 00:30 in Paris = 22:30 UTC the day before.
    assert_eq!(
        doc("l3"),
        json!({
            "cohort_id": "c1", "learner_id": "l3", "status": "active",
            "modules": [
                {"module_id": "m1", "held_half_days": 2, "attended_half_days": 2, "excused_half_days": 0, "absent_half_days": 0},
                {"module_id": "m2", "held_half_days": 1, "attended_half_days": 1, "excused_half_days": 0, "absent_half_days": 0}
            ],
            "field_study_id": "fs1",
            "defences": [{"defence_id": "d1", "result": "deferred"}, {"defence_id": "d2", "result": "passed"}],
            "certificate_awarded_on": "2026-06-27", "deis_credit": false
        })
    );
    assert!(models.transcript("c1", "l9").is_none());
}

#[test]
fn the_history_keeps_the_tentative_path() {
    let models = models();
    let mut doc = models.document(&DocKey::history("fs1")).expect("history");
    let entries = doc
        .as_object_mut()
        .and_then(|o| o.remove("entries"))
        .expect("entries");
    assert_eq!(
        doc,
        json!({
            "field_study_id": "fs1", "cohort_id": "c1", "members": ["l1", "l3"],
            "commission": {"latest_version": 2, "agreed_version": 2, "versions": [
                {"version": 1, "brief": "Brief 1", "reason": null, "occurred_at": "2025-10-06T08:00:00Z"},
                {"version": 2, "brief": "Brief 2", "reason": "Priorités revues", "occurred_at": "2025-11-06T09:00:00Z"}
            ]},
            "hypotheses": [
                {"hypothesis_id": "h1", "status": "open", "texts": ["H1 a", "H1 b"]},
                {"hypothesis_id": "h2", "status": "abandoned", "texts": ["H2"]}
            ],
            "productions": [{"version": 1, "title": "Écrire le terrain"}]
        })
    );
    let entries = entries.as_array().expect("array");
    let events: Vec<&str> = entries.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "field_study_formed",
            "members_changed",
            "commission_negotiated",
            "commission_renegotiated",
            "commission_agreed",
            "hypothesis_stated",
            "hypothesis_stated",
            "hypothesis_revised",
            "hypothesis_abandoned",
            "production_submitted",
            "defence_scheduled",
            "defence_passed",
            "defence_deferred",
            "defence_scheduled",
            "defence_passed",
        ]
    );
    let positions: Vec<i64> = entries
        .iter()
        .filter_map(|e| e["position"].as_i64())
        .collect();
    assert_eq!(
        positions,
        [13, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]
    );
    assert_eq!(
        entries[3],
        json!({
            "position": 19, "event": "commission_renegotiated",
            "occurred_at": "2025-11-06T09:00:00Z", "recorded_at": "2025-11-06T09:01:30Z",
            "actor": "staff:coordinator", "summary": "commission renegotiated to version 2: Priorités revues",
            "previous": {"version": 1, "brief": "Brief 1", "deliverables": ["rapport"], "negotiated_with": "Directrice"},
            "new": {"version": 2, "brief": "Brief 2", "deliverables": ["rapport"]},
            "reason": "Priorités revues"
        })
    );
    assert!(entries
        .iter()
        .all(|e| e["summary"].as_str().is_some_and(|s| !s.is_empty())));
}

#[test]
fn documents_lists_every_document_once() {
    let keys: Vec<(&str, String)> = models()
        .documents()
        .into_iter()
        .map(|(k, key, _)| (k, key))
        .collect();
    let expected: Vec<(&str, String)> = vec![
        ("timetable", "c1".into()),
        ("transcript", "c1/l1".into()),
        ("transcript", "c1/l2".into()),
        ("transcript", "c1/l3".into()),
        ("history", "fs1".into()),
    ];
    assert_eq!(keys, expected);
    assert_eq!(DocKind::parse("transcript"), Some(DocKind::Transcript));
    assert_eq!(DocKind::parse("nope"), None);
}

#[test]
fn instants_are_utc_with_at_most_microseconds() {
    let t =
        chrono::DateTime::parse_from_rfc3339("2025-09-15T09:00:00.123456789+02:00").expect("time");
    assert_eq!(crate::time::utc(&t), "2025-09-15T07:00:00.123456Z");
    let t = chrono::DateTime::parse_from_rfc3339("2025-10-28T09:00:00+01:00").expect("time");
    assert_eq!(
        (crate::time::utc(&t), crate::time::paris_local(&t)),
        ("2025-10-28T08:00:00Z".into(), "2025-10-28T09:00:00".into())
    );
}
