//! A hand-made global log.

use crate::RecordedEvent;
use chrono::{DateTime, Duration, Utc};
use fieldtrail_domain::AnyEvent;
use serde_json::{json, Value};

/// Builds a global log, one event at a time, positions from 1.
#[derive(Default)]
pub struct Log {
    pub events: Vec<RecordedEvent>,
}

impl Log {
    /// Appends an event decoded from its stream type, event type and payload, as the journal
    /// would; `at` is its `occurred_at`, `recorded_at` is 90 seconds later.
    pub fn push(
        &mut self,
        stream_type: &str,
        event_type: &str,
        at: &str,
        actor: &str,
        payload: Value,
    ) -> &RecordedEvent {
        let event =
            AnyEvent::decode(stream_type, event_type, "1", &payload).expect("test payload decodes");
        let id_field = match stream_type {
            "programme" => "programme_id",
            "cohort" => "cohort_id",
            _ => "field_study_id",
        };
        let occurred_at: DateTime<Utc> = DateTime::parse_from_rfc3339(at)
            .expect("test time")
            .with_timezone(&Utc);
        let position = self.events.len() as i64 + 1;
        self.events.push(RecordedEvent {
            position,
            stream_type: stream_type.to_owned(),
            stream_id: payload[id_field].as_str().unwrap_or_default().to_owned(),
            stream_version: 0,
            event_id: format!("00000000-0000-0000-0000-{position:012}"),
            event_type: event.event_type(),
            event_version: "1".to_owned(),
            occurred_at,
            recorded_at: occurred_at + Duration::seconds(90),
            actor: actor.to_owned(),
            event,
        });
        self.events.last().expect("just pushed")
    }

    fn cohort(&mut self, event_type: &str, at: &str, payload: Value) {
        self.push("cohort", event_type, at, "staff:coordinator", payload);
    }

    fn study(&mut self, event_type: &str, at: &str, payload: Value) {
        self.push("field_study", event_type, at, "staff:coordinator", payload);
    }
}

/// The scenario of the tests: programme `p1` (m1: 4 half-days with unit m1-1, m2: 6), cohort
/// `c1`, learners l1 (DEIS), l2, l3, sessions s1 (held, corrected twice), s2 (rescheduled
/// across the DST change, held after l2 withdrew), s3 (cancelled), field study fs1.
pub fn scenario() -> Log {
    let mut log = Log::default();
    log.push("programme", "programme_defined", "2025-06-01T10:00:00+02:00", "staff:director", json!({
        "programme_id": "p1", "title": "Certificat",
        "modules": [
            {"module_id": "m1", "title": "M1", "half_days": 4, "units": [{"unit_id": "m1-1", "title": "U", "half_days": 2}]},
            {"module_id": "m2", "title": "M2", "half_days": 6, "units": []}
        ]}));
    log.cohort("cohort_opened", "2025-06-02T10:00:00+02:00", json!({
        "cohort_id": "c1", "programme_id": "p1", "title": "C1", "starts_on": "2025-09-01", "ends_on": "2026-07-01"}));
    for (learner, deis) in [("l1", true), ("l2", false), ("l3", false)] {
        log.cohort("learner_enrolled", "2025-09-01T09:00:00+02:00", json!({
            "cohort_id": "c1", "learner_id": learner, "name": format!("Learner {learner}"), "deis_pathway": deis}));
    }
    log.cohort("session_scheduled", "2025-09-02T09:00:00+02:00", json!({
        "cohort_id": "c1", "session_id": "s1", "module_id": "m1", "unit_id": "m1-1", "kind": "course",
        "starts_at": "2025-09-15T09:00:00+02:00", "ends_at": "2025-09-15T17:00:00+02:00", "half_days": 2, "facilitator": "intervenant-a"}));
    log.cohort("session_scheduled", "2025-09-02T09:01:00+02:00", json!({
        "cohort_id": "c1", "session_id": "s2", "module_id": "m2", "unit_id": null, "kind": "critical_debate",
        "starts_at": "2025-09-22T09:00:00+02:00", "ends_at": "2025-09-22T12:30:00+02:00", "half_days": 1, "facilitator": "intervenant-b"}));
    log.cohort("session_scheduled", "2025-09-02T09:02:00+02:00", json!({
        "cohort_id": "c1", "session_id": "s3", "module_id": "m1", "kind": "field_work",
        "starts_at": "2025-09-29T09:00:00+02:00", "ends_at": "2025-09-29T17:00:00+02:00", "half_days": 2, "facilitator": "intervenant-a"}));
    log.cohort("session_rescheduled", "2025-09-10T09:00:00+02:00", json!({
        "cohort_id": "c1", "session_id": "s2", "starts_at": "2025-10-28T09:00:00+01:00", "ends_at": "2025-10-28T12:30:00+01:00", "reason": "Grève"}));
    log.cohort(
        "session_held",
        "2025-09-15T17:30:00+02:00",
        json!({
        "cohort_id": "c1", "session_id": "s1", "module_id": "m1", "half_days": 2,
        "present": ["l1"], "excused": ["l2"], "absent": ["l3"]}),
    );
    log.cohort("attendance_corrected", "2025-09-16T10:00:00+02:00", json!({
        "cohort_id": "c1", "session_id": "s1", "learner_id": "l3", "previous_status": "absent", "status": "excused", "reason": "Justificatif"}));
    log.cohort("attendance_corrected", "2025-09-17T10:00:00+02:00", json!({
        "cohort_id": "c1", "session_id": "s1", "learner_id": "l3", "previous_status": "excused", "status": "present", "reason": "Était là"}));
    log.study(
        "field_study_formed",
        "2025-09-20T10:00:00+02:00",
        json!({
        "field_study_id": "fs1", "cohort_id": "c1", "members": ["l1", "l2", "l3"],
        "organisation": {"name": "Association A", "sector": "médico-social"}}),
    );
    log.cohort(
        "learner_withdrew",
        "2025-10-01T10:00:00+02:00",
        json!({"cohort_id": "c1", "learner_id": "l2", "reason": "Déménagement"}),
    );
    log.study("members_changed", "2025-10-02T10:00:00+02:00", json!({
        "field_study_id": "fs1", "join": [], "leave": ["l2"], "reason": "Retrait de la formation", "members": ["l1", "l3"]}));
    log.cohort(
        "session_cancelled",
        "2025-09-25T10:00:00+02:00",
        json!({"cohort_id": "c1", "session_id": "s3", "reason": "Intervenant malade"}),
    );
    log.cohort(
        "session_held",
        "2025-10-28T12:45:00+01:00",
        json!({
        "cohort_id": "c1", "session_id": "s2", "module_id": "m2", "half_days": 1,
        "present": ["l1", "l3"], "excused": [], "absent": []}),
    );
    log.study("commission_negotiated", "2025-10-06T10:00:00+02:00", json!({
        "field_study_id": "fs1", "version": 1, "brief": "Brief 1", "deliverables": ["rapport"], "negotiated_with": "Directrice"}));
    log.study("commission_renegotiated", "2025-11-06T10:00:00+01:00", json!({
        "field_study_id": "fs1", "version": 2, "brief": "Brief 2", "deliverables": ["rapport"], "reason": "Priorités revues"}));
    log.study(
        "commission_agreed",
        "2025-11-10T10:00:00+01:00",
        json!({"field_study_id": "fs1", "version": 2}),
    );
    log.study(
        "hypothesis_stated",
        "2025-11-12T10:00:00+01:00",
        json!({"field_study_id": "fs1", "hypothesis_id": "h1", "text": "H1 a"}),
    );
    log.study(
        "hypothesis_stated",
        "2025-11-12T10:05:00+01:00",
        json!({"field_study_id": "fs1", "hypothesis_id": "h2", "text": "H2"}),
    );
    log.study("hypothesis_revised", "2025-12-01T10:00:00+01:00", json!({"field_study_id": "fs1", "hypothesis_id": "h1", "text": "H1 b", "reason": "Entretiens"}));
    log.study(
        "hypothesis_abandoned",
        "2025-12-02T10:00:00+01:00",
        json!({"field_study_id": "fs1", "hypothesis_id": "h2", "reason": "Hors sujet"}),
    );
    log.study(
        "production_submitted",
        "2026-05-01T10:00:00+02:00",
        json!({"field_study_id": "fs1", "version": 1, "title": "Écrire le terrain", "pages": 42}),
    );
    let jury =
        json!([{"name": "P", "role": "professional"}, {"name": "T", "role": "training_centre"}]);
    log.study("defence_scheduled", "2026-05-02T10:00:00+02:00", json!({"field_study_id": "fs1", "defence_id": "d1", "at": "2026-06-01T14:00:00+02:00", "jury": jury}));
    log.study(
        "defence_passed",
        "2026-06-01T17:00:00+02:00",
        json!({"field_study_id": "fs1", "defence_id": "d1", "learner_id": "l1", "remarks": "Bien"}),
    );
    log.study("defence_deferred", "2026-06-01T17:00:00+02:00", json!({"field_study_id": "fs1", "defence_id": "d1", "learner_id": "l3", "remarks": "À reprendre"}));
    log.study("defence_scheduled", "2026-06-02T10:00:00+02:00", json!({"field_study_id": "fs1", "defence_id": "d2", "at": "2026-06-20T14:00:00+02:00", "jury": jury}));
    log.study(
        "defence_passed",
        "2026-06-20T17:00:00+02:00",
        json!({"field_study_id": "fs1", "defence_id": "d2", "learner_id": "l3", "remarks": "Bien"}),
    );
    log.cohort(
        "certificate_awarded",
        "2026-06-26T23:30:00+02:00",
        json!({"cohort_id": "c1", "learner_id": "l1"}),
    );
    log.cohort(
        "certificate_awarded",
        "2026-06-27T00:30:00+02:00",
        json!({"cohort_id": "c1", "learner_id": "l3"}),
    );
    log.cohort(
        "deis_credit_recorded",
        "2026-06-28T10:00:00+02:00",
        json!({"cohort_id": "c1", "learner_id": "l1", "note": "Crédit"}),
    );
    log.cohort(
        "cohort_closed",
        "2026-07-01T10:00:00+02:00",
        json!({"cohort_id": "c1"}),
    );
    log
}
