//! The trajectory folds on hand-made logs.

use super::*;
use chrono::{DateTime, Duration, Utc};
use fieldtrail_domain::command::DefenceResult;
use serde_json::{json, Value};

#[derive(Default)]
struct Log {
    events: Vec<RecordedEvent>,
}

impl Log {
    fn push(&mut self, stream_type: &str, event_type: &str, at: &str, payload: Value) {
        let event = AnyEvent::decode(stream_type, event_type, "1", &payload).expect("decodes");
        let id = match stream_type {
            "cohort" => "cohort_id",
            _ => "field_study_id",
        };
        let occurred_at: DateTime<Utc> = DateTime::parse_from_rfc3339(at)
            .expect("time")
            .with_timezone(&Utc);
        let position = self.events.len() as i64 + 1;
        self.events.push(RecordedEvent {
            position,
            stream_type: stream_type.to_owned(),
            stream_id: payload[id].as_str().unwrap_or_default().to_owned(),
            stream_version: 0,
            event_id: format!("e{position}"),
            event_type: event_type.to_owned(),
            event_version: "1".to_owned(),
            occurred_at,
            recorded_at: occurred_at + Duration::seconds(90),
            actor: "staff:someone".to_owned(),
            event,
        });
    }

    /// A cohort `c` with learners a, b, c, d (d withdraws in November), sessions in October,
    /// November and December, a correction, a field study with a renegotiation and a deferral.
    fn cohort(&mut self, c: &str) {
        let l = |x: &str| format!("{c}-{x}");
        self.push("cohort", "cohort_opened", "2025-06-01T10:00:00+02:00", json!({"cohort_id": c, "programme_id": "p", "title": "t", "starts_on": "2025-09-01", "ends_on": "2026-06-30"}));
        for (i, x) in ["a", "b", "c", "d"].iter().enumerate() {
            self.push(
                "cohort",
                "learner_enrolled",
                &format!("2025-06-0{}T10:00:00+02:00", i + 2),
                json!({"cohort_id": c, "learner_id": l(x), "name": "N", "deis_pathway": i == 0}),
            );
        }
        for (s, module, start) in [
            ("s1", "m1", "2025-10-06"),
            ("s2", "m1", "2025-11-03"),
            ("s3", "m2", "2025-12-01"),
        ] {
            self.push("cohort", "session_scheduled", "2025-07-01T10:00:00+02:00", json!({"cohort_id": c, "session_id": format!("{c}-{s}"), "module_id": module, "kind": "course", "starts_at": format!("{start}T09:00:00+01:00"), "ends_at": format!("{start}T17:00:00+01:00"), "half_days": 2, "facilitator": "facilitator:f1"}));
        }
        self.push("cohort", "session_held", "2025-10-06T17:30:00+02:00", json!({"cohort_id": c, "session_id": l("s1"), "module_id": "m1", "half_days": 2, "present": [l("b"), l("c"), l("d")], "excused": [l("a")], "absent": []}));
        self.push("cohort", "session_held", "2025-11-03T17:30:00+01:00", json!({"cohort_id": c, "session_id": l("s2"), "module_id": "m1", "half_days": 2, "present": [l("a"), l("b"), l("d")], "excused": [], "absent": [l("c")]}));
        self.push("cohort", "attendance_corrected", "2025-11-04T10:00:00+01:00", json!({"cohort_id": c, "session_id": l("s1"), "learner_id": l("a"), "previous_status": "excused", "status": "present", "reason": "erreur de saisie"}));
        self.push(
            "cohort",
            "learner_withdrew",
            "2025-11-20T10:00:00+01:00",
            json!({"cohort_id": c, "learner_id": l("d"), "reason": "Raisons de santé"}),
        );
        self.push("field_study", "field_study_formed", "2025-11-21T10:00:00+01:00", json!({"field_study_id": l("fs"), "cohort_id": c, "members": [l("a"), l("b"), l("c")], "organisation": {"name": "Org", "sector": "animation sociale"}}));
        self.push("field_study", "commission_negotiated", "2025-11-22T10:00:00+01:00", json!({"field_study_id": l("fs"), "version": 1, "brief": "b", "deliverables": [], "negotiated_with": "x"}));
        self.push("field_study", "commission_renegotiated", "2025-11-25T10:00:00+01:00", json!({"field_study_id": l("fs"), "version": 2, "brief": "b", "deliverables": [], "reason": "Les premiers entretiens"}));
        self.push(
            "field_study",
            "commission_agreed",
            "2025-12-02T10:00:00+01:00",
            json!({"field_study_id": l("fs"), "version": 2}),
        );
        self.push("cohort", "session_held", "2025-12-01T17:30:00+01:00", json!({"cohort_id": c, "session_id": l("s3"), "module_id": "m2", "half_days": 2, "present": [l("a"), l("c")], "excused": [l("b")], "absent": []}));
        self.push("field_study", "defence_scheduled", "2026-05-01T10:00:00+02:00", json!({"field_study_id": l("fs"), "defence_id": l("d1"), "at": "2026-06-01T10:00:00+02:00", "jury": [{"name": "J1", "role": "professional"}, {"name": "J2", "role": "training_centre"}]}));
        for (x, event) in [
            ("a", "defence_passed"),
            ("b", "defence_deferred"),
            ("c", "defence_failed"),
        ] {
            self.push("field_study", event, "2026-06-01T12:00:00+02:00", json!({"field_study_id": l("fs"), "defence_id": l("d1"), "learner_id": l(x), "remarks": "r"}));
        }
        self.push("field_study", "defence_scheduled", "2026-06-02T10:00:00+02:00", json!({"field_study_id": l("fs"), "defence_id": l("d2"), "at": "2026-06-20T10:00:00+02:00", "jury": [{"name": "J1", "role": "professional"}, {"name": "J3", "role": "training_centre"}]}));
        self.push("field_study", "defence_passed", "2026-06-20T12:00:00+02:00", json!({"field_study_id": l("fs"), "defence_id": l("d2"), "learner_id": l("b"), "remarks": "r"}));
        self.push(
            "cohort",
            "certificate_awarded",
            "2026-06-25T10:00:00+02:00",
            json!({"cohort_id": c, "learner_id": l("a")}),
        );
        self.push(
            "cohort",
            "deis_credit_recorded",
            "2026-06-25T11:00:00+02:00",
            json!({"cohort_id": c, "learner_id": l("a"), "note": "n"}),
        );
        self.push(
            "cohort",
            "cohort_closed",
            "2026-07-01T10:00:00+02:00",
            json!({"cohort_id": c}),
        );
    }
}

fn kinds(l: &LearnerTrajectory) -> Vec<&'static str> {
    l.milestones.iter().map(|m| m.kind.as_str()).collect()
}

fn one_cohort() -> CohortTrajectory {
    let mut log = Log::default();
    log.cohort("k");
    let mut fold = TrajectoryFold::new(None);
    for e in &log.events {
        assert!(fold.apply(e).is_none());
    }
    let mut cohorts = fold.finish();
    assert_eq!(cohorts.len(), 1);
    cohorts.remove(0)
}

#[test]
fn milestones_follow_the_log() {
    let cohort = one_cohort();
    let [a, b, c, d] = &cohort.learners[..] else {
        panic!("four learners")
    };
    assert_eq!(kinds(a)[0], "enrolled");
    assert_eq!(a.milestones[0].deis_pathway, Some(true));
    // The correction makes s1 a's first attended session.
    let first = a
        .of_kind(MilestoneKind::FirstSessionAttended)
        .next()
        .unwrap();
    assert_eq!(first.occurred_at.to_rfc3339(), "2025-10-06T15:30:00+00:00");
    assert_eq!(first.module_id.as_deref(), Some("m1"));
    assert_eq!(first.facilitator.as_deref(), Some("facilitator:f1"));
    assert_eq!(
        a.attendance,
        HalfDays {
            held: 6,
            attended: 6,
            excused: 0,
            absent: 0
        }
    );
    assert_eq!(a.sessions_attended, 3);
    // Withdrawn d: last attended before the withdrawal, month ends stop in its month.
    let last = d
        .of_kind(MilestoneKind::LastSessionAttended)
        .next()
        .unwrap();
    let withdrew = d.of_kind(MilestoneKind::Withdrew).next().unwrap();
    assert!(last.occurred_at < withdrew.occurred_at);
    assert_eq!(withdrew.reason_category, Some("health"));
    let months: Vec<_> = d
        .of_kind(MilestoneKind::AttendanceMonthEnd)
        .map(|m| m.occurred_at.to_rfc3339())
        .collect();
    assert_eq!(
        months,
        ["2025-10-31T22:59:59+00:00", "2025-11-30T22:59:59+00:00"]
    );
    assert!(d.of_kind(MilestoneKind::FieldStudyJoined).next().is_none());
    // Month ends per module: c in m1 at the end of November: 2 of 4 half-days.
    let c_nov: Vec<_> = c
        .of_kind(MilestoneKind::AttendanceMonthEnd)
        .filter(|m| m.occurred_at.to_rfc3339().starts_with("2025-11-30"))
        .collect();
    assert_eq!(c_nov.len(), 1);
    assert_eq!(c_nov[0].half_days.and_then(|h| h.rate()), Some(0.5));
    assert_eq!(
        c.of_kind(MilestoneKind::AttendanceMonthEnd).count(),
        1 + 1 + 2
    );
    // The field study's path reaches its members only.
    let reneg = b
        .of_kind(MilestoneKind::CommissionRenegotiated)
        .next()
        .unwrap();
    assert_eq!(
        (reneg.version, reneg.reason_category),
        (Some(2), Some("field_findings"))
    );
    let attempts: Vec<_> = b
        .of_kind(MilestoneKind::DefenceAttempt)
        .map(|m| (m.attempt, m.result, m.jury.clone()))
        .collect();
    assert_eq!(
        attempts,
        [
            (
                Some(1),
                Some(DefenceResult::Deferred),
                vec!["J1".to_owned(), "J2".to_owned()]
            ),
            (
                Some(2),
                Some(DefenceResult::Passed),
                vec!["J1".to_owned(), "J3".to_owned()]
            ),
        ]
    );
    // Sorted by occurred time.
    for l in &cohort.learners {
        assert!(l
            .milestones
            .windows(2)
            .all(|w| w[0].occurred_at <= w[1].occurred_at));
    }
    assert_eq!(
        cohort.field_studies[0].days_commission_to_agreement,
        Some(10)
    );
    assert_eq!(cohort.field_studies[0].renegotiations, 1);
}

#[test]
fn the_summary_counts_the_cohort() {
    let s = CohortSummary::of(&one_cohort());
    assert_eq!((s.learners, s.withdrawals, s.field_studies), (4, 1, 1));
    assert_eq!(s.median_days_commission_to_agreement, Some(10.0));
    assert_eq!(s.renegotiations_per_field_study, [1]);
    assert_eq!(
        (
            s.defence_attempts,
            s.defences_passed,
            s.defences_deferred,
            s.defences_failed
        ),
        (4, 2, 1, 1)
    );
    assert_eq!((s.certificates, s.deis_credits), (1, 1));
    // Rates: a 6/6, b 4/6, c 4/6, d 4/4.
    let a = s.attendance.unwrap();
    assert_eq!((a.count, a.min, a.max), (4, 4.0 / 6.0, 1.0));
    assert!((a.median - (4.0 / 6.0 + 1.0) / 2.0).abs() < 1e-12);
}

#[test]
fn with_an_index_each_cohort_comes_out_at_its_last_event() {
    let mut log = Log::default();
    log.cohort("x");
    log.cohort("y");
    let mut index = LogIndex::new();
    for e in &log.events {
        index.apply(e);
    }
    assert_eq!(index.cohorts()["x"].learners, 4);
    assert_eq!(index.events() as usize, log.events.len());
    let mut fold = TrajectoryFold::with_index(&index, None);
    let mut out = Vec::new();
    for e in &log.events {
        if let Some(done) = fold.apply(e) {
            assert_eq!(e.position, index.cohorts()[&done.cohort_id].last_position);
            out.push(done.cohort_id);
        }
    }
    assert_eq!(out, ["x", "y"]);
    assert_eq!(fold.peak_open(), 1);
    assert!(fold.finish().is_empty());

    // Interleaved cohorts are open together; a filter keeps one.
    let mut a = Log::default();
    a.cohort("x");
    let mut b = Log::default();
    b.cohort("y");
    let mut mixed = Log::default();
    for (ea, eb) in a.events.iter().zip(&b.events) {
        for e in [ea, eb] {
            let mut e = e.clone();
            e.position = mixed.events.len() as i64 + 1;
            mixed.events.push(e);
        }
    }
    let mut index = LogIndex::new();
    mixed.events.iter().for_each(|e| index.apply(e));
    let mut fold = TrajectoryFold::with_index(&index, None);
    let done: Vec<_> = mixed.events.iter().filter_map(|e| fold.apply(e)).collect();
    assert_eq!(done.len(), 2);
    assert_eq!(fold.peak_open(), 2);
    let only_y = Some(["y".to_owned()].into_iter().collect());
    let mut fold = TrajectoryFold::with_index(&index, only_y);
    let done: Vec<_> = mixed.events.iter().filter_map(|e| fold.apply(e)).collect();
    assert_eq!(done.len(), 1);
    assert_eq!(fold.peak_open(), 1);
}

#[test]
fn events_about_unknown_things_change_nothing() {
    let mut log = Log::default();
    log.push("cohort", "session_held", "2025-10-06T17:30:00+02:00", json!({"cohort_id": "z", "session_id": "s", "module_id": "m1", "half_days": 2, "present": ["ghost"], "excused": [], "absent": []}));
    log.push("cohort", "attendance_corrected", "2025-10-07T17:30:00+02:00", json!({"cohort_id": "z", "session_id": "nope", "learner_id": "ghost", "previous_status": "absent", "status": "present", "reason": "r"}));
    log.push(
        "field_study",
        "commission_agreed",
        "2025-10-08T17:30:00+02:00",
        json!({"field_study_id": "unknown", "version": 1}),
    );
    log.push(
        "cohort",
        "certificate_awarded",
        "2025-10-09T17:30:00+02:00",
        json!({"cohort_id": "z", "learner_id": "ghost"}),
    );
    let mut fold = TrajectoryFold::new(None);
    for e in &log.events {
        fold.apply(e);
    }
    let cohorts = fold.finish();
    assert_eq!(cohorts.len(), 1);
    assert!(cohorts[0].learners.is_empty());
    let s = CohortSummary::of(&cohorts[0]);
    assert_eq!((s.learners, s.certificates, s.attendance), (0, 0, None));
}
