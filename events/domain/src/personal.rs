//! The data classification of every event field: personal data (RGPD) or not, and for a
//! personal field, whose data it is (the data subject whose key encrypts it).
//!
//! This is the one place the classification lives. The JSON Schemas publish it
//! (`x-personal: true` and `x-subject` on a personal property, `x-personal: false` on the
//! others, [`crate::schema`]); the journal encrypts exactly the personal fields with their
//! subject's key before an event is hashed and stored; and a test fails when a field of an
//! event schema has no class here, or a class names a field the schema does not have.
//!
//! What is personal: names of people, and free texts about people (reflexive notes, the
//! jury's remarks, complaints and their answers, the reasons a learner's path changed,
//! with whom a commission was negotiated, intervention summaries). What is not: ids, dates,
//! codes, counts, and the texts of the programme and of the study's work (titles, briefs,
//! deliverables, hypotheses, organisations, which are legal persons). `role:name` values
//! (`facilitator`, a complaint's `from`) are identifiers, like the envelope's `actor`.
//!
//! Paths name a payload field (`name`), a field of an object field (`organisation.name`) or
//! a field of the objects of an array field (`jury[].name`, `modules[].units[].title`).

use serde_json::Value;

/// Whose personal data a field holds: the data subject whose key encrypts it. Each turns a
/// payload into a subject id ([`Subject::id`]), the key table's key and what `erase_subject`
/// names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The learner the event is about: `learner:<learner_id>` (their name, the reasons of
    /// their withdrawal, of a revocation, of a correction of their attendance or result, the
    /// jury's remarks on them, their DEIS note). One key per person across cohorts.
    Learner,
    /// The group of a field study: `field_study:<field_study_id>` (reflexive notes,
    /// intervention summaries, with whom the commission was negotiated, why members left).
    /// These texts are about the group as a whole: they carry no learner id.
    Group,
    /// The jury of a field study's defences: `jury:<field_study_id>` (members' names, why one
    /// stepped aside). Jury members have no id in the published language, and a subject id
    /// made of a name would put the name in clear in the key table; so one key covers the
    /// names of one study's jury, apart from the group's texts.
    Jury,
    /// A complaint: `complaint:<cohort_id>:<complaint_id>` (its subject, text and answer).
    /// A complaint's answer carries no `from`, so the complaint is its own subject: erasing a
    /// learner who filed complaints means erasing those complaints too (the register lists
    /// them by `from`).
    Complaint,
}

impl Subject {
    /// The subject's id for an event's payload (`None` when the payload lacks the ids it is
    /// made of).
    pub fn id(self, payload: &Value) -> Option<String> {
        let field = |name: &str| payload.get(name).and_then(Value::as_str);
        Some(match self {
            Subject::Learner => format!("learner:{}", field("learner_id")?),
            Subject::Group => format!("field_study:{}", field("field_study_id")?),
            Subject::Jury => format!("jury:{}", field("field_study_id")?),
            Subject::Complaint => {
                format!(
                    "complaint:{}:{}",
                    field("cohort_id")?,
                    field("complaint_id")?
                )
            }
        })
    }

    /// The subject's kind as published (`x-subject`): `learner`, `field_study`, `jury`,
    /// `complaint`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Learner => "learner",
            Subject::Group => "field_study",
            Subject::Jury => "jury",
            Subject::Complaint => "complaint",
        }
    }
}

/// Checks that `subject_id` names a data subject the way [`Subject::id`] makes them:
/// `learner:<id>`, `field_study:<id>`, `jury:<field_study_id>` or
/// `complaint:<cohort_id>:<complaint_id>`, each id a client id (`[a-z0-9][a-z0-9-]{0,62}`).
///
/// # Errors
/// A sentence saying what is wrong.
pub fn check_subject_id(subject_id: &str) -> Result<(), String> {
    let id = |s: &str| crate::ids::Id::parse(s).is_ok();
    let well_formed = match subject_id.split_once(':') {
        Some(("learner" | "field_study" | "jury", rest)) => id(rest),
        Some(("complaint", rest)) => rest.split_once(':').is_some_and(|(c, k)| id(c) && id(k)),
        _ => false,
    };
    if well_formed {
        Ok(())
    } else {
        let shown: String = subject_id.chars().take(64).collect();
        Err(format!(
            "{shown:?} is not a data subject: expected learner:<learner_id>, \
             field_study:<field_study_id>, jury:<field_study_id> or \
             complaint:<cohort_id>:<complaint_id>"
        ))
    }
}

/// A field's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Not personal: ids, dates, codes, counts, the programme's and the study's own texts.
    Plain,
    /// Personal data of this subject: stored encrypted with the subject's key.
    Personal(Subject),
}

use Class::{Personal, Plain};
use Subject::{Complaint, Group, Jury, Learner};

/// Every event type's fields and their class (payload paths, see the module documentation).
pub const CLASSIFICATION: &[(&str, &[(&str, Class)])] = &[
    (
        "programme_defined",
        &[
            ("programme_id", Plain),
            ("title", Plain),
            ("modules[].module_id", Plain),
            ("modules[].title", Plain),
            ("modules[].half_days", Plain),
            ("modules[].units[].unit_id", Plain),
            ("modules[].units[].title", Plain),
            ("modules[].units[].half_days", Plain),
        ],
    ),
    (
        "cohort_opened",
        &[
            ("cohort_id", Plain),
            ("programme_id", Plain),
            ("title", Plain),
            ("starts_on", Plain),
            ("ends_on", Plain),
        ],
    ),
    (
        "learner_enrolled",
        &[
            ("cohort_id", Plain),
            ("learner_id", Plain),
            ("name", Personal(Learner)),
            ("deis_pathway", Plain),
        ],
    ),
    (
        "learner_withdrew",
        &[
            ("cohort_id", Plain),
            ("learner_id", Plain),
            ("reason", Personal(Learner)),
        ],
    ),
    (
        "session_scheduled",
        &[
            ("cohort_id", Plain),
            ("session_id", Plain),
            ("module_id", Plain),
            ("unit_id", Plain),
            ("kind", Plain),
            ("starts_at", Plain),
            ("ends_at", Plain),
            ("half_days", Plain),
            ("facilitator", Plain),
            ("room", Plain),
        ],
    ),
    (
        "session_rescheduled",
        &[
            ("cohort_id", Plain),
            ("session_id", Plain),
            ("starts_at", Plain),
            ("ends_at", Plain),
            ("reason", Plain),
        ],
    ),
    (
        "session_cancelled",
        &[
            ("cohort_id", Plain),
            ("session_id", Plain),
            ("reason", Plain),
        ],
    ),
    (
        "session_held",
        &[
            ("cohort_id", Plain),
            ("session_id", Plain),
            ("module_id", Plain),
            ("half_days", Plain),
            ("present", Plain),
            ("excused", Plain),
            ("absent", Plain),
        ],
    ),
    (
        "attendance_corrected",
        &[
            ("cohort_id", Plain),
            ("session_id", Plain),
            ("learner_id", Plain),
            ("previous_status", Plain),
            ("status", Plain),
            ("reason", Personal(Learner)),
        ],
    ),
    ("cohort_closed", &[("cohort_id", Plain)]),
    (
        "certificate_awarded",
        &[("cohort_id", Plain), ("learner_id", Plain)],
    ),
    (
        "deis_credit_recorded",
        &[
            ("cohort_id", Plain),
            ("learner_id", Plain),
            ("note", Personal(Learner)),
        ],
    ),
    (
        "certificate_revoked",
        &[
            ("cohort_id", Plain),
            ("learner_id", Plain),
            ("reason", Personal(Learner)),
        ],
    ),
    (
        "complaint_filed",
        &[
            ("cohort_id", Plain),
            ("complaint_id", Plain),
            ("from", Plain),
            ("subject", Personal(Complaint)),
            ("text", Personal(Complaint)),
        ],
    ),
    (
        "complaint_answered",
        &[
            ("cohort_id", Plain),
            ("complaint_id", Plain),
            ("answer", Personal(Complaint)),
            ("action", Plain),
        ],
    ),
    (
        "field_study_formed",
        &[
            ("field_study_id", Plain),
            ("cohort_id", Plain),
            ("members", Plain),
            ("organisation.name", Plain),
            ("organisation.sector", Plain),
            ("split_from", Plain),
        ],
    ),
    (
        "members_changed",
        &[
            ("field_study_id", Plain),
            ("join", Plain),
            ("leave", Plain),
            ("reason", Personal(Group)),
            ("members", Plain),
        ],
    ),
    (
        "commission_negotiated",
        &[
            ("field_study_id", Plain),
            ("version", Plain),
            ("brief", Plain),
            ("deliverables", Plain),
            ("negotiated_with", Personal(Group)),
        ],
    ),
    (
        "commission_renegotiated",
        &[
            ("field_study_id", Plain),
            ("version", Plain),
            ("brief", Plain),
            ("deliverables", Plain),
            ("reason", Plain),
        ],
    ),
    (
        "commission_agreed",
        &[("field_study_id", Plain), ("version", Plain)],
    ),
    (
        "hypothesis_stated",
        &[
            ("field_study_id", Plain),
            ("hypothesis_id", Plain),
            ("text", Plain),
        ],
    ),
    (
        "hypothesis_revised",
        &[
            ("field_study_id", Plain),
            ("hypothesis_id", Plain),
            ("text", Plain),
            ("reason", Plain),
        ],
    ),
    (
        "hypothesis_abandoned",
        &[
            ("field_study_id", Plain),
            ("hypothesis_id", Plain),
            ("reason", Plain),
        ],
    ),
    (
        "intervention_logged",
        &[
            ("field_study_id", Plain),
            ("intervention_id", Plain),
            ("kind", Plain),
            ("summary", Personal(Group)),
            ("participants", Plain),
        ],
    ),
    (
        "reflexive_note_recorded",
        &[
            ("field_study_id", Plain),
            ("note_id", Plain),
            ("session_id", Plain),
            ("text", Personal(Group)),
        ],
    ),
    (
        "production_submitted",
        &[
            ("field_study_id", Plain),
            ("version", Plain),
            ("title", Plain),
            ("pages", Plain),
        ],
    ),
    (
        "defence_scheduled",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("at", Plain),
            ("jury[].name", Personal(Jury)),
            ("jury[].role", Plain),
        ],
    ),
    (
        "defence_passed",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("learner_id", Plain),
            ("remarks", Personal(Learner)),
        ],
    ),
    (
        "defence_deferred",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("learner_id", Plain),
            ("remarks", Personal(Learner)),
        ],
    ),
    (
        "defence_failed",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("learner_id", Plain),
            ("remarks", Personal(Learner)),
        ],
    ),
    (
        "jury_member_recused",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("name", Personal(Jury)),
            ("reason", Personal(Jury)),
        ],
    ),
    (
        "jury_member_appointed",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("name", Personal(Jury)),
            ("role", Plain),
        ],
    ),
    (
        "field_study_split",
        &[
            ("field_study_id", Plain),
            ("cohort_id", Plain),
            ("new_field_study_id", Plain),
            ("members", Plain),
            ("remaining", Plain),
            ("organisation.name", Plain),
            ("organisation.sector", Plain),
            ("reason", Personal(Group)),
        ],
    ),
    (
        "subject_erased",
        &[
            ("subject_id", Plain),
            ("reason", Plain),
            ("reason_categories[].event_id", Plain),
            ("reason_categories[].field", Plain),
            ("reason_categories[].category", Plain),
        ],
    ),
    (
        "defence_result_rectified",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("learner_id", Plain),
            ("previous_result", Plain),
            ("result", Plain),
            ("reason", Personal(Learner)),
        ],
    ),
    (
        "defence_cancelled",
        &[
            ("field_study_id", Plain),
            ("defence_id", Plain),
            ("reason", Personal(Group)),
        ],
    ),
];

/// The classified fields of `event_type` (`None` for a type the classification does not
/// know).
pub fn fields_of(event_type: &str) -> Option<&'static [(&'static str, Class)]> {
    CLASSIFICATION
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, fields)| *fields)
}

/// The personal fields of `event_type`: `(path, subject)`, in the classification's order
/// (none for a type without any, or unknown).
pub fn personal_fields(event_type: &str) -> impl Iterator<Item = (&'static str, Subject)> {
    fields_of(event_type)
        .unwrap_or_default()
        .iter()
        .filter_map(|(path, class)| match class {
            Personal(subject) => Some((*path, *subject)),
            Plain => None,
        })
}

/// Whether `event_type` has a personal field.
pub fn has_personal(event_type: &str) -> bool {
    personal_fields(event_type).next().is_some()
}

/// Calls `f` on every value at `path` in `payload` (one for a plain path, one per element of
/// each `[]` array on the way; none where a field is absent or `null`), mutably: what the
/// journal's encryption and decryption of a personal field go through.
pub fn visit_mut(payload: &mut Value, path: &str, f: &mut dyn FnMut(&mut Value)) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let (name, array) = match head.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (head, false),
    };
    let Some(value) = payload.get_mut(name) else {
        return;
    };
    let mut at = |v: &mut Value| match rest {
        Some(rest) => visit_mut(v, rest, f),
        None if v.is_null() => {}
        None => f(v),
    };
    match (array, value) {
        (true, Value::Array(items)) => items.iter_mut().for_each(&mut at),
        (true, _) => {}
        (false, v) => at(v),
    }
}

/// What a stored refusal says in place of a personal value it quoted ([`redact`]).
pub const WITHHELD: &str = "[donnée personnelle]";

/// The personal values each command carries in its `data` (paths as in [`CLASSIFICATION`]):
/// the values that end up in a personal field of its events. A refusal message may quote
/// them (`"M. Centre" is not on the jury`); the journal keeps refusals ([`redact`]) and no
/// command body, so this is what keeps them out of its tables. A test checks, on the
/// shipped scenarios, that every personal field of every event comes from a value listed
/// here.
pub const COMMAND_PERSONAL: &[(&str, &[&str])] = &[
    ("enrol_learner", &["name"]),
    ("withdraw_learner", &["reason"]),
    ("correct_attendance", &["reason"]),
    ("record_deis_credit", &["note"]),
    ("revoke_certificate", &["reason"]),
    ("file_complaint", &["subject", "text"]),
    ("answer_complaint", &["answer"]),
    ("change_members", &["reason"]),
    ("negotiate_commission", &["negotiated_with"]),
    ("log_intervention", &["summary"]),
    ("record_reflexive_note", &["text"]),
    ("schedule_defence", &["jury[].name"]),
    ("record_defence", &["outcomes[].remarks"]),
    ("recuse_jury_member", &["name", "reason"]),
    ("appoint_jury_member", &["name"]),
    ("split_field_study", &["reason"]),
    ("rectify_defence_result", &["reason"]),
    ("cancel_defence", &["reason"]),
];

/// The personal values (strings) of a command's `data`, as given and without surrounding
/// white space (the form the rules keep and quote), longest first.
pub fn command_personal_values(command: &str, data: &Value) -> Vec<String> {
    let paths = COMMAND_PERSONAL
        .iter()
        .find(|(c, _)| *c == command)
        .map(|(_, paths)| *paths)
        .unwrap_or_default();
    let mut data = data.clone();
    let mut out = Vec::new();
    for path in paths {
        visit_mut(&mut data, path, &mut |v| {
            if let Some(text) = v.as_str() {
                for form in [text, text.trim()] {
                    if !form.is_empty() {
                        out.push(form.to_owned());
                    }
                }
            }
        });
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// `message` with every personal value of the command (`command`, `data`) it quotes replaced
/// by [`WITHHELD`]: as is, Debug-escaped (`{:?}`, how the rules quote a name) or JSON-escaped.
/// What the journal keeps of a refusal: the client's answer may quote the value, the stored
/// one does not, so that no table holds a personal value in clear.
pub fn redact(command: &str, data: &Value, message: &str) -> String {
    let mut out = message.to_owned();
    for value in command_personal_values(command, data) {
        let debug = format!("{value:?}");
        let json = Value::String(value.clone()).to_string();
        for form in [
            &debug[1..debug.len() - 1],
            &json[1..json.len() - 1],
            value.as_str(),
        ] {
            if !form.is_empty() && out.contains(form) {
                out = out.replace(form, WITHHELD);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    /// The leaf paths of an event schema's payload (objects reached through `$ref`, arrays of
    /// objects as `[]`), as the classification names them.
    fn leaf_paths(schema: &Value) -> BTreeSet<String> {
        fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
            if let Some(r) = node.get("$ref").and_then(Value::as_str) {
                let name = r.trim_start_matches("#/$defs/");
                return &schema["$defs"][name];
            }
            if let Some(any) = node.get("anyOf").and_then(Value::as_array) {
                if let Some(some) = any.iter().find(|v| v.get("type") != Some(&json!("null"))) {
                    return resolve(schema, some);
                }
            }
            node
        }
        fn walk(schema: &Value, node: &Value, prefix: &str, out: &mut BTreeSet<String>) {
            let Some(properties) = node.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (name, property) in properties {
                let target = resolve(schema, property);
                let items = target.get("items").map(|i| resolve(schema, i));
                match (target.get("properties"), items) {
                    (Some(_), _) => walk(schema, target, &format!("{prefix}{name}."), out),
                    (None, Some(items)) if items.get("properties").is_some() => {
                        walk(schema, items, &format!("{prefix}{name}[]."), out);
                    }
                    _ => {
                        out.insert(format!("{prefix}{name}"));
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(schema, schema, "", &mut out);
        out
    }

    #[test]
    fn every_field_of_every_event_schema_has_a_class() {
        let schemas = crate::schema::raw_event_schemas();
        let mut types = BTreeSet::new();
        for (event_type, schema) in &schemas {
            types.insert(event_type.as_str());
            let fields = fields_of(event_type)
                .unwrap_or_else(|| panic!("{event_type} is not in personal::CLASSIFICATION"));
            let classified: BTreeSet<String> =
                fields.iter().map(|(p, _)| (*p).to_owned()).collect();
            assert_eq!(
                leaf_paths(schema),
                classified,
                "{event_type}: the schema's fields and their classification differ"
            );
            assert_eq!(
                classified.len(),
                fields.len(),
                "{event_type}: a field twice"
            );
        }
        let known: BTreeSet<&str> = CLASSIFICATION.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            known, types,
            "the classification names an unknown event type"
        );
    }

    #[test]
    fn personal_fields_name_their_subject() {
        let enrolled = json!({"cohort_id": "c1", "learner_id": "l1", "name": "A B"});
        let (path, subject) = personal_fields("learner_enrolled").next().unwrap();
        assert_eq!(
            (path, subject.id(&enrolled).as_deref()),
            ("name", Some("learner:l1"))
        );
        let filed = json!({"cohort_id": "c1", "complaint_id": "k1"});
        assert_eq!(Complaint.id(&filed).as_deref(), Some("complaint:c1:k1"));
        assert_eq!(
            Jury.id(&json!({"field_study_id": "f"})).as_deref(),
            Some("jury:f")
        );
        assert!(!has_personal("session_held"));
        assert!(has_personal("defence_scheduled"));
    }

    #[test]
    fn visits_nested_and_array_paths() {
        let mut payload = json!({"jury": [{"name": "A", "role": "professional"}, {"name": "B"}],
                                 "organisation": {"name": "O"}, "session_id": null});
        let mut seen = Vec::new();
        visit_mut(&mut payload, "jury[].name", &mut |v| {
            seen.push(v.clone());
            *v = json!("x");
        });
        visit_mut(&mut payload, "organisation.name", &mut |v| {
            seen.push(v.clone())
        });
        visit_mut(&mut payload, "session_id", &mut |v| seen.push(v.clone()));
        visit_mut(&mut payload, "missing[].name", &mut |v| {
            seen.push(v.clone())
        });
        assert_eq!(seen, vec![json!("A"), json!("B"), json!("O")]);
        assert_eq!(payload["jury"][1]["name"], json!("x"));
    }

    #[test]
    fn a_refusal_is_kept_without_the_personal_values_it_quotes() {
        let data = json!({"field_study_id": "fs-1", "defence_id": "d-1",
                          "name": "  Mme \"Zoé\" Quéré ", "reason": "a encadré le groupe"});
        let message = format!(
            "data.name: {:?} is not on the jury of defence d-1",
            "Mme \"Zoé\" Quéré"
        );
        let kept = redact("recuse_jury_member", &data, &message);
        assert_eq!(
            kept,
            format!("data.name: \"{WITHHELD}\" is not on the jury of defence d-1")
        );
        // Ids and other commands' fields stay.
        let other = redact("schedule_session", &data, "session d-1 of fs-1");
        assert_eq!(other, "session d-1 of fs-1");
        let commands: Vec<&str> = COMMAND_PERSONAL.iter().map(|(c, _)| *c).collect();
        let mut sorted = commands.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), commands.len(), "a command twice");
    }
}
