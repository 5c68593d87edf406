//! A learner's transcript as a 1EdTech Comprehensive Learner Record 2.0 credential (CLR 2.0,
//! <https://www.imsglobal.org/spec/clr/v2p0/>), whose achievements are Open Badges 3.0
//! `AchievementCredential`s (<https://www.imsglobal.org/spec/ob/v3p0/>), as JSON-LD on the W3C
//! Verifiable Credentials Data Model 2.0.
//!
//! Shape (CLR 2.0 data model, "ClrCredential"):
//!
//! ```text
//! ClrCredential  @context [VC 2.0, CLR 2.0.1, OB 3.0.3], id urn:uuid, type [VerifiableCredential, ClrCredential],
//!                issuer Profile, name, description, validFrom, credentialSchema (1EdTech JSON schema)
//!   credentialSubject ClrSubject
//!     identifier   [IdentityObject systemId = learner id]    (no name, no other personal data)
//!     achievement  [certificate, modules in programme order, defence]
//!     verifiableCredential [one AchievementCredential per achievement, each with its results]
//!     association  [certificate isParentOf each other achievement; each isChildOf the certificate]
//! ```
//!
//! | achievement | `achievementType` | results (`Result.value` are strings) |
//! |---|---|---|
//! | the certificate (programme) | `Certificate` | status; DEIS credit `true`/`false` |
//! | each module (M1-M3) | `Course` | status; attended, excused, absent half-days |
//! | the field-study module (M4: every session of it is `field_work`) | `Fieldwork` | same |
//! | the defence | `Assessment` | status; the outcome of each defence in order (`passed`, `deferred`, `failed`) |
//!
//! Status (`ResultStatusType`): a module is `Completed` once the learner was counted in all of
//! its planned half-days, else `Withdrew` for a withdrawn learner, else `InProgress`. The
//! defence is `Completed` (last outcome passed), `Failed` (failed), `Withdrew` (learner
//! withdrawn), `OnHold` (deferred) or `InProgress` (no outcome yet). The certificate is
//! `Completed` once awarded (with `awardedDate`), else as the defence. A module's
//! `activityStartDate`/`activityEndDate` span the held sessions the learner was counted in; the
//! defence's span the defences the learner was due at.
//!
//! A revoked certificate (no award in force since its `certificate_revoked`) has no
//! `awardedDate`, its status follows the defence again, and its credential says
//! `Revoked on YYYY-MM-DD: this certificate is no longer issued.` (`description`) with
//! `validUntil` = the revocation's time (when it occurred), or `validFrom` when that is later
//! (`validFrom` is a recorded time, which for a revocation recorded as it happens or after is
//! later: a credential's validity never ends before it begins); an award after it makes the certificate `Completed`
//! again, with the new `awardedDate`.
//!
//! The document rendered here carries no embedded `proof`: it is secured as a whole by a
//! VC-JWT (the services' signed export, EdDSA), whose key the issuer's DID document
//! (`issuer.id`, a `did:web`) lists. A learner who was ever awarded the certificate gets a
//! `credentialStatus` ([`crate::formats::status`]) on the certificate's credential and on
//! the record. `validFrom` is when the journal recorded the latest event the record is built
//! from, so the same journal always gives the same document.

use crate::formats::ics::{learner_defences, sessions};
use crate::formats::{derived_uuid, latest_recorded, CohortOutline, ProgrammeOutline, Publisher};
use crate::{LearnerStatus, RecordedEvent, Transcript, TranscriptModule};
use chrono::{DateTime, SecondsFormat, Utc};
use fieldtrail_domain::command::{DefenceResult, SessionKind};
use fieldtrail_domain::{AnyEvent, CohortEvent};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// JSON-LD context of the W3C Verifiable Credentials Data Model 2.0.
pub const CONTEXT_VC: &str = "https://www.w3.org/ns/credentials/v2";
/// JSON-LD context of CLR 2.0.
pub const CONTEXT_CLR: &str = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json";
/// JSON-LD context of Open Badges 3.0.
pub const CONTEXT_OB: &str = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
/// The 1EdTech JSON schema of a `ClrCredential` (named in `credentialSchema`).
pub const CLR_SCHEMA: &str =
    "https://purl.imsglobal.org/spec/clr/v2p0/schema/json/clr_v2p0_clrcredential_schema.json";
/// The 1EdTech JSON schema of an `AchievementCredential` (named in `credentialSchema`).
pub const OB_SCHEMA: &str =
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json";
/// The `credentialSchema` type 1EdTech defines for its JSON schemas.
pub const SCHEMA_VALIDATOR: &str = "1EdTechJsonSchemaValidator2019";
/// Media type of the output.
pub const MEDIA_TYPE: &str = "application/ld+json";

/// The Open Badges 3.0 `ResultStatusType` values fieldtrail uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultStatus {
    /// `Completed`.
    Completed,
    /// `Failed`.
    Failed,
    /// `InProgress`.
    InProgress,
    /// `OnHold`: a deferred defence.
    OnHold,
    /// `Withdrew`: the learner withdrew.
    Withdrew,
}

impl ResultStatus {
    /// The value as the OB 3.0 vocabulary spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::InProgress => "InProgress",
            Self::OnHold => "OnHold",
            Self::Withdrew => "Withdrew",
        }
    }
}

/// Status of a module for a learner: `Completed` once counted in `planned_half_days` (> 0),
/// else `Withdrew` if withdrawn, else `InProgress`.
pub fn module_status(
    module: &TranscriptModule,
    planned_half_days: u32,
    learner: LearnerStatus,
) -> ResultStatus {
    if planned_half_days > 0 && module.held_half_days >= planned_half_days {
        ResultStatus::Completed
    } else if learner == LearnerStatus::Withdrawn {
        ResultStatus::Withdrew
    } else {
        ResultStatus::InProgress
    }
}

/// Status of the defence for a learner, from their last outcome: passed `Completed`, failed
/// `Failed`; otherwise `Withdrew` if withdrawn, `OnHold` if deferred, `InProgress` if none.
pub fn defence_status(transcript: &Transcript) -> ResultStatus {
    match transcript.defences.last().map(|d| d.result) {
        Some(DefenceResult::Passed) => ResultStatus::Completed,
        Some(DefenceResult::Failed) => ResultStatus::Failed,
        _ if transcript.status == LearnerStatus::Withdrawn => ResultStatus::Withdrew,
        Some(DefenceResult::Deferred) => ResultStatus::OnHold,
        None => ResultStatus::InProgress,
    }
}

/// Status of the certificate: `Completed` once awarded, else as [`defence_status`] (a passed
/// defence without an award yet is `InProgress`).
pub fn certificate_status(transcript: &Transcript) -> ResultStatus {
    if transcript.certificate_awarded_on.is_some() {
        return ResultStatus::Completed;
    }
    match defence_status(transcript) {
        ResultStatus::Completed => ResultStatus::InProgress,
        other => other,
    }
}

/// What a learner's record is built from: their transcript document and the events (each list
/// in stream order) of the cohort's programme, the cohort, and the learner's field study
/// (empty when none).
#[derive(Clone, Copy, Debug)]
pub struct ClrSources<'a> {
    /// The learner's transcript (FORMAT.md "Read models").
    pub transcript: &'a Transcript,
    /// The programme stream (its `programme_defined` gives titles and budgets).
    pub programme: &'a [RecordedEvent],
    /// The cohort stream (opening, sessions, withdrawal, award).
    pub cohort: &'a [RecordedEvent],
    /// The learner's field study stream (defence dates).
    pub field_study: &'a [RecordedEvent],
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One achievement of the record, with the learner's results for it.
struct Part {
    key: String,
    name: String,
    achievement: Value,
    results: Vec<Value>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    awarded: Option<DateTime<Utc>>,
    /// When the certificate was revoked, if it is not in force since.
    revoked: Option<DateTime<Utc>>,
}

/// The certificate of `learner_id` as the cohort's events leave it: `(awarded, revoked)`, the
/// `occurred_at` of the award in force (`None` when none is), and of the revocation that ended
/// the last award when no award followed it.
fn certificate_in_force(
    cohort: &[RecordedEvent],
    learner_id: &str,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    cohort
        .iter()
        .fold((None, None), |(awarded, revoked), e| match &e.event {
            AnyEvent::Cohort(CohortEvent::CertificateAwarded { learner_id: l, .. })
                if l.as_str() == learner_id =>
            {
                (Some(e.occurred_at), None)
            }
            AnyEvent::Cohort(CohortEvent::CertificateRevoked { learner_id: l, .. })
                if l.as_str() == learner_id && awarded.is_some() =>
            {
                (None, Some(e.occurred_at))
            }
            _ => (awarded, revoked),
        })
}

fn result_description(id: String, name: &str, result_type: &str, extra: Value) -> Value {
    let mut rd = json!({
        "id": id,
        "type": ["ResultDescription"],
        "name": name,
        "resultType": result_type,
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut rd, extra) {
        map.extend(more);
    }
    rd
}

fn status_result(achievement_id: &str, status: ResultStatus) -> Value {
    json!({"type": ["Result"], "resultDescription": format!("{achievement_id}#status"),
           "status": status.as_str()})
}

fn value_result(achievement_id: &str, what: &str, value: String) -> Value {
    json!({"type": ["Result"], "resultDescription": format!("{achievement_id}#{what}"),
           "value": value})
}

/// The learner's CLR 2.0 `ClrCredential` (see the module documentation for its shape), with
/// IRIs under `publisher`'s base URL.
pub fn render(sources: &ClrSources<'_>, publisher: &Publisher) -> Value {
    let t = sources.transcript;
    let programme = ProgrammeOutline::from_events(sources.programme);
    let cohort = CohortOutline::from_events(sources.cohort);
    let cohort_title = cohort
        .as_ref()
        .map(|c| c.title.clone())
        .unwrap_or_else(|| t.cohort_id.clone());
    let programme_key = if programme.programme_id.is_empty() {
        cohort
            .as_ref()
            .map(|c| c.programme_id.clone())
            .unwrap_or_default()
    } else {
        programme.programme_id.clone()
    };
    let programme_title = if programme.title.trim().is_empty() {
        programme_key.clone()
    } else {
        programme.title.clone()
    };
    let base = publisher.iri(&format!("programmes/{programme_key}"));
    let all_sessions = sessions(sources.cohort);
    let defences = learner_defences(sources.field_study, &t.learner_id);
    // The held sessions the learner was counted in (the aggregate lists every active learner
    // in `present`, `excused` or `absent`).
    let counted: BTreeSet<&str> = sources
        .cohort
        .iter()
        .filter_map(|e| match &e.event {
            AnyEvent::Cohort(CohortEvent::SessionHeld {
                session_id,
                present,
                excused,
                absent,
                ..
            }) if present
                .iter()
                .chain(excused)
                .chain(absent)
                .any(|l| l.as_str() == t.learner_id) =>
            {
                Some(session_id.as_str())
            }
            _ => None,
        })
        .collect();
    let (awarded_at, revoked_at) = certificate_in_force(sources.cohort, &t.learner_id);

    let mut parts: Vec<Part> = Vec::new();

    // The certificate.
    let certificate_id = format!("{base}/certificate");
    let total_half_days: u32 = programme
        .modules
        .iter()
        .fold(0u32, |sum, m| sum.saturating_add(m.half_days));
    parts.push(Part {
        key: "certificate".to_owned(),
        name: programme_title.clone(),
        achievement: json!({
            "id": certificate_id,
            "type": ["Achievement"],
            "achievementType": "Certificate",
            "name": programme_title,
            "humanCode": programme_key,
            "description": format!(
                "Certificate of the programme {programme_title}: {} modules ({total_half_days} half-days) and the defence of a field study's written production before a jury.",
                programme.modules.len()
            ),
            "criteria": {"narrative": "Follow the programme's modules and pass the defence of the field study's written production before a jury with at least one professional and one training-centre member."},
            "resultDescription": [
                result_description(format!("{certificate_id}#status"), "Status", "Status", json!({})),
                result_description(format!("{certificate_id}#deis-credit"), "Credited toward the DEIS", "ext:DeisCredit",
                    json!({"allowedValue": ["false", "true"]})),
            ],
        }),
        results: vec![
            status_result(&certificate_id, certificate_status(t)),
            value_result(&certificate_id, "deis-credit", t.deis_credit.to_string()),
        ],
        start: None,
        end: None,
        awarded: awarded_at,
        revoked: revoked_at,
    });

    // The modules, in the transcript's (programme) order.
    for module in &t.modules {
        let plan = programme
            .modules
            .iter()
            .find(|m| m.module_id.as_str() == module.module_id);
        let planned = plan.map_or(0, |m| m.half_days);
        let title = plan.map_or(module.module_id.clone(), |m| m.title.clone());
        let of_module: Vec<_> = all_sessions
            .iter()
            .filter(|s| s.module_id == module.module_id)
            .collect();
        let fieldwork =
            !of_module.is_empty() && of_module.iter().all(|s| s.kind == SessionKind::FieldWork);
        let held: Vec<_> = of_module
            .iter()
            .filter(|s| {
                s.status == crate::SessionStatus::Held && counted.contains(s.session_id.as_str())
            })
            .collect();
        let units = plan.map_or_else(String::new, |m| {
            m.units
                .iter()
                .map(|u| format!(" {} {} ({} half-days).", u.unit_id, u.title, u.half_days))
                .collect()
        });
        let id = format!("{base}/modules/{}", module.module_id);
        let counts = json!({"valueMin": "0", "valueMax": planned.to_string()});
        parts.push(Part {
            key: format!("modules/{}", module.module_id),
            name: title.clone(),
            achievement: json!({
                "id": id,
                "type": ["Achievement"],
                "achievementType": if fieldwork { "Fieldwork" } else { "Course" },
                "name": title,
                "humanCode": module.module_id,
                "description": format!("Module {} of {programme_title}: {planned} half-days.{units}", module.module_id),
                "criteria": {"narrative": format!("Follow the module's {planned} half-days of sessions.")},
                "resultDescription": [
                    result_description(format!("{id}#status"), "Status", "Status", json!({})),
                    result_description(format!("{id}#attended-half-days"), "Attended half-days", "ext:AttendedHalfDays", counts.clone()),
                    result_description(format!("{id}#excused-half-days"), "Excused half-days", "ext:ExcusedHalfDays", counts.clone()),
                    result_description(format!("{id}#absent-half-days"), "Absent half-days", "ext:AbsentHalfDays", counts),
                ],
            }),
            results: vec![
                status_result(&id, module_status(module, planned, t.status)),
                value_result(&id, "attended-half-days", module.attended_half_days.to_string()),
                value_result(&id, "excused-half-days", module.excused_half_days.to_string()),
                value_result(&id, "absent-half-days", module.absent_half_days.to_string()),
            ],
            start: held.iter().map(|s| s.starts_at).min(),
            end: held.iter().map(|s| s.ends_at).max(),
            awarded: None,
            revoked: None,
        });
    }

    // The defence.
    let defence_id = format!("{base}/defence");
    let mut results = vec![status_result(&defence_id, defence_status(t))];
    results.extend(
        t.defences
            .iter()
            .map(|d| value_result(&defence_id, "outcome", d.result.as_str().to_owned())),
    );
    parts.push(Part {
        key: "defence".to_owned(),
        name: "Defence of the field study".to_owned(),
        achievement: json!({
            "id": defence_id,
            "type": ["Achievement"],
            "achievementType": "Assessment",
            "name": "Defence of the field study",
            "description": "Defence of the field study's written production before a jury of professionals and training-centre staff.",
            "criteria": {"narrative": "The jury records the outcome of each learner: passed, deferred (due again at the next defence) or failed."},
            "resultDescription": [
                result_description(format!("{defence_id}#status"), "Status", "Status", json!({})),
                result_description(format!("{defence_id}#outcome"), "Outcome of a defence", "Result",
                    json!({"allowedValue": ["failed", "deferred", "passed"]})),
            ],
        }),
        results,
        start: defences.iter().map(|d| d.at).min(),
        end: defences.iter().map(|d| d.at).max(),
        awarded: None,
        revoked: None,
    });

    let identity = json!([{
        "type": "IdentityObject",
        "hashed": false,
        "identityHash": t.learner_id,
        "identityType": "systemId",
    }]);
    let issuer = json!({"id": publisher.did(), "type": ["Profile"], "name": publisher.name,
                        "url": publisher.base_url});
    let status = crate::formats::status::certificate_index(sources.cohort, &t.learner_id)
        .map(|index| crate::formats::status::entry(publisher, &t.cohort_id, index));
    let valid_from_at = latest_recorded(
        sources
            .programme
            .iter()
            .chain(sources.cohort)
            .chain(sources.field_study),
    )
    .unwrap_or(DateTime::UNIX_EPOCH);
    let valid_from = rfc3339(&valid_from_at);
    let record_key = format!("clr/{}/{}", t.cohort_id, t.learner_id);

    let credentials: Vec<Value> = parts
        .iter()
        .map(|p| {
            let mut subject = json!({
                "type": ["AchievementSubject"],
                "identifier": identity,
                "achievement": p.achievement,
                "result": p.results,
                "term": cohort_title,
            });
            if let Value::Object(map) = &mut subject {
                if let Some(start) = &p.start {
                    map.insert("activityStartDate".to_owned(), json!(rfc3339(start)));
                }
                if let Some(end) = &p.end {
                    map.insert("activityEndDate".to_owned(), json!(rfc3339(end)));
                }
            }
            let mut credential = json!({
                "@context": [CONTEXT_VC, CONTEXT_OB],
                "id": format!("urn:uuid:{}", derived_uuid(&format!("{record_key}/{}", p.key))),
                "type": ["VerifiableCredential", "AchievementCredential"],
                "issuer": issuer,
                "name": format!("{} ({cohort_title})", p.name),
                "validFrom": valid_from,
                "credentialSubject": subject,
                "credentialSchema": [{"id": OB_SCHEMA, "type": SCHEMA_VALIDATOR}],
            });
            if let (Value::Object(map), Some(awarded)) = (&mut credential, &p.awarded) {
                map.insert("awardedDate".to_owned(), json!(rfc3339(awarded)));
            }
            if let (Value::Object(map), Some(status), "certificate") =
                (&mut credential, &status, p.key.as_str())
            {
                // In force or revoked: the cohort's status list says which.
                map.insert("credentialStatus".to_owned(), status.clone());
            }
            if let (Value::Object(map), Some(revoked)) = (&mut credential, &p.revoked) {
                // Besides the status list's bit, the credential says it in words and ends its
                // validity at the revocation.
                map.insert(
                    "description".to_owned(),
                    json!(format!(
                        "Revoked on {}: this certificate is no longer issued.",
                        crate::time::paris_date(revoked)
                    )),
                );
                // The revocation's time in the world (occurred), but never before `validFrom`
                // (recorded): a revocation recorded after the fact would otherwise end the
                // validity before it began.
                map.insert(
                    "validUntil".to_owned(),
                    json!(rfc3339(&(*revoked).max(valid_from_at))),
                );
            }
            credential
        })
        .collect();
    let achievements: Vec<Value> = parts.iter().map(|p| p.achievement.clone()).collect();
    let mut associations = Vec::new();
    for p in parts.iter().skip(1) {
        let child = p.achievement["id"].clone();
        associations.push(
            json!({"type": "Association", "associationType": "isParentOf",
            "sourceId": certificate_id, "targetId": child}),
        );
        associations.push(
            json!({"type": "Association", "associationType": "isChildOf",
            "sourceId": child, "targetId": certificate_id}),
        );
    }

    let mut record = json!({
        "@context": [CONTEXT_VC, CONTEXT_CLR, CONTEXT_OB],
        "id": format!("urn:uuid:{}", derived_uuid(&record_key)),
        "type": ["VerifiableCredential", "ClrCredential"],
        "issuer": issuer,
        "name": format!("Comprehensive Learner Record of {}: {programme_title} ({cohort_title})", t.learner_id),
        "description": "Transcript of the certificate: the learner's attendance in each module, the outcome of the field study's defence and the certificate.",
        "validFrom": valid_from,
        "credentialSubject": {
            "type": ["ClrSubject"],
            "identifier": identity,
            "achievement": achievements,
            "verifiableCredential": credentials,
            "association": associations,
        },
        "credentialSchema": [{"id": CLR_SCHEMA, "type": SCHEMA_VALIDATOR}],
    });
    if let (Value::Object(map), Some(status)) = (&mut record, status) {
        map.insert("credentialStatus".to_owned(), status);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testlog::scenario;
    use crate::ReadModels;

    fn record(learner: &str) -> Value {
        let log = scenario();
        let models = ReadModels::fold(&log.all());
        let transcript = models.transcript("c1", learner).expect("transcript");
        render(
            &ClrSources {
                transcript: &transcript,
                programme: &log.programme,
                cohort: &log.cohort,
                field_study: &log.field_study,
            },
            &Publisher::default(),
        )
    }

    fn credential<'a>(clr: &'a Value, key: &str) -> &'a Value {
        clr["credentialSubject"]["verifiableCredential"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["credentialSubject"]["achievement"]["id"]
                    .as_str()
                    .unwrap()
                    .ends_with(key)
            })
            .unwrap_or_else(|| panic!("no credential for {key}"))
    }

    fn status(c: &Value) -> &str {
        c["credentialSubject"]["result"][0]["status"]
            .as_str()
            .unwrap()
    }

    #[test]
    fn the_record_holds_the_certificate_modules_and_defence_linked_parent_and_child() {
        let clr = record("l1");
        assert_eq!(
            clr["@context"],
            json!([CONTEXT_VC, CONTEXT_CLR, CONTEXT_OB])
        );
        assert_eq!(
            clr["type"],
            json!(["VerifiableCredential", "ClrCredential"])
        );
        assert!(clr.get("proof").is_none());
        let subject = &clr["credentialSubject"];
        let types: Vec<&str> = subject["achievement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["achievementType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["Certificate", "Course", "Course", "Fieldwork", "Assessment"]
        );
        assert_eq!(subject["verifiableCredential"].as_array().unwrap().len(), 5);
        assert_eq!(subject["association"].as_array().unwrap().len(), 8);
        assert_eq!(
            subject["association"][0],
            json!({"type": "Association", "associationType": "isParentOf",
                   "sourceId": "https://fieldtrail.example/programmes/p1/certificate",
                   "targetId": "https://fieldtrail.example/programmes/p1/modules/m1"})
        );
        let certificate = credential(&clr, "/certificate");
        assert_eq!(status(certificate), "Completed");
        assert_eq!(certificate["awardedDate"], "2026-06-26T08:00:00Z");
        assert_eq!(clr["issuer"]["id"], "did:web:fieldtrail.example");
        assert_eq!(
            certificate["credentialStatus"]["type"],
            "BitstringStatusListEntry"
        );
        assert_eq!(certificate["credentialStatus"], clr["credentialStatus"]);
        assert_eq!(
            certificate["credentialStatus"]["statusListCredential"],
            "https://fieldtrail.example/credentials/status/c1"
        );
        let m1 = credential(&clr, "/modules/m1");
        // s1 and s2 held, present at both: 4 of 4 half-days.
        assert_eq!(status(m1), "Completed");
        assert_eq!(m1["credentialSubject"]["result"][1]["value"], "4");
        assert_eq!(
            m1["credentialSubject"]["activityStartDate"],
            "2025-09-15T07:00:00Z"
        );
        assert_eq!(
            m1["credentialSubject"]["activityEndDate"],
            "2025-11-13T16:00:00Z"
        );
        let defence = credential(&clr, "/defence");
        assert_eq!(status(defence), "Completed");
        assert_eq!(defence["credentialSubject"]["result"][1]["value"], "passed");
        // Deterministic: the latest recorded_at of the sources, same ids.
        assert_eq!(clr["validFrom"], "2026-06-26T08:01:30Z");
        assert_eq!(clr, record("l1"));
        assert_ne!(clr["id"], record("l2")["id"]);
    }

    #[test]
    fn deferred_failed_and_withdrawn_learners_get_their_status() {
        let l2 = record("l2");
        assert_eq!(status(credential(&l2, "/defence")), "OnHold");
        assert_eq!(status(credential(&l2, "/certificate")), "OnHold");
        assert!(credential(&l2, "/certificate").get("awardedDate").is_none());
        assert!(
            l2.get("credentialStatus").is_none(),
            "no certificate, no status"
        );
        assert_eq!(
            credential(&l2, "/defence")["credentialSubject"]["activityEndDate"],
            "2026-06-25T12:00:00Z",
            "due again at d2"
        );
        let l3 = record("l3");
        assert_eq!(status(credential(&l3, "/defence")), "Failed");
        assert_eq!(status(credential(&l3, "/certificate")), "Failed");
        let l4 = record("l4");
        assert_eq!(status(credential(&l4, "/defence")), "Withdrew");
        assert_eq!(status(credential(&l4, "/certificate")), "Withdrew");
        // l4 was counted in s1 (excused) and s2 (absent): 4 of 4 half-days of m1 held.
        assert_eq!(status(credential(&l4, "/modules/m1")), "Completed");
        // s5 (m2) was held after l4 withdrew: l4 was not counted in it.
        let l4_m2 = credential(&l4, "/modules/m2");
        assert_eq!(status(l4_m2), "Withdrew");
        assert!(l4_m2["credentialSubject"]
            .get("activityStartDate")
            .is_none());
        let l1_m2 = credential(&record("l1"), "/modules/m2").clone();
        assert_eq!(status(&l1_m2), "Completed");
        assert_eq!(
            l1_m2["credentialSubject"]["activityStartDate"],
            "2026-06-11T07:00:00Z"
        );
    }

    #[test]
    fn a_revoked_certificate_is_never_valid_until_before_it_is_valid_from() {
        let render_l1 = |log: &crate::formats::testlog::TestLog| {
            let models = ReadModels::fold(&log.all());
            let transcript = models.transcript("c1", "l1").expect("transcript");
            render(
                &ClrSources {
                    transcript: &transcript,
                    programme: &log.programme,
                    cohort: &log.cohort,
                    field_study: &log.field_study,
                },
                &Publisher::default(),
            )
        };
        let revoke = |log: &mut crate::formats::testlog::TestLog| {
            log.push(
                "cohort",
                "certificate_revoked",
                "2026-07-01T09:00:00+02:00",
                "staff:direction",
                json!({"cohort_id": "c1", "learner_id": "l1", "reason": "erreur du jury"}),
            );
        };
        // Recorded 90 s after it occurred: validFrom is the recording, and validUntil not
        // before it (the revocation's time would be 90 s earlier).
        let mut log = scenario();
        revoke(&mut log);
        let clr = render_l1(&log);
        let certificate = credential(&clr, "/certificate");
        assert_eq!(certificate["validFrom"], "2026-07-01T07:01:30Z");
        assert_eq!(certificate["validUntil"], "2026-07-01T07:01:30Z");
        // A revocation whose time in the world is after every recording (announced ahead):
        // valid until then.
        let mut ahead = scenario();
        revoke(&mut ahead);
        let last = ahead.cohort.last_mut().unwrap();
        last.recorded_at = last.occurred_at - chrono::Duration::days(1);
        let clr = render_l1(&ahead);
        let certificate = credential(&clr, "/certificate");
        assert_eq!(certificate["validUntil"], "2026-07-01T07:00:00Z");
        assert!(certificate["validFrom"].as_str() < certificate["validUntil"].as_str());
        // Recorded a month after it occurred: validFrom (recorded) is later than the
        // revocation (occurred); validUntil is not before it.
        let mut late = scenario();
        revoke(&mut late);
        let last = late.cohort.last_mut().unwrap();
        last.recorded_at = last.occurred_at + chrono::Duration::days(30);
        let clr = render_l1(&late);
        let certificate = credential(&clr, "/certificate");
        assert_eq!(certificate["validFrom"], "2026-07-31T07:00:00Z");
        assert_eq!(certificate["validUntil"], certificate["validFrom"]);
        assert_eq!(
            certificate["description"],
            "Revoked on 2026-07-01: this certificate is no longer issued."
        );
    }

    #[test]
    fn no_input_makes_it_panic() {
        let transcript = Transcript {
            cohort_id: "c".to_owned(),
            learner_id: "l".to_owned(),
            status: LearnerStatus::Active,
            modules: vec![TranscriptModule {
                module_id: "m9".to_owned(),
                ..TranscriptModule::default()
            }],
            field_study_id: None,
            defences: Vec::new(),
            certificate_awarded_on: None,
            deis_credit: false,
        };
        let clr = render(
            &ClrSources {
                transcript: &transcript,
                programme: &[],
                cohort: &[],
                field_study: &[],
            },
            &Publisher::default(),
        );
        assert_eq!(clr["validFrom"], "1970-01-01T00:00:00Z");
        let m9 = &clr["credentialSubject"]["verifiableCredential"][1]["credentialSubject"];
        assert_eq!(m9["result"][0]["status"], "InProgress");
        assert_eq!(
            clr["credentialSubject"]["achievement"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
