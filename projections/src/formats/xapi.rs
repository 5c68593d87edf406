//! A field study's evaluation feed as xAPI 1.0.3 statements
//! (<https://github.com/adlnet/xAPI-Spec/blob/master/xAPI-Data.md>, "Part Two: Experience API
//! Data"), for a learning record store (LRS).
//!
//! One statement per evaluative event of the field study's stream, in stream order:
//!
//! | event | verb | object (Activity) | result |
//! |---|---|---|---|
//! | `commission_negotiated` | `negotiated` | commission version 1 | |
//! | `commission_renegotiated` | `renegotiated` | commission version n | `response` = reason |
//! | `commission_agreed` | `agreed` | commission version n | |
//! | `hypothesis_stated` | `stated` | the hypothesis | `response` = text |
//! | `hypothesis_revised` | `revised` | the hypothesis | `response` = new text |
//! | `hypothesis_abandoned` | `abandoned` | the hypothesis | `response` = reason |
//! | `production_submitted` | `submitted` | production version n | `completion`, pages |
//! | `defence_scheduled` | `scheduled` | the defence (ADL `assessment`) | |
//! | `defence_passed` | ADL `passed` | the defence | `success`, `completion`, `response` = remarks |
//! | `defence_deferred` | `deferred` | the defence | `completion: false`, `response` = remarks |
//! | `defence_failed` | ADL `failed` | the defence | `success: false`, `completion`, `response` = remarks |
//! | `defence_result_rectified` | as the new result's outcome | the defence | as that outcome, `response` = reason |
//!
//! Not evaluative, so not exported: `field_study_formed`, `members_changed`,
//! `field_study_split`, `jury_member_recused`, `jury_member_appointed`,
//! `intervention_logged`, `reflexive_note_recorded`.
//!
//! Every statement (2.4, "Statement Properties") has: `id` = UUID v5 of the event id (the same
//! event always gives the same statement, so re-sending is harmless); `actor` = an Agent
//! identified by an `account` (2.4.2.4) whose `name` is the event's `role:name` actor, never a
//! person's name (for a defence outcome, the learner `learner:<id>`, the jury being
//! `context.instructor`); `verb` with an absolute IRI and a `display` language map; `object` =
//! an Activity with an absolute IRI id and a definition; `context` with `registration` (UUID
//! v5 of the field study), `contextActivities.parent` = the field study, `grouping` = the
//! cohort, `team` = the members at that point (an anonymous Group of accounts), `platform`,
//! `language`; `timestamp` = `occurred_at`; `stored` = `recorded_at` (both RFC 3339 UTC,
//! milliseconds); `authority` = the account `system:fieldtrail` at the publisher (fieldtrail asserts what its journal holds).
//!
//! Corrections. A new version of something supersedes the previous version; the statement of
//! the previous version is then voided (2.3.2, "Voided"): a voiding statement follows the
//! correcting one, with the ADL verb `voided` and a `StatementRef` to the statement corrected,
//! and no `result` or `context`. Corrections are:
//! `commission_renegotiated` (voids the statement of the previous version's negotiation),
//! `hypothesis_revised` (voids the statement that gave the hypothesis its previous text),
//! `production_submitted` version n > 1 (voids the statement of version n-1),
//! `defence_result_rectified` (voids the statement of the learner's result at that defence
//! it replaces: the outcome's, or an earlier rectification's). Agreements, abandonments,
//! defence scheduling and outcomes are not corrections: each stays true (a deferral followed
//! by a pass is two attempts, not an error); a rectified result is one (the jury erred).

use crate::formats::{derived_uuid, Publisher};
use crate::RecordedEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use fieldtrail_domain::command::DefenceResult;
use fieldtrail_domain::{AnyEvent, FieldStudyEvent};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The xAPI version the statements follow.
pub const XAPI_VERSION: &str = "1.0.3";

/// fieldtrail's own xAPI vocabulary (verbs, activity types, extensions): IRIs under this base.
/// The domain is the reserved `.example` (RFC 2606) until a permanent one is registered; the
/// vocabulary does not follow a deployment's base URL so that statements from several
/// deployments stay comparable.
pub const VOCABULARY: &str = "https://fieldtrail.example/xapi/";

/// The ADL verb that voids a statement (xAPI 1.0.3, 2.3.2).
pub const VERB_VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";
/// The ADL verb `passed`.
pub const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
/// The ADL verb `failed`.
pub const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
/// The ADL activity type of an assessment (the defence).
pub const ACTIVITY_ASSESSMENT: &str = "http://adlnet.gov/expapi/activities/assessment";

/// Media type of the output (a JSON array of statements, as POSTed to an LRS).
pub const MEDIA_TYPE: &str = "application/json";

fn vocabulary(path: &str) -> String {
    format!("{VOCABULARY}{path}")
}

/// An xAPI timestamp: RFC 3339 in UTC, milliseconds (an LRS keeps no more, 2.4.7).
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The id of the statement made from the event `event_id`: UUID v5 (RFC 9562) of
/// `xapi/statement/<event id>`.
pub fn statement_id(event_id: &str) -> String {
    derived_uuid(&format!("xapi/statement/{event_id}")).to_string()
}

/// The id of the statement voiding the statement corrected by the event `event_id`.
pub fn voiding_id(event_id: &str) -> String {
    derived_uuid(&format!("xapi/voiding/{event_id}")).to_string()
}

/// The `registration` of every statement of a field study: UUID v5 of
/// `xapi/registration/<field study id>`.
pub fn registration(field_study_id: &str) -> String {
    derived_uuid(&format!("xapi/registration/{field_study_id}")).to_string()
}

fn agent(publisher: &Publisher, account_name: &str) -> Value {
    json!({"objectType": "Agent",
           "account": {"homePage": publisher.base_url, "name": account_name}})
}

fn make_verb(id: String, display: &str) -> Value {
    json!({"id": id, "display": {"en-US": display}})
}

fn own_verb(name: &str) -> Value {
    make_verb(vocabulary(&format!("verbs/{name}")), name)
}

fn activity(id: String, activity_type: String, name: String, description: Option<&str>) -> Value {
    let mut definition = json!({"type": activity_type, "name": {"en-US": name}});
    if let (Value::Object(map), Some(d)) = (&mut definition, description) {
        map.insert("description".to_owned(), json!({"fr": d}));
    }
    json!({"objectType": "Activity", "id": id, "definition": definition})
}

/// The verb and `result` of a defence outcome; `response` is the jury's remarks (or, for a
/// rectified result, the reason).
fn outcome(result: DefenceResult, response: &str) -> (Value, Value) {
    match result {
        DefenceResult::Passed => (
            make_verb(VERB_PASSED.to_owned(), "passed"),
            json!({"success": true, "completion": true, "response": response}),
        ),
        DefenceResult::Failed => (
            make_verb(VERB_FAILED.to_owned(), "failed"),
            json!({"success": false, "completion": true, "response": response}),
        ),
        DefenceResult::Deferred => (
            own_verb("deferred"),
            json!({"completion": false, "response": response}),
        ),
    }
}

/// What the fold keeps between events.
#[derive(Default)]
struct Trail {
    cohort_id: Option<String>,
    organisation: Option<String>,
    members: Vec<String>,
    /// Statement id of each commission version's negotiation.
    commission: BTreeMap<u32, String>,
    /// Statement id that gave each hypothesis its current text.
    hypotheses: BTreeMap<String, String>,
    /// Statement id of each production version's submission.
    productions: BTreeMap<u32, String>,
    /// Statement id of the result in force of each (defence, learner).
    results: BTreeMap<(String, String), String>,
}

/// The statements of a field study's stream (events in stream order), each correction
/// followed by its voiding statement (see the module documentation). Events of other
/// streams, and events that are not evaluative, give nothing.
pub fn statements(field_study_events: &[RecordedEvent], publisher: &Publisher) -> Vec<Value> {
    let mut trail = Trail::default();
    let mut out = Vec::new();
    let authority = agent(publisher, "system:fieldtrail");
    for e in field_study_events {
        let AnyEvent::FieldStudy(event) = &e.event else {
            continue;
        };
        use FieldStudyEvent as E;
        let fs = e.stream_id.as_str();
        let study = |path: &str| publisher.iri(&format!("field-studies/{fs}/{path}"));
        let commission = |version: u32, brief: Option<&str>| {
            activity(
                study(&format!("commission/versions/{version}")),
                vocabulary("activity-types/commission"),
                format!("Commission of field study {fs}, version {version}"),
                brief,
            )
        };
        let hypothesis = |id: &str, text: Option<&str>| {
            activity(
                study(&format!("hypotheses/{id}")),
                vocabulary("activity-types/hypothesis"),
                format!("Hypothesis {id} of field study {fs}"),
                text,
            )
        };
        let defence = |id: &str| {
            activity(
                study(&format!("defences/{id}")),
                ACTIVITY_ASSESSMENT.to_owned(),
                format!("Defence {id} of field study {fs}"),
                None,
            )
        };
        let response = |text: &str| json!({"response": text});
        // (actor, verb, object, result, extra context, corrected statement)
        let mut actor = e.actor.clone();
        let mut instructor: Option<String> = None;
        let mut context_extensions = Map::new();
        let (verb, object, result, corrects): (Value, Value, Option<Value>, Option<String>) =
            match event {
                E::FieldStudyFormed {
                    cohort_id,
                    members,
                    organisation,
                    ..
                } => {
                    trail.cohort_id = Some(cohort_id.to_string());
                    trail.organisation = Some(organisation.name.clone());
                    trail.members = members.iter().map(ToString::to_string).collect();
                    continue;
                }
                E::MembersChanged { members, .. }
                | E::FieldStudySplit {
                    remaining: members, ..
                } => {
                    trail.members = members.iter().map(ToString::to_string).collect();
                    continue;
                }
                E::InterventionLogged { .. }
                | E::ReflexiveNoteRecorded { .. }
                | E::JuryMemberRecused { .. }
                | E::JuryMemberAppointed { .. }
                | E::DefenceCancelled { .. } => continue,
                E::CommissionNegotiated { version, brief, .. } => {
                    trail.commission.insert(*version, statement_id(&e.event_id));
                    (
                        own_verb("negotiated"),
                        commission(*version, Some(brief)),
                        None,
                        None,
                    )
                }
                E::CommissionRenegotiated {
                    version,
                    brief,
                    reason,
                    ..
                } => {
                    let corrects = version
                        .checked_sub(1)
                        .and_then(|previous| trail.commission.get(&previous).cloned());
                    trail.commission.insert(*version, statement_id(&e.event_id));
                    (
                        own_verb("renegotiated"),
                        commission(*version, Some(brief)),
                        Some(response(reason.as_str())),
                        corrects,
                    )
                }
                E::CommissionAgreed { version, .. } => {
                    (own_verb("agreed"), commission(*version, None), None, None)
                }
                E::HypothesisStated {
                    hypothesis_id,
                    text,
                    ..
                } => {
                    trail
                        .hypotheses
                        .insert(hypothesis_id.to_string(), statement_id(&e.event_id));
                    (
                        own_verb("stated"),
                        hypothesis(hypothesis_id.as_str(), None),
                        Some(response(text)),
                        None,
                    )
                }
                E::HypothesisRevised {
                    hypothesis_id,
                    text,
                    reason,
                    ..
                } => {
                    let corrects = trail
                        .hypotheses
                        .insert(hypothesis_id.to_string(), statement_id(&e.event_id));
                    context_extensions
                        .insert(vocabulary("extensions/reason"), json!(reason.as_str()));
                    (
                        own_verb("revised"),
                        hypothesis(hypothesis_id.as_str(), None),
                        Some(response(text)),
                        corrects,
                    )
                }
                E::HypothesisAbandoned {
                    hypothesis_id,
                    reason,
                    ..
                } => (
                    own_verb("abandoned"),
                    hypothesis(hypothesis_id.as_str(), None),
                    Some(response(reason.as_str())),
                    None,
                ),
                E::ProductionSubmitted {
                    version,
                    title,
                    pages,
                    ..
                } => {
                    let corrects = version
                        .checked_sub(1)
                        .and_then(|previous| trail.productions.get(&previous).cloned());
                    trail
                        .productions
                        .insert(*version, statement_id(&e.event_id));
                    let mut object = activity(
                        study(&format!("productions/versions/{version}")),
                        vocabulary("activity-types/written-production"),
                        format!("Written production of field study {fs}, version {version}"),
                        None,
                    );
                    object["definition"]["name"]["fr"] = json!(title);
                    (
                        own_verb("submitted"),
                        object,
                        Some(json!({"completion": true,
                                    "extensions": {vocabulary("extensions/pages"): pages}})),
                        corrects,
                    )
                }
                E::DefenceScheduled {
                    defence_id,
                    at,
                    jury,
                    ..
                } => {
                    context_extensions.insert(
                        vocabulary("extensions/scheduled-at"),
                        json!(timestamp(&at.with_timezone(&Utc))),
                    );
                    context_extensions
                        .insert(vocabulary("extensions/jury-size"), json!(jury.len()));
                    (
                        own_verb("scheduled"),
                        defence(defence_id.as_str()),
                        None,
                        None,
                    )
                }
                E::DefencePassed {
                    defence_id,
                    learner_id,
                    remarks,
                    ..
                }
                | E::DefenceDeferred {
                    defence_id,
                    learner_id,
                    remarks,
                    ..
                }
                | E::DefenceFailed {
                    defence_id,
                    learner_id,
                    remarks,
                    ..
                } => {
                    instructor = Some(std::mem::replace(
                        &mut actor,
                        format!("learner:{learner_id}"),
                    ));
                    trail.results.insert(
                        (defence_id.to_string(), learner_id.to_string()),
                        statement_id(&e.event_id),
                    );
                    let result = event
                        .defence_result()
                        .map_or(DefenceResult::Deferred, |(_, _, r)| r);
                    let (verb, result) = outcome(result, remarks);
                    (verb, defence(defence_id.as_str()), Some(result), None)
                }
                E::DefenceResultRectified {
                    defence_id,
                    learner_id,
                    result,
                    reason,
                    ..
                } => {
                    instructor = Some(std::mem::replace(
                        &mut actor,
                        format!("learner:{learner_id}"),
                    ));
                    let corrects = trail.results.insert(
                        (defence_id.to_string(), learner_id.to_string()),
                        statement_id(&e.event_id),
                    );
                    context_extensions
                        .insert(vocabulary("extensions/reason"), json!(reason.as_str()));
                    let (verb, result) = outcome(*result, reason.as_str());
                    (verb, defence(defence_id.as_str()), Some(result), corrects)
                }
            };

        let mut context_activities = Map::new();
        let mut parent = activity(
            publisher.iri(&format!("field-studies/{fs}")),
            vocabulary("activity-types/field-study"),
            format!("Field study {fs}"),
            None,
        );
        if let Some(organisation) = &trail.organisation {
            parent["definition"]["description"] = json!({"fr": organisation});
        }
        context_activities.insert("parent".to_owned(), json!([parent]));
        if let Some(cohort_id) = &trail.cohort_id {
            context_activities.insert(
                "grouping".to_owned(),
                json!([activity(
                    publisher.iri(&format!("cohorts/{cohort_id}")),
                    vocabulary("activity-types/cohort"),
                    format!("Cohort {cohort_id}"),
                    None,
                )]),
            );
        }
        let mut context = json!({
            "registration": registration(fs),
            "contextActivities": context_activities,
            "platform": "fieldtrail",
            "language": "fr",
        });
        if let Value::Object(map) = &mut context {
            if !trail.members.is_empty() {
                let members: Vec<Value> = trail
                    .members
                    .iter()
                    .map(|m| agent(publisher, &format!("learner:{m}")))
                    .collect();
                map.insert(
                    "team".to_owned(),
                    json!({"objectType": "Group", "member": members}),
                );
            }
            if let Some(instructor) = &instructor {
                map.insert("instructor".to_owned(), agent(publisher, instructor));
            }
            if !context_extensions.is_empty() {
                map.insert("extensions".to_owned(), Value::Object(context_extensions));
            }
        }
        let mut statement = json!({
            "id": statement_id(&e.event_id),
            "actor": agent(publisher, &actor),
            "verb": verb,
            "object": object,
            "context": context,
            "timestamp": timestamp(&e.occurred_at),
            "stored": timestamp(&e.recorded_at),
            "authority": authority,
        });
        if let (Value::Object(map), Some(result)) = (&mut statement, result) {
            map.insert("result".to_owned(), result);
        }
        out.push(statement);
        if let Some(corrected) = corrects {
            out.push(json!({
                "id": voiding_id(&e.event_id),
                "actor": agent(publisher, &e.actor),
                "verb": make_verb(VERB_VOIDED.to_owned(), "voided"),
                "object": {"objectType": "StatementRef", "id": corrected},
                "timestamp": timestamp(&e.occurred_at),
                "stored": timestamp(&e.recorded_at),
                "authority": authority,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testlog::scenario;

    fn feed() -> (Vec<Value>, Vec<RecordedEvent>) {
        let log = scenario();
        (
            statements(&log.field_study, &Publisher::default()),
            log.field_study,
        )
    }

    fn verb_of(s: &Value) -> &str {
        s["verb"]["id"].as_str().unwrap()
    }

    #[test]
    fn each_evaluative_event_gives_one_statement_and_each_correction_a_voiding() {
        let (feed, events) = feed();
        // 19 events: formed, members changed, 1 intervention are not evaluative (16 left);
        // corrections: 1 renegotiation, 2 revisions, 1 second production.
        assert_eq!(events.len(), 19);
        assert_eq!(feed.len(), 16 + 4);
        let voiding: Vec<&Value> = feed.iter().filter(|s| verb_of(s) == VERB_VOIDED).collect();
        assert_eq!(voiding.len(), 4);
        let ids: Vec<&str> = feed.iter().map(|s| s["id"].as_str().unwrap()).collect();
        for v in &voiding {
            let target = v["object"]["id"].as_str().unwrap();
            let position = ids
                .iter()
                .position(|id| *id == target)
                .expect("voids a statement of the feed");
            let me = ids
                .iter()
                .position(|id| *id == v["id"].as_str().unwrap())
                .unwrap();
            assert!(position < me, "voids an earlier statement");
            assert_ne!(verb_of(&feed[position]), VERB_VOIDED);
            assert!(v.get("result").is_none() && v.get("context").is_none());
        }
        // The second revision of h1 voids the first revision, not the statement.
        let revisions: Vec<&Value> = feed
            .iter()
            .filter(|s| verb_of(s).ends_with("/verbs/revised"))
            .collect();
        assert_eq!(revisions.len(), 2);
        let voids_of = |s: &Value| {
            let i = ids
                .iter()
                .position(|id| *id == s["id"].as_str().unwrap())
                .unwrap();
            feed[i + 1]["object"]["id"].as_str().unwrap().to_owned()
        };
        assert_eq!(voids_of(revisions[1]), revisions[0]["id"].as_str().unwrap());
        let stated_h1 = feed
            .iter()
            .find(|s| verb_of(s).ends_with("/verbs/stated"))
            .unwrap();
        assert_eq!(voids_of(revisions[0]), stated_h1["id"].as_str().unwrap());
        // Same events, same statements (ids included).
        assert_eq!(feed, self::feed().0);
    }

    #[test]
    fn a_defence_outcome_is_the_learners_with_the_jury_as_instructor() {
        let (feed, _) = feed();
        let deferred = feed
            .iter()
            .find(|s| verb_of(s).ends_with("/verbs/deferred"))
            .unwrap();
        assert_eq!(deferred["actor"]["account"]["name"], "learner:l2");
        assert_eq!(
            deferred["context"]["instructor"]["account"]["name"],
            "jury:president"
        );
        assert_eq!(
            deferred["result"],
            json!({"completion": false, "response": "Écrit à reprendre"})
        );
        let passed = feed.iter().find(|s| verb_of(s) == VERB_PASSED).unwrap();
        assert_eq!(passed["result"]["success"], true);
        assert_eq!(passed["object"]["definition"]["type"], ACTIVITY_ASSESSMENT);
        assert_eq!(
            passed["context"]["contextActivities"]["grouping"][0]["id"],
            "https://fieldtrail.example/cohorts/c1"
        );
        assert_eq!(passed["timestamp"], "2026-06-11T08:30:00.000Z");
        assert_eq!(passed["stored"], "2026-06-11T08:31:30.000Z");
        // After members_changed, l4 is no longer in the team.
        let team: Vec<&str> = passed["context"]["team"]["member"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["account"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(team, ["learner:l1", "learner:l2", "learner:l3"]);
        assert!(feed.iter().all(|s| s["actor"].get("name").is_none()));
    }

    #[test]
    fn no_input_makes_it_panic() {
        assert!(statements(&[], &Publisher::default()).is_empty());
        // A renegotiation or revision without its original voids nothing.
        let mut log = scenario();
        log.field_study.retain(|e| {
            !matches!(
                e.event_type.as_str(),
                "commission_negotiated" | "hypothesis_stated" | "field_study_formed"
            )
        });
        let feed = statements(&log.field_study, &Publisher::default());
        assert_eq!(feed.iter().filter(|s| verb_of(s) == VERB_VOIDED).count(), 2);
    }
}
