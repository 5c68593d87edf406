//! The exports of cohort-2025 checked by parsers and validators nobody here wrote: the
//! iCalendar timetable with the `icalendar` crate's RFC 5545 parser, every learner's CLR 2.0
//! record with the `jsonschema` crate against the 1EdTech schema kept in
//! `tests/data/schemas`, the xAPI feeds against the xAPI 1.0.3 statement rules; then the same
//! exports through the CLI and the HTTP routes.

use crate::helpers::{TestEnv, COHORT};
use chrono::{DateTime, NaiveDateTime, Utc};
use fieldtrail::export;
use fieldtrail_projections::formats::{xapi, Publisher};
use icalendar::{CalendarDateTime, Component as _, DatePerhapsTime, EventStatus};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const COHORT_ID: &str = "cohort-2025";
const CLR_SCHEMA: &str = include_str!("../data/schemas/clr_v2p0_clrcredential_schema.subset.json");

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------- iCalendar

#[tokio::test]
async fn the_cohort_2025_calendar_parses_with_the_icalendar_crate_and_says_what_the_timetable_says()
{
    let env = TestEnv::new("formats_ics").await;
    env.import(COHORT).await;
    let text = export::calendar(&env.journal, COHORT_ID, None)
        .await
        .unwrap();
    let timetable = env.document("timetable", COHORT_ID).await.unwrap();
    let sessions = timetable["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 56);

    // Lexical rules (RFC 5545 3.1): CRLF only, no physical line over 75 octets.
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    for line in text.split_terminator("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
    }

    // The strict component parser: one VCALENDAR holding a VTIMEZONE and 56 VEVENTs.
    let unfolded = icalendar::parser::unfold(&text);
    let parsed = icalendar::parser::read_calendar(&unfolded).expect("RFC 5545 parser");
    let names: Vec<&str> = parsed.components.iter().map(|c| c.name.as_ref()).collect();
    assert_eq!(names.iter().filter(|n| **n == "VEVENT").count(), 56);
    assert_eq!(names.iter().filter(|n| **n == "VTIMEZONE").count(), 1);

    // The typed calendar.
    let calendar: icalendar::Calendar = text.parse().expect("icalendar parses the export");
    let events: Vec<&icalendar::Event> = calendar
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .collect();
    assert_eq!(events.len(), sessions.len(), "one VEVENT per session");
    let by_uid: BTreeMap<&str, &icalendar::Event> = events
        .iter()
        .map(|e| (e.get_uid().expect("UID"), *e))
        .collect();
    assert_eq!(by_uid.len(), 56, "UIDs are unique");

    let mut cancelled = 0;
    for session in sessions {
        let id = session["session_id"].as_str().unwrap();
        let event = by_uid
            .get(format!("{id}@{COHORT_ID}.fieldtrail").as_str())
            .unwrap_or_else(|| panic!("no VEVENT for {id}"));
        let is_cancelled = session["status"] == "cancelled";
        let changes =
            session["previous_slots"].as_array().unwrap().len() as u32 + u32::from(is_cancelled);
        assert_eq!(event.get_sequence(), Some(changes), "SEQUENCE of {id}");
        assert_eq!(
            event.get_status() == Some(EventStatus::Cancelled),
            is_cancelled,
            "STATUS of {id}"
        );
        cancelled += u32::from(is_cancelled);
        let Some(DatePerhapsTime::DateTime(start)) = event.get_start() else {
            panic!("DTSTART of {id} is not a date-time");
        };
        let CalendarDateTime::WithTimezone { date_time, tzid } = &start else {
            panic!("DTSTART of {id} has no TZID: {start:?}");
        };
        assert_eq!(tzid, "Europe/Paris");
        let local = session["starts_at_local"].as_str().unwrap();
        assert_eq!(
            *date_time,
            NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S").unwrap(),
            "local start of {id}"
        );
        assert_eq!(
            start.try_into_utc(),
            Some(utc(session["starts_at"].as_str().unwrap())),
            "instant of {id}"
        );
        let Some(DatePerhapsTime::DateTime(end)) = event.get_end() else {
            panic!("DTEND of {id}");
        };
        assert_eq!(
            end.try_into_utc(),
            Some(utc(session["ends_at"].as_str().unwrap()))
        );
        assert!(event.get_summary().is_some_and(|s| !s.is_empty()));
        assert!(event.get_last_modified().is_some());
        assert!(event.get_timestamp().is_some(), "DTSTAMP of {id}");
    }
    assert_eq!(cancelled, 1);

    // s25-042 was cancelled.
    let s42 = by_uid["s25-042@cohort-2025.fieldtrail"];
    assert_eq!(s42.get_status(), Some(EventStatus::Cancelled));
    assert_eq!(s42.get_sequence(), Some(1));

    // s25-008: 2025-10-20 09:00 (summer time), moved to 2025-10-28 09:00+01:00, then to
    // 2025-11-13: two changes, still 09:00 Paris wall time.
    let s8 = by_uid["s25-008@cohort-2025.fieldtrail"];
    assert_eq!(s8.get_sequence(), Some(2));
    assert_eq!(
        s8.get_start(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone {
            date_time: NaiveDateTime::parse_from_str("2025-11-13T09:00:00", "%Y-%m-%dT%H:%M:%S")
                .unwrap(),
            tzid: "Europe/Paris".to_owned(),
        }))
    );
    assert!(s8
        .get_summary()
        .unwrap()
        .contains("Recherche-action, science en action"));
    // LAST-MODIFIED: when the journal recorded the second reschedule.
    let journal = env.journal.clone();
    let last_reschedule = journal
        .stream("cohort", COHORT_ID, 0)
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.event_type == "session_rescheduled" && e.payload["session_id"] == "s25-008")
        .unwrap();
    assert_eq!(
        s8.get_last_modified().unwrap().timestamp(),
        last_reschedule.recorded_at.timestamp()
    );

    // A learner's calendar: the cohort's sessions plus the defences they are due at.
    for (learner, defences) in [
        ("l25-05", vec!["fs25-b-d1", "fs25-b-d2"]),
        ("l25-06", vec!["fs25-b-d1"]),
        ("l25-08", vec![]),
    ] {
        let text = export::calendar(&env.journal, COHORT_ID, Some(learner))
            .await
            .unwrap();
        let calendar: icalendar::Calendar = text.parse().unwrap();
        let uids: Vec<&str> = calendar
            .components
            .iter()
            .filter_map(|c| c.as_event())
            .filter_map(|e| e.get_uid())
            .filter(|uid| uid.contains("@fs25-"))
            .collect();
        let expected: Vec<String> = defences
            .iter()
            .map(|d| format!("{d}@fs25-b.fieldtrail"))
            .collect();
        assert_eq!(uids, expected, "{learner}");
    }
    assert!(matches!(
        export::calendar(&env.journal, "cohort-1999", None).await,
        Err(export::ExportError::NotFound(_))
    ));
    assert!(matches!(
        export::calendar(&env.journal, COHORT_ID, Some("l99-99")).await,
        Err(export::ExportError::NotFound(_))
    ));
    env.cleanup().await;
}

// ---------------------------------------------------------------- CLR 2.0

fn clr_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(CLR_SCHEMA).expect("schema is JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft201909)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the shipped schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The credential of the achievement whose id ends with `suffix`.
fn credential<'a>(clr: &'a Value, suffix: &str) -> &'a Value {
    clr["credentialSubject"]["verifiableCredential"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["credentialSubject"]["achievement"]["id"]
                .as_str()
                .is_some_and(|id| id.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no credential for {suffix}"))
}

/// The results of a credential by the fragment of their result description.
fn results(credential: &Value) -> Vec<(String, String)> {
    credential["credentialSubject"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let what = r["resultDescription"]
                .as_str()
                .unwrap()
                .rsplit('#')
                .next()
                .unwrap()
                .to_owned();
            let value = r["status"]
                .as_str()
                .or(r["value"].as_str())
                .unwrap()
                .to_owned();
            (what, value)
        })
        .collect()
}

crate::both_backends!(
    every_cohort_2025_clr_validates_against_the_1edtech_schema_and_carries_the_transcript,
    every_cohort_2025_clr_validates_against_the_1edtech_schema_and_carries_the_transcript_on
);

async fn every_cohort_2025_clr_validates_against_the_1edtech_schema_and_carries_the_transcript_on(
    env: TestEnv,
) {
    env.import(COHORT).await;
    let validator = clr_validator();
    let publisher = Publisher::default();
    let learners: Vec<String> = (1..=11).map(|n| format!("l25-{n:02}")).collect();
    let mut statuses = BTreeMap::new();
    for learner in &learners {
        let clr = export::transcript_clr(&env.journal, &publisher, COHORT_ID, learner)
            .await
            .unwrap();
        let errors = schema_errors(&validator, &clr);
        assert!(errors.is_empty(), "{learner}: {errors:#?}");
        assert_eq!(
            clr["@context"],
            json!([
                "https://www.w3.org/ns/credentials/v2",
                "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json",
                "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
            ])
        );
        assert_eq!(
            clr["type"],
            json!(["VerifiableCredential", "ClrCredential"])
        );
        assert!(
            clr.get("proof").is_none(),
            "no embedded proof: the VC-JWT secures it"
        );
        let subject = &clr["credentialSubject"];
        let types: Vec<&str> = subject["achievement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["achievementType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "Certificate",
                "Course",
                "Course",
                "Course",
                "Fieldwork",
                "Assessment"
            ]
        );
        for c in subject["verifiableCredential"].as_array().unwrap() {
            assert_eq!(
                c["type"],
                json!(["VerifiableCredential", "AchievementCredential"])
            );
        }
        // Parent and child both ways between the certificate and the five others.
        let associations = subject["association"].as_array().unwrap();
        let certificate_id = subject["achievement"][0]["id"].as_str().unwrap();
        for a in &subject["achievement"].as_array().unwrap()[1..] {
            let id = a["id"].as_str().unwrap();
            assert!(associations.contains(&json!({"type": "Association",
                "associationType": "isParentOf", "sourceId": certificate_id, "targetId": id})));
            assert!(associations.contains(&json!({"type": "Association",
                "associationType": "isChildOf", "sourceId": id, "targetId": certificate_id})));
        }

        // The transcript's outcomes, number for number.
        let transcript = env
            .document("transcript", &format!("{COHORT_ID}/{learner}"))
            .await
            .unwrap();
        for module in transcript["modules"].as_array().unwrap() {
            let id = module["module_id"].as_str().unwrap();
            let got = results(credential(&clr, &format!("/modules/{id}")));
            let value = |what: &str| {
                got.iter()
                    .find(|(w, _)| w == what)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            for (what, field) in [
                ("attended-half-days", "attended_half_days"),
                ("excused-half-days", "excused_half_days"),
                ("absent-half-days", "absent_half_days"),
            ] {
                assert_eq!(
                    value(what),
                    module[field].to_string(),
                    "{learner} {id} {what}"
                );
            }
        }
        let defence = results(credential(&clr, "/defence"));
        let outcomes: Vec<&str> = defence
            .iter()
            .filter(|(w, _)| w == "outcome")
            .map(|(_, v)| v.as_str())
            .collect();
        let expected: Vec<&str> = transcript["defences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["result"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, expected, "{learner}");
        let certificate = credential(&clr, "/certificate");
        assert_eq!(
            certificate.get("awardedDate").is_some(),
            !transcript["certificate_awarded_on"].is_null()
        );
        let deis = results(certificate)
            .into_iter()
            .find(|(w, _)| w == "deis-credit")
            .unwrap()
            .1;
        assert_eq!(deis, transcript["deis_credit"].to_string());
        statuses.insert(
            learner.clone(),
            (results(certificate)[0].1.clone(), defence[0].1.clone()),
        );
    }
    let status = |l: &str| statuses[l].clone();
    assert_eq!(status("l25-01"), ("Completed".into(), "Completed".into()));
    assert_eq!(status("l25-05"), ("Completed".into(), "Completed".into()));
    assert_eq!(status("l25-08"), ("Withdrew".into(), "Withdrew".into()));
    assert_eq!(status("l25-11"), ("Failed".into(), "Failed".into()));
    // l25-05 was deferred, then passed: both outcomes, in order.
    let l5 = export::transcript_clr(&env.journal, &publisher, COHORT_ID, "l25-05")
        .await
        .unwrap();
    let outcomes: Vec<String> = results(credential(&l5, "/defence"))
        .into_iter()
        .skip(1)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(outcomes, ["deferred", "passed"]);
    // l25-08 withdrew: the modules not fully followed are "Withdrew".
    let l8 = export::transcript_clr(&env.journal, &publisher, COHORT_ID, "l25-08")
        .await
        .unwrap();
    assert_eq!(results(credential(&l8, "/modules/m1"))[0].1, "Completed");
    assert_eq!(results(credential(&l8, "/modules/m2"))[0].1, "Withdrew");

    // The validator is not vacuous: broken records are refused.
    let mut broken = l5.clone();
    broken.as_object_mut().unwrap().remove("validFrom");
    assert!(!schema_errors(&validator, &broken).is_empty());
    let mut broken = l5.clone();
    broken["credentialSubject"]["achievement"][0]["achievementType"] = json!("Diploma2");
    assert!(!schema_errors(&validator, &broken).is_empty());
    let mut broken = l5.clone();
    broken["credentialSubject"]["verifiableCredential"][0]["credentialSubject"]["result"][0]
        ["status"] = json!("Deferred");
    assert!(!schema_errors(&validator, &broken).is_empty());
    let mut broken = l5.clone();
    broken["credentialSubject"]["association"][0]["associationType"] = json!("isMotherOf");
    assert!(!schema_errors(&validator, &broken).is_empty());
    let mut broken = l5.clone();
    broken["validFrom"] = json!("26 June 2026");
    assert!(!schema_errors(&validator, &broken).is_empty());

    assert!(matches!(
        export::transcript_clr(&env.journal, &publisher, COHORT_ID, "l99-99").await,
        Err(export::ExportError::NotFound(_))
    ));
    assert!(matches!(
        export::transcript_clr(&env.journal, &publisher, "cohort-1999", "l25-01").await,
        Err(export::ExportError::NotFound(_))
    ));
    env.cleanup().await;
}

// ---------------------------------------------------------------- xAPI

/// An absolute IRI (RFC 3987): a scheme, `:`, something, no white space.
fn is_absolute_iri(value: &Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_irl(value: &Value) -> bool {
    is_absolute_iri(value)
        && value
            .as_str()
            .is_some_and(|s| s.starts_with("https://") || s.starts_with("http://"))
}

/// A UUID in the canonical form with an RFC 4122/9562 variant (xAPI 1.0.3, 4.1.1).
fn is_uuid(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 36
            && uuid::Uuid::parse_str(s)
                .is_ok_and(|u| u.get_variant() == uuid::Variant::RFC4122 && u.to_string() == s)
    })
}

fn check_language_map(value: &Value, what: &str) {
    let map = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not a language map"));
    assert!(!map.is_empty(), "{what}: empty language map");
    for (tag, text) in map {
        assert!(
            !tag.is_empty()
                && tag.split('-').all(|p| !p.is_empty()
                    && p.len() <= 8
                    && p.chars().all(|c| c.is_ascii_alphanumeric())),
            "{what}: {tag:?} is not a language tag"
        );
        assert!(text.is_string(), "{what}: {tag}");
    }
}

/// An Agent identified by exactly one inverse functional identifier, here an account (2.4.2.1,
/// 2.4.2.4); never a person's name.
fn check_agent(agent: &Value, what: &str) {
    assert_eq!(agent["objectType"], "Agent", "{what}");
    let ifis = ["mbox", "mbox_sha1sum", "openid", "account"]
        .iter()
        .filter(|k| agent.get(**k).is_some())
        .count();
    assert_eq!(ifis, 1, "{what}: exactly one IFI");
    assert!(is_irl(&agent["account"]["homePage"]), "{what}: homePage");
    assert!(
        agent["account"]["name"]
            .as_str()
            .is_some_and(|n| n.contains(':')),
        "{what}"
    );
    assert!(agent.get("name").is_none(), "{what}: no personal name");
}

fn check_activity(activity: &Value, what: &str) {
    if let Some(kind) = activity.get("objectType") {
        assert_eq!(kind, "Activity", "{what}");
    }
    assert!(
        is_absolute_iri(&activity["id"]),
        "{what}: id {}",
        activity["id"]
    );
    if let Some(definition) = activity.get("definition") {
        assert!(is_absolute_iri(&definition["type"]), "{what}: type");
        for map in ["name", "description"] {
            if let Some(m) = definition.get(map) {
                check_language_map(m, what);
            }
        }
    }
}

fn check_extensions(extensions: &Value, what: &str) {
    for key in extensions.as_object().unwrap().keys() {
        assert!(is_absolute_iri(&json!(key)), "{what}: extension key {key}");
    }
}

/// The xAPI 1.0.3 statement rules (Part Two, 2.2-2.4) that fieldtrail's feed must keep.
fn check_statements(statements: &[Value]) {
    let allowed = [
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
    ];
    let mut seen: BTreeMap<String, bool> = BTreeMap::new(); // id -> is a voiding statement
    for s in statements {
        let id = s["id"].as_str().unwrap_or_default().to_owned();
        let what = format!("statement {id}");
        for key in s.as_object().unwrap().keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{what}: unknown property {key}"
            );
        }
        assert!(is_uuid(&s["id"]), "{what}: id");
        assert!(!seen.contains_key(&id), "{what}: duplicate id");
        check_agent(&s["actor"], &what);
        check_agent(&s["authority"], &what);
        assert!(is_absolute_iri(&s["verb"]["id"]), "{what}: verb id");
        check_language_map(&s["verb"]["display"], &what);
        for time in ["timestamp", "stored"] {
            let text = s[time].as_str().unwrap_or_else(|| panic!("{what}: {time}"));
            assert!(
                DateTime::parse_from_rfc3339(text).is_ok(),
                "{what}: {time} {text}"
            );
        }
        let voiding = s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/voided";
        if voiding {
            // 2.3.2: the object is a StatementRef to the voided statement, which exists
            // (earlier in the feed) and is not itself a voiding statement.
            assert_eq!(s["object"]["objectType"], "StatementRef", "{what}");
            assert!(is_uuid(&s["object"]["id"]), "{what}");
            let target = s["object"]["id"].as_str().unwrap();
            assert_eq!(seen.get(target), Some(&false), "{what}: voids {target}");
            assert_eq!(s["object"].as_object().unwrap().len(), 2, "{what}");
            assert!(
                s.get("result").is_none() && s.get("context").is_none(),
                "{what}"
            );
        } else {
            check_activity(&s["object"], &what);
            assert!(s["object"].get("definition").is_some(), "{what}");
            if let Some(result) = s.get("result") {
                for flag in ["success", "completion"] {
                    if let Some(v) = result.get(flag) {
                        assert!(v.is_boolean(), "{what}: result.{flag}");
                    }
                }
                if let Some(v) = result.get("response") {
                    assert!(v.is_string(), "{what}: result.response");
                }
                if let Some(e) = result.get("extensions") {
                    check_extensions(e, &what);
                }
            }
            let context = &s["context"];
            assert!(is_uuid(&context["registration"]), "{what}: registration");
            for (kind, list) in context["contextActivities"].as_object().unwrap() {
                assert!(["parent", "grouping", "category", "other"].contains(&kind.as_str()));
                for a in list.as_array().unwrap() {
                    check_activity(a, &what);
                }
            }
            if let Some(instructor) = context.get("instructor") {
                check_agent(instructor, &what);
            }
            if let Some(team) = context.get("team") {
                assert_eq!(team["objectType"], "Group", "{what}");
                for member in team["member"].as_array().unwrap() {
                    check_agent(member, &what);
                }
            }
            if let Some(e) = context.get("extensions") {
                check_extensions(e, &what);
            }
        }
        seen.insert(id, voiding);
    }
}

crate::both_backends!(
    the_cohort_2025_xapi_feeds_keep_the_statement_rules_and_void_what_they_correct,
    the_cohort_2025_xapi_feeds_keep_the_statement_rules_and_void_what_they_correct_on
);

async fn the_cohort_2025_xapi_feeds_keep_the_statement_rules_and_void_what_they_correct_on(
    env: TestEnv,
) {
    env.import(COHORT).await;
    let publisher = Publisher::default();
    let journal = env.journal.clone();
    for field_study in ["fs25-a", "fs25-b", "fs25-c"] {
        let feed = export::statements(&env.journal, &publisher, field_study)
            .await
            .unwrap();
        let statements = feed.as_array().unwrap();
        check_statements(statements);

        // One statement per evaluative event, one voiding per correction, from the journal.
        let events = journal.stream("field_study", field_study, 0).await.unwrap();
        let evaluative: Vec<_> = events
            .iter()
            .filter(|e| {
                !matches!(
                    e.event_type.as_str(),
                    "field_study_formed"
                        | "members_changed"
                        | "intervention_logged"
                        | "reflexive_note_recorded"
                )
            })
            .collect();
        let corrections = events
            .iter()
            .filter(|e| match e.event_type.as_str() {
                "commission_renegotiated" | "hypothesis_revised" => true,
                "production_submitted" => e.payload["version"].as_u64() > Some(1),
                _ => false,
            })
            .count();
        let voiding: Vec<&Value> = statements
            .iter()
            .filter(|s| s["verb"]["id"] == xapi::VERB_VOIDED)
            .collect();
        assert_eq!(voiding.len(), corrections, "{field_study}");
        assert_eq!(
            statements.len(),
            evaluative.len() + corrections,
            "{field_study}"
        );

        // timestamp = occurred_at, stored = recorded_at, id derived from the event id.
        let by_id: BTreeMap<&str, &Value> = statements
            .iter()
            .map(|s| (s["id"].as_str().unwrap(), s))
            .collect();
        for e in &evaluative {
            let s = by_id[xapi::statement_id(&e.event_id.to_string()).as_str()];
            assert_eq!(
                utc(s["timestamp"].as_str().unwrap()).timestamp_millis(),
                e.occurred_at.timestamp_millis()
            );
            assert_eq!(
                utc(s["stored"].as_str().unwrap()).timestamp_millis(),
                e.recorded_at.timestamp_millis()
            );
            assert_eq!(
                s["context"]["contextActivities"]["parent"][0]["id"],
                format!("https://fieldtrail.example/field-studies/{field_study}")
            );
            assert_eq!(
                s["context"]["contextActivities"]["grouping"][0]["id"],
                "https://fieldtrail.example/cohorts/cohort-2025"
            );
        }
        // Same journal, same feed.
        assert_eq!(
            feed,
            export::statements(&env.journal, &publisher, field_study)
                .await
                .unwrap()
        );
    }

    // fs25-a: commission v1 -> v2 -> v3 (two voidings), h1 revised once (one voiding).
    let feed = export::statements(&env.journal, &publisher, "fs25-a")
        .await
        .unwrap();
    let statements = feed.as_array().unwrap();
    let verbs: BTreeSet<&str> = statements
        .iter()
        .map(|s| s["verb"]["display"]["en-US"].as_str().unwrap())
        .collect();
    for v in [
        "negotiated",
        "renegotiated",
        "agreed",
        "stated",
        "revised",
        "abandoned",
        "submitted",
        "scheduled",
        "passed",
        "voided",
    ] {
        assert!(verbs.contains(v), "{v} in {verbs:?}");
    }
    let voided_objects: Vec<String> = statements
        .iter()
        .filter(|s| s["verb"]["id"] == xapi::VERB_VOIDED)
        .map(|s| {
            let target = s["object"]["id"].as_str().unwrap();
            let voided = statements.iter().find(|t| t["id"] == target).unwrap();
            voided["object"]["id"]
                .as_str()
                .unwrap()
                .rsplit("fs25-a/")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        voided_objects,
        [
            "commission/versions/1",
            "commission/versions/2",
            "hypotheses/fs25-a-h1"
        ]
    );
    // fs25-b: l25-05 deferred at d1 (own verb), passed at d2.
    let feed = export::statements(&env.journal, &publisher, "fs25-b")
        .await
        .unwrap();
    let of_l5: Vec<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["actor"]["account"]["name"] == "learner:l25-05")
        .filter(|s| s["object"]["id"].as_str().unwrap().contains("/defences/"))
        .map(|s| s["verb"]["display"]["en-US"].as_str().unwrap())
        .collect();
    assert_eq!(of_l5, ["deferred", "passed"]);

    // The checker is not vacuous.
    let mut broken = statements.to_vec();
    broken[0]["verb"]["id"] = json!("negotiated");
    assert!(std::panic::catch_unwind(|| check_statements(&broken)).is_err());
    let mut broken = statements.to_vec();
    let last_void = broken
        .iter()
        .rposition(|s| s["verb"]["id"] == xapi::VERB_VOIDED)
        .unwrap();
    broken[last_void]["object"]["id"] = json!(uuid::Uuid::new_v4().to_string());
    assert!(std::panic::catch_unwind(|| check_statements(&broken)).is_err());

    assert!(matches!(
        export::statements(&env.journal, &publisher, "fs99-z").await,
        Err(export::ExportError::NotFound(_))
    ));
    env.cleanup().await;
}

// ---------------------------------------------------------------- CLI and HTTP

fn fieldtrail(env: &TestEnv) -> Command {
    let mut command = crate::helpers::fieldtrail_binary();
    command
        .env("DATABASE_URL", &env.settings.database_url)
        .env("NATS_URL", &env.settings.nats_url)
        .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
        .env("FIELDTRAIL_SUBJECT_PREFIX", &env.settings.subject_prefix)
        .env_remove("FIELDTRAIL_PUBLIC_URL")
        .env_remove("FIELDTRAIL_ISSUER_NAME")
        .env("RUST_LOG", "warn");
    command
}

crate::both_backends!(
    exports_through_the_cli_and_http_and_unknown_ids_are_refused_by_name,
    exports_through_the_cli_and_http_and_unknown_ids_are_refused_by_name_on
);

async fn exports_through_the_cli_and_http_and_unknown_ids_are_refused_by_name_on(env: TestEnv) {
    env.import(COHORT).await;
    let publisher = Publisher::default();
    let ics = export::calendar(&env.journal, COHORT_ID, None)
        .await
        .unwrap();
    let clr = export::transcript_clr(&env.journal, &publisher, COHORT_ID, "l25-05")
        .await
        .unwrap();
    let feed = export::statements(&env.journal, &publisher, "fs25-a")
        .await
        .unwrap();

    // CLI: standard output, --out, and the publisher flags.
    let out = fieldtrail(&env)
        .args(["export", "ics", "--cohort", COHORT_ID])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), ics);
    let path = std::env::temp_dir().join(format!("{}.clr.json", env.db_name));
    let out = fieldtrail(&env)
        .args([
            "export",
            "clr",
            "--cohort",
            COHORT_ID,
            "--learner",
            "l25-05",
            "--out",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(written, clr);
    std::fs::remove_file(&path).ok();
    let out = fieldtrail(&env)
        .args([
            "export",
            "xapi",
            "--field-study",
            "fs25-a",
            "--public-url",
            "https://training.example.org/lrs",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let own: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        own.as_array().unwrap().len(),
        feed.as_array().unwrap().len()
    );
    assert_eq!(
        own[0]["actor"]["account"]["homePage"],
        "https://training.example.org/lrs/"
    );
    assert_eq!(
        own[0]["id"], feed[0]["id"],
        "statement ids do not depend on the base URL"
    );

    for (args, message) in [
        (
            vec!["export", "ics", "--cohort", "cohort-1999"],
            "no cohort \"cohort-1999\"",
        ),
        (
            vec![
                "export",
                "ics",
                "--cohort",
                COHORT_ID,
                "--learner",
                "l99-99",
            ],
            "no learner \"l99-99\"",
        ),
        (
            vec![
                "export",
                "clr",
                "--cohort",
                COHORT_ID,
                "--learner",
                "l99-99",
            ],
            "no learner \"l99-99\"",
        ),
        (
            vec!["export", "xapi", "--field-study", "fs99-z"],
            "no field study \"fs99-z\"",
        ),
        (
            vec![
                "export",
                "xapi",
                "--field-study",
                "fs25-a",
                "--public-url",
                "not a url",
            ],
            "not an absolute http(s) URL",
        ),
    ] {
        let out = fieldtrail(&env).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty());
    }

    // HTTP.
    let (address, stop, task) = env.serve().await;
    let base = format!("http://{address}");
    let client = env.client();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let media = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, media, response.text().await.unwrap())
        }
    };
    let (status, media, body) = get(format!("/cohorts/{COHORT_ID}/timetable.ics")).await;
    assert_eq!(
        (status, media.as_str()),
        (200, "text/calendar; charset=utf-8")
    );
    assert_eq!(body, ics);
    let (status, media, body) = get(format!(
        "/cohorts/{COHORT_ID}/learners/l25-05/timetable.ics"
    ))
    .await;
    assert_eq!(
        (status, media.as_str()),
        (200, "text/calendar; charset=utf-8")
    );
    assert!(body.contains("UID:fs25-b-d2@fs25-b.fieldtrail\r\n"));
    for path in ["transcript.clr", "clr.json"] {
        let (status, media, body) =
            get(format!("/cohorts/{COHORT_ID}/learners/l25-05/{path}")).await;
        assert_eq!((status, media.as_str()), (200, "application/ld+json"));
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), clr);
    }
    let (status, media, body) = get("/field-studies/fs25-a/xapi".to_owned()).await;
    assert_eq!((status, media.as_str()), (200, "application/json"));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), feed);
    for path in [
        "/cohorts/cohort-1999/timetable.ics".to_owned(),
        format!("/cohorts/{COHORT_ID}/learners/l99-99/timetable.ics"),
        format!("/cohorts/{COHORT_ID}/learners/l99-99/transcript.clr"),
        "/cohorts/cohort-1999/learners/l25-01/clr.json".to_owned(),
        "/field-studies/fs99-z/xapi".to_owned(),
        "/field-studies/%20..%2F/xapi".to_owned(),
        // A NUL PostgreSQL's text cannot hold, in the path: no such resource either.
        "/cohorts/%00/timetable.ics".to_owned(),
        format!("/cohorts/{COHORT_ID}/learners/%00/transcript.clr"),
        format!("/cohorts/{COHORT_ID}/learners/l25-05%1f/transcript.jwt"),
        "/credentials/status/%00".to_owned(),
    ] {
        let (status, _, body) = get(path.clone()).await;
        assert_eq!(status, 404, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
        assert!(
            body["message"].as_str().unwrap().starts_with("no "),
            "{path}"
        );
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}
