//! The fold's properties: rebuilds equal live runs, `touched` is complete, odd input is inert.

use super::fixture::{scenario, Log};
use crate::{DocKey, DocKind, ReadModels};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[test]
fn two_halves_give_the_same_documents_as_one_run() {
    let log = scenario();
    let whole = ReadModels::fold(&log.events);
    for cut in [1, log.events.len() / 2, log.events.len() - 1] {
        let (first, second) = log.events.split_at(cut);
        let mut halves = ReadModels::fold(first);
        for e in second {
            halves.apply(e);
        }
        assert_eq!(halves.documents(), whole.documents());
        assert_eq!(halves, whole);
    }
    assert_eq!(whole.last_position(), Some(log.events.len() as i64));
    assert_eq!(ReadModels::new().last_position(), None);
}

#[test]
fn upserting_touched_documents_keeps_a_store_equal_to_a_rebuild() {
    let log = scenario();
    let mut models = ReadModels::new();
    let mut store: BTreeMap<(&'static str, String), Value> = BTreeMap::new();
    for e in &log.events {
        for key in models.apply(e) {
            let doc = models.document(&key).expect("touched documents exist");
            store.insert((key.kind.as_str(), key.key), doc);
        }
        let rebuilt: BTreeMap<_, _> = models
            .documents()
            .into_iter()
            .map(|(k, key, doc)| ((k, key), doc))
            .collect();
        assert_eq!(store, rebuilt, "after position {}", e.position);
    }
}

#[test]
fn a_held_session_touches_the_timetable_and_the_learners_it_counted() {
    let log = scenario();
    let held = log
        .events
        .iter()
        .position(|e| e.event_type == "session_held" && e.position == 17)
        .expect("s2 held");
    let models = ReadModels::fold(&log.events[..=held]);
    assert_eq!(
        models.touched(&log.events[held]),
        vec![
            DocKey::timetable("c1"),
            DocKey::transcript("c1", "l1"),
            DocKey::transcript("c1", "l3"),
        ]
    );
    let closed = log.events.last().expect("closed");
    assert_eq!(ReadModels::fold(&log.events).touched(closed), vec![]);
}

#[test]
fn events_about_unknown_things_change_nothing() {
    let before = ReadModels::fold(&scenario().events);
    let mut log = scenario();
    let odd = [
        (
            "cohort",
            "session_held",
            json!({"cohort_id": "nope", "session_id": "s1", "module_id": "m1", "half_days": 2, "present": ["l1"], "excused": [], "absent": []}),
        ),
        (
            "cohort",
            "learner_enrolled",
            json!({"cohort_id": "nope", "learner_id": "l1", "name": "X", "deis_pathway": false}),
        ),
        (
            "cohort",
            "session_rescheduled",
            json!({"cohort_id": "c1", "session_id": "s9", "starts_at": "2026-01-01T09:00:00Z", "ends_at": "2026-01-01T10:00:00Z", "reason": "r"}),
        ),
        (
            "cohort",
            "session_held",
            json!({"cohort_id": "c1", "session_id": "s1", "module_id": "m1", "half_days": 2, "present": ["l1"], "excused": [], "absent": []}),
        ),
        (
            "cohort",
            "session_cancelled",
            json!({"cohort_id": "c1", "session_id": "s1", "reason": "r"}),
        ),
        (
            "cohort",
            "attendance_corrected",
            json!({"cohort_id": "c1", "session_id": "s3", "learner_id": "l1", "previous_status": "absent", "status": "present", "reason": "r"}),
        ),
        (
            "cohort",
            "attendance_corrected",
            json!({"cohort_id": "c1", "session_id": "s2", "learner_id": "l2", "previous_status": "absent", "status": "present", "reason": "r"}),
        ),
        (
            "cohort",
            "certificate_awarded",
            json!({"cohort_id": "c1", "learner_id": "l9"}),
        ),
        (
            "field_study",
            "hypothesis_revised",
            json!({"field_study_id": "fs1", "hypothesis_id": "h9", "text": "t", "reason": "r"}),
        ),
        (
            "field_study",
            "defence_passed",
            json!({"field_study_id": "fs9", "defence_id": "d1", "learner_id": "l1", "remarks": ""}),
        ),
    ];
    let n = odd.len();
    for (stream, event_type, payload) in odd {
        let e = log
            .push(
                stream,
                event_type,
                "2026-07-02T10:00:00+02:00",
                "staff:x",
                payload,
            )
            .clone();
        let mut models = ReadModels::fold(&log.events[..log.events.len() - 1]);
        models.apply(&e);
    }
    let after = ReadModels::fold(&log.events);
    let docs = |m: &ReadModels| {
        m.documents()
            .into_iter()
            .filter(|(k, _, _)| *k != "history")
            .collect::<Vec<_>>()
    };
    assert_eq!(docs(&after), docs(&before));
    // Only the known field study's history gained an entry (the revision of an unknown hypothesis).
    let entries = |m: &ReadModels| m.history("fs1").map(|h| h.entries.len()).unwrap_or(0);
    assert_eq!(entries(&after), entries(&before) + 1);
    assert!(after.history("fs9").is_none());
    assert_eq!(
        after.last_position(),
        Some(before.last_position().unwrap_or(0) + n as i64)
    );
    assert_eq!(
        after.document(&DocKey {
            kind: DocKind::Transcript,
            key: "no-slash".into()
        }),
        None
    );
    assert!(!after.exists(&DocKey::timetable("nope")));
}

#[test]
fn an_empty_log_has_no_documents() {
    let log = Log::default();
    assert!(ReadModels::fold(&log.events).documents().is_empty());
}
