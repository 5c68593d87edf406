//! JSON Schemas of the published language: one per event type (its payload, at its current
//! version), generated from the Rust types with schemars and committed under `events/schema/`
//! (a test fails when they drift). Draft 2020-12. Each property carries its data class
//! ([`crate::personal`]): `x-personal` (`true` or `false`), and `x-subject` for a personal one.

use crate::event::{
    current_version, CohortEvent, FieldStudyEvent, ProgrammeEvent, StreamKind, SubjectEvent,
};
use crate::personal::{self, Class};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Where the schemas are published (their `$id` prefix).
pub const SCHEMA_BASE: &str = "https://fieldtrail.example/schema/";

fn variants<T: JsonSchema>(stream_type: &str, out: &mut BTreeMap<String, Value>, annotate: bool) {
    let schema = schemars::schema_for!(T).to_value();
    let defs = schema.get("$defs").cloned().unwrap_or_else(|| json!({}));
    let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    for variant in one_of {
        let Some(event_type) = variant
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let mut payload = variant.as_object().cloned().unwrap_or_default();
        if let Some(Value::Object(properties)) = payload.get_mut("properties") {
            properties.remove("type");
        }
        if let Some(Value::Array(required)) = payload.get_mut("required") {
            required.retain(|r| r != "type");
        }
        let version = current_version(event_type);
        let name = if annotate {
            format!("{event_type}.v{version}.json")
        } else {
            event_type.to_owned()
        };
        let mut document = Map::new();
        document.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        document.insert("$id".into(), json!(format!("{SCHEMA_BASE}{name}")));
        document.insert("title".into(), json!(event_type));
        document.insert("x-stream-type".into(), json!(stream_type));
        document.insert("x-event-version".into(), json!(version));
        document.extend(payload);
        if defs.as_object().is_some_and(|d| !d.is_empty()) {
            document.insert("$defs".into(), defs.clone());
        }
        let mut document = Value::Object(document);
        if annotate {
            classify(event_type, &mut document);
        }
        out.insert(name, document);
    }
}

/// Publishes [`crate::personal::CLASSIFICATION`] in an event's schema: `x-personal` on every
/// classified property (`true` with `x-subject` for a personal one), nested objects' properties
/// annotated in the document's own `$defs`.
fn classify(event_type: &str, document: &mut Value) {
    for (path, class) in personal::fields_of(event_type).unwrap_or_default() {
        let Some(property) = locate(document, path) else {
            continue;
        };
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        match class {
            Class::Plain => {
                property.insert("x-personal".into(), json!(false));
            }
            Class::Personal(subject) => {
                property.insert("x-personal".into(), json!(true));
                property.insert("x-subject".into(), json!(subject.as_str()));
            }
        }
    }
}

/// The property node a classification path names in an event schema document (through
/// `$ref`s to its `$defs` and arrays' `items`).
fn locate<'a>(document: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut pointer = String::new();
    for (n, segment) in path.split('.').enumerate() {
        if n > 0 {
            // The object this segment is a field of: the definition the previous property
            // (or its array's items) refers to.
            let node = document.pointer(&pointer)?;
            let node = node.get("items").unwrap_or(node);
            let reference = node.get("$ref").and_then(Value::as_str)?;
            pointer = reference.trim_start_matches('#').to_owned();
        }
        pointer.push_str("/properties/");
        pointer.push_str(segment.trim_end_matches("[]"));
    }
    document.pointer_mut(&pointer)
}

/// The payload schema of every event type by event type, as schemars gives it (without the
/// classification's annotations): what the classification test compares with.
pub fn raw_event_schemas() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    variants::<ProgrammeEvent>(StreamKind::PROGRAMME, &mut out, false);
    variants::<CohortEvent>(StreamKind::COHORT, &mut out, false);
    variants::<FieldStudyEvent>(StreamKind::FIELD_STUDY, &mut out, false);
    variants::<SubjectEvent>(StreamKind::SUBJECT, &mut out, false);
    out
}

/// Every event type's payload schema, by file name (`<event_type>.v<version>.json`), plus
/// `envelope.json`, the schema of a NATS message body (the event envelope whose `payload` is
/// one of the event schemas).
pub fn event_schemas() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    variants::<ProgrammeEvent>(StreamKind::PROGRAMME, &mut out, true);
    variants::<CohortEvent>(StreamKind::COHORT, &mut out, true);
    variants::<FieldStudyEvent>(StreamKind::FIELD_STUDY, &mut out, true);
    variants::<SubjectEvent>(StreamKind::SUBJECT, &mut out, true);
    out.insert("envelope.json".to_owned(), envelope());
    out
}

fn envelope() -> Value {
    let text = |d: &str| json!({"type": "string", "description": d});
    let instant = |d: &str| json!({"type": "string", "format": "date-time", "description": d});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{SCHEMA_BASE}envelope.json"),
        "title": "fieldtrail event envelope (the body of every NATS message)",
        "type": "object",
        "additionalProperties": false,
        "required": ["event_id", "stream_type", "stream_id", "stream_version", "position", "event_type",
                     "event_version", "occurred_at", "recorded_at", "actor", "command_id",
                     "correlation_id", "causation_id"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid", "description": "Stable id; also Nats-Msg-Id and ce-id."},
            "stream_type": {"enum": ["programme", "cohort", "field_study", "subject"]},
            "stream_id": text("The aggregate's id."),
            "stream_version": {"type": "integer", "minimum": 1, "description": "1, 2, ... within the stream, no gaps."},
            "position": {"type": "integer", "minimum": 1, "description": "Global position in the journal."},
            "event_type": text("e.g. session_held; names the payload schema <event_type>.v<event_version>.json."),
            "event_version": text("The payload's version (after upcasting: always the current one)."),
            "occurred_at": instant("When it happened in the world (UTC, microseconds)."),
            "recorded_at": instant("When the journal recorded it (UTC, microseconds)."),
            "actor": text("Who issued the command, role:name (the authenticated principal)."),
            "reported_actor": {"type": ["string", "null"], "description": "What the client claimed as actor, when it differed."},
            "command_id": text("The command's idempotency key."),
            "correlation_id": text("The conversation it belongs to."),
            "causation_id": text("What caused it (the command id)."),
            "payload": {"type": "object", "description": "The event's fields: see the event type's schema. Its personal fields (x-personal) travel sealed, as stored: strings \"ft1:...\" (README, Personal data)."},
            "payload_omitted": {
                "type": "object",
                "description": "Present instead of payload when the event is larger than the NATS server's max_payload.",
                "required": ["bytes", "max_payload", "reason"],
                "properties": {"bytes": {"type": "integer"}, "max_payload": {"type": "integer"}, "reason": {"type": "string"}}
            }
        },
        "oneOf": [{"required": ["payload"]}, {"required": ["payload_omitted"]}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_schema_without_its_tag() {
        let schemas = event_schemas();
        assert_eq!(schemas.len(), 1 + 1 + 14 + 20 + 1);
        let formed = &schemas["field_study_formed.v2.json"];
        assert!(formed.pointer("/properties/split_from").is_some());
        assert!(schemas.contains_key("field_study_split.v1.json"));
        assert!(schemas.contains_key("complaint_answered.v1.json"));
        let scheduled = &schemas["session_scheduled.v2.json"];
        assert!(scheduled.pointer("/properties/room").is_some());
        assert!(scheduled.pointer("/properties/type").is_none());
        assert_eq!(scheduled["additionalProperties"], json!(false));
        assert!(schemas.contains_key("defence_deferred.v1.json"));
    }

    #[test]
    fn the_classification_is_published_and_personal_fields_are_strings() {
        let mut schemas = event_schemas();
        for (event_type, fields) in personal::CLASSIFICATION {
            let name = format!("{event_type}.v{}.json", current_version(event_type));
            let document = schemas
                .get_mut(&name)
                .expect("a schema per classified type");
            for (path, class) in *fields {
                let node = locate(document, path)
                    .expect("the path is in the schema")
                    .clone();
                let personal = matches!(class, Class::Personal(_));
                assert_eq!(node["x-personal"], json!(personal), "{name} {path}");
                if personal {
                    // Stored encrypted as a string: the stored payload keeps its schema.
                    let target = match node.get("$ref").and_then(Value::as_str) {
                        Some(r) => document.pointer(r.trim_start_matches('#')).unwrap(),
                        None => &node,
                    };
                    assert_eq!(target["type"], json!("string"), "{name} {path}");
                }
            }
        }
        let enrolled = &schemas["learner_enrolled.v1.json"];
        assert_eq!(
            enrolled.pointer("/properties/name/x-subject"),
            Some(&json!("learner"))
        );
    }
}

#[cfg(test)]
mod drift {
    //! The committed schemas (`events/schema/`) must equal the generated ones. To update them
    //! after a deliberate change: `FIELDTRAIL_UPDATE_SCHEMAS=1 cargo test -p fieldtrail-domain schema`.

    use super::event_schemas;
    use std::path::PathBuf;

    fn folder() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema")
    }

    #[test]
    fn committed_schemas_equal_the_code() {
        let generated = event_schemas();
        if std::env::var("FIELDTRAIL_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(folder()).unwrap();
            for entry in std::fs::read_dir(folder()).unwrap().flatten() {
                if entry.path().extension().is_some_and(|e| e == "json") {
                    std::fs::remove_file(entry.path()).unwrap();
                }
            }
            for (name, schema) in &generated {
                let text = serde_json::to_string_pretty(schema).unwrap() + "\n";
                std::fs::write(folder().join(name), text).unwrap();
            }
        }
        let mut committed: Vec<String> = std::fs::read_dir(folder())
            .expect("events/schema exists")
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".json"))
            .collect();
        committed.sort();
        assert_eq!(
            committed,
            generated.keys().cloned().collect::<Vec<_>>(),
            "schema files differ from the event types"
        );
        for (name, schema) in &generated {
            let text = std::fs::read_to_string(folder().join(name)).unwrap();
            let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(
                &on_disk == schema,
                "{name} drifted: regenerate with FIELDTRAIL_UPDATE_SCHEMAS=1"
            );
        }
    }
}
