//! A hand-made log for the renderers' unit tests: a programme, a cohort with sessions (one
//! rescheduled twice across the end of summer time, one cancelled), learners (one withdrawn)
//! and a field study with a renegotiated commission, a revised hypothesis, two productions
//! and two defences (one deferral).

use crate::RecordedEvent;
use chrono::{DateTime, Duration, Utc};
use fieldtrail_domain::AnyEvent;
use serde_json::{json, Value};

/// Events by stream, each in stream order; positions global.
#[derive(Default)]
pub struct TestLog {
    pub programme: Vec<RecordedEvent>,
    pub cohort: Vec<RecordedEvent>,
    pub field_study: Vec<RecordedEvent>,
    position: i64,
}

impl TestLog {
    /// Appends an event; `recorded_at` is `at` plus 90 seconds; the event id is a UUID made
    /// from the position.
    pub fn push(
        &mut self,
        stream_type: &str,
        event_type: &str,
        at: &str,
        actor: &str,
        payload: Value,
    ) {
        let event = AnyEvent::decode(stream_type, event_type, "1", &payload)
            .unwrap_or_else(|e| panic!("test payload of {event_type} decodes: {e}"));
        let occurred_at: DateTime<Utc> = DateTime::parse_from_rfc3339(at)
            .expect("test time")
            .with_timezone(&Utc);
        self.position += 1;
        let (stream, id_field) = match stream_type {
            "programme" => (&mut self.programme, "programme_id"),
            "cohort" => (&mut self.cohort, "cohort_id"),
            _ => (&mut self.field_study, "field_study_id"),
        };
        stream.push(RecordedEvent {
            position: self.position,
            stream_type: stream_type.to_owned(),
            stream_id: payload[id_field].as_str().unwrap_or_default().to_owned(),
            stream_version: stream.len() as i64 + 1,
            event_id: format!("0190a000-0000-7000-8000-{:012}", self.position),
            event_type: event_type.to_owned(),
            event_version: "1".to_owned(),
            occurred_at,
            recorded_at: occurred_at + Duration::seconds(90),
            actor: actor.to_owned(),
            event,
        });
    }

    fn cohort(&mut self, event_type: &str, at: &str, payload: Value) {
        self.push("cohort", event_type, at, "staff:coordinator", payload);
    }

    fn study(&mut self, event_type: &str, at: &str, actor: &str, payload: Value) {
        self.push("field_study", event_type, at, actor, payload);
    }

    /// Every event of the three streams in global-log order.
    pub fn all(&self) -> Vec<RecordedEvent> {
        let mut all: Vec<RecordedEvent> = self
            .programme
            .iter()
            .chain(&self.cohort)
            .chain(&self.field_study)
            .cloned()
            .collect();
        all.sort_by_key(|e| e.position);
        all
    }
}

/// The scenario (see the module comment).
pub fn scenario() -> TestLog {
    let mut log = TestLog::default();
    log.push("programme", "programme_defined", "2025-06-01T10:00:00+02:00", "staff:direction", json!({
        "programme_id": "p1", "title": "Certificat d'ingénierie sociale",
        "modules": [
            {"module_id": "m1", "title": "Épistémologie, éthique; méthode", "half_days": 4,
             "units": [{"unit_id": "m1-1", "title": "Recherche-action, science en action et ingénierie sociale", "half_days": 2}]},
            {"module_id": "m2", "title": "Ingénierie sociale", "half_days": 2, "units": [{"unit_id": "m2-3", "title": "Soutenance", "half_days": 2}]},
            {"module_id": "m4", "title": "Conduite de l'étude de terrain", "half_days": 2, "units": []}
        ]}));
    log.cohort("cohort_opened", "2025-06-02T10:00:00+02:00", json!({
        "cohort_id": "c1", "programme_id": "p1", "title": "Promotion 2025", "starts_on": "2025-09-01", "ends_on": "2026-07-01"}));
    for learner in ["l1", "l2", "l3", "l4"] {
        log.cohort("learner_enrolled", "2025-09-01T09:00:00+02:00", json!({
            "cohort_id": "c1", "learner_id": learner, "name": format!("Name of {learner}"), "deis_pathway": learner == "l1"}));
    }
    let schedule = |log: &mut TestLog,
                    id: &str,
                    module: &str,
                    unit: Option<&str>,
                    kind: &str,
                    start: &str,
                    end: &str| {
        log.cohort("session_scheduled", "2025-09-02T09:00:00+02:00", json!({
            "cohort_id": "c1", "session_id": id, "module_id": module, "unit_id": unit, "kind": kind,
            "starts_at": start, "ends_at": end, "half_days": 2, "facilitator": "facilitator:intervenant-a"}));
    };
    schedule(
        &mut log,
        "s1",
        "m1",
        Some("m1-1"),
        "course",
        "2025-09-15T09:00:00+02:00",
        "2025-09-15T17:00:00+02:00",
    );
    schedule(
        &mut log,
        "s2",
        "m1",
        None,
        "course",
        "2025-10-20T09:00:00+02:00",
        "2025-10-20T17:00:00+02:00",
    );
    schedule(
        &mut log,
        "s3",
        "m4",
        None,
        "field_work",
        "2025-11-03T09:00:00+01:00",
        "2025-11-03T17:00:00+01:00",
    );
    schedule(
        &mut log,
        "s4",
        "m4",
        None,
        "field_work",
        "2025-11-04T09:00:00+01:00",
        "2025-11-04T17:00:00+01:00",
    );
    schedule(
        &mut log,
        "s5",
        "m2",
        Some("m2-3"),
        "defence",
        "2026-06-11T09:00:00+02:00",
        "2026-06-11T17:00:00+02:00",
    );
    log.cohort(
        "session_held",
        "2025-09-15T17:30:00+02:00",
        json!({
        "cohort_id": "c1", "session_id": "s1", "module_id": "m1", "half_days": 2,
        "present": ["l1", "l2", "l3"], "excused": ["l4"], "absent": []}),
    );
    log.cohort(
        "session_rescheduled",
        "2025-10-10T09:00:00+02:00",
        json!({
        "cohort_id": "c1", "session_id": "s2", "starts_at": "2025-10-28T09:00:00+01:00",
        "ends_at": "2025-10-28T17:00:00+01:00", "reason": "Salle indisponible"}),
    );
    log.cohort(
        "session_rescheduled",
        "2025-10-16T09:00:00+02:00",
        json!({
        "cohort_id": "c1", "session_id": "s2", "starts_at": "2025-11-13T09:00:00+01:00",
        "ends_at": "2025-11-13T17:00:00+01:00", "reason": "Demande du groupe"}),
    );
    log.cohort("session_cancelled", "2025-10-30T09:00:00+01:00", json!({
        "cohort_id": "c1", "session_id": "s4", "reason": "Intervenant malade, report; voir\nle planning"}));
    log.cohort(
        "session_held",
        "2025-11-03T17:30:00+01:00",
        json!({
        "cohort_id": "c1", "session_id": "s3", "module_id": "m4", "half_days": 2,
        "present": ["l1", "l2", "l3", "l4"], "excused": [], "absent": []}),
    );
    log.cohort(
        "session_held",
        "2025-11-13T17:30:00+01:00",
        json!({
        "cohort_id": "c1", "session_id": "s2", "module_id": "m1", "half_days": 2,
        "present": ["l1", "l3"], "excused": ["l2"], "absent": ["l4"]}),
    );
    log.cohort(
        "learner_withdrew",
        "2026-01-20T10:00:00+01:00",
        json!({
        "cohort_id": "c1", "learner_id": "l4", "reason": "Départ de la région"}),
    );
    log.cohort(
        "session_held",
        "2026-06-11T17:30:00+02:00",
        json!({
        "cohort_id": "c1", "session_id": "s5", "module_id": "m2", "half_days": 2,
        "present": ["l1", "l2"], "excused": [], "absent": ["l3"]}),
    );

    log.study(
        "field_study_formed",
        "2025-10-01T14:00:00+02:00",
        "staff:coordinator",
        json!({
        "field_study_id": "fs1", "cohort_id": "c1", "members": ["l1", "l2", "l3", "l4"],
        "organisation": {"name": "Association Les Passerelles", "sector": "intervention sociale"}}),
    );
    log.study(
        "commission_negotiated",
        "2025-10-21T14:00:00+02:00",
        "learner:l1",
        json!({
        "field_study_id": "fs1", "version": 1, "brief": "Accompagner un espace de participation",
        "deliverables": ["diagnostic partagé"], "negotiated_with": "Direction"}),
    );
    log.study(
        "commission_agreed",
        "2025-10-25T14:00:00+02:00",
        "staff:coordinator",
        json!({
        "field_study_id": "fs1", "version": 1}),
    );
    log.study(
        "commission_renegotiated",
        "2025-11-09T14:00:00+01:00",
        "learner:l1",
        json!({
        "field_study_id": "fs1", "version": 2, "brief": "Élargir aux partenaires",
        "deliverables": ["diagnostic partagé", "journal de bord"], "reason": "Priorités revues"}),
    );
    log.study(
        "commission_agreed",
        "2025-11-12T14:00:00+01:00",
        "staff:coordinator",
        json!({
        "field_study_id": "fs1", "version": 2}),
    );
    log.study(
        "hypothesis_stated",
        "2025-11-05T14:00:00+01:00",
        "learner:l2",
        json!({
        "field_study_id": "fs1", "hypothesis_id": "h1", "text": "La participation progresse"}),
    );
    log.study(
        "hypothesis_stated",
        "2025-11-06T14:00:00+01:00",
        "learner:l2",
        json!({
        "field_study_id": "fs1", "hypothesis_id": "h2", "text": "Un temps convivial suffit"}),
    );
    log.study("hypothesis_revised", "2025-12-15T14:00:00+01:00", "learner:l2", json!({
        "field_study_id": "fs1", "hypothesis_id": "h1", "text": "La participation progresse avec les salariés",
        "reason": "Observations"}));
    log.study("hypothesis_revised", "2025-12-16T14:00:00+01:00", "learner:l2", json!({
        "field_study_id": "fs1", "hypothesis_id": "h1", "text": "La participation progresse quand on co-construit",
        "reason": "Ateliers"}));
    log.study(
        "hypothesis_abandoned",
        "2026-01-04T14:00:00+01:00",
        "learner:l1",
        json!({
        "field_study_id": "fs1", "hypothesis_id": "h2", "reason": "Non confirmée"}),
    );
    log.study("intervention_logged", "2025-11-20T18:00:00+01:00", "learner:l1", json!({
        "field_study_id": "fs1", "intervention_id": "i1", "kind": "entretien", "summary": "Compte rendu", "participants": 6}));
    log.study("members_changed", "2026-01-21T09:00:00+01:00", "staff:coordinator", json!({
        "field_study_id": "fs1", "join": [], "leave": ["l4"], "reason": "Retrait", "members": ["l1", "l2", "l3"]}));
    log.study(
        "production_submitted",
        "2026-05-12T12:00:00+02:00",
        "learner:l1",
        json!({
        "field_study_id": "fs1", "version": 1, "title": "Fabriquer du commun", "pages": 65}),
    );
    log.study(
        "production_submitted",
        "2026-05-20T12:00:00+02:00",
        "learner:l1",
        json!({
        "field_study_id": "fs1", "version": 2, "title": "Fabriquer du commun", "pages": 70}),
    );
    let jury = json!([{"name": "Directrice", "role": "professional"}, {"name": "Responsable", "role": "training_centre"}]);
    log.study("defence_scheduled", "2026-05-24T12:00:00+02:00", "staff:coordinator", json!({
        "field_study_id": "fs1", "defence_id": "d1", "at": "2026-06-11T09:00:00+02:00", "jury": jury}));
    log.study("defence_passed", "2026-06-11T10:30:00+02:00", "jury:president", json!({
        "field_study_id": "fs1", "defence_id": "d1", "learner_id": "l1", "remarks": "Convaincante"}));
    log.study("defence_deferred", "2026-06-11T10:30:00+02:00", "jury:president", json!({
        "field_study_id": "fs1", "defence_id": "d1", "learner_id": "l2", "remarks": "Écrit à reprendre"}));
    log.study(
        "defence_failed",
        "2026-06-11T10:30:00+02:00",
        "jury:president",
        json!({
        "field_study_id": "fs1", "defence_id": "d1", "learner_id": "l3", "remarks": "Insuffisant"}),
    );
    log.study("defence_scheduled", "2026-06-13T12:00:00+02:00", "staff:coordinator", json!({
        "field_study_id": "fs1", "defence_id": "d2", "at": "2026-06-25T14:00:00+02:00", "jury": jury}));
    log.cohort(
        "certificate_awarded",
        "2026-06-26T10:00:00+02:00",
        json!({
        "cohort_id": "c1", "learner_id": "l1"}),
    );
    log
}
