//! Upcasters: old event versions read as the current shape.
//!
//! The journal keeps every row as it was written (its hash covers that form); readers
//! upcast when they read. Every read path goes through [`upcast`]: `StoredEvent` rows (aggregate
//! load, projections, relay re-publication) and the audit history. A step takes one version to
//! the next; [`upcast`] chains the steps up to [`crate::event::current_version`].

use crate::event::current_version;
use serde_json::Value;

/// One step: (event type, from version) → (to version, payload transformation).
type Step = (&'static str, &'static str, &'static str, fn(Value) -> Value);

/// Every step, oldest first.
const STEPS: [Step; 2] = [
    // session_scheduled v1 → v2: the room became known; old sessions have none.
    ("session_scheduled", "1", "2", |mut payload| {
        if let Value::Object(map) = &mut payload {
            map.entry("room").or_insert(Value::Null);
        }
        payload
    }),
    // field_study_formed v1 → v2: a study may come from a split; older ones did not.
    ("field_study_formed", "1", "2", |mut payload| {
        if let Value::Object(map) = &mut payload {
            map.entry("split_from").or_insert(Value::Null);
        }
        payload
    }),
];

/// Whether a chain of steps takes `version` of `event_type` to the current version (true
/// when it is current): [`upcast`] then succeeds, so a caller may hand it the payload itself
/// rather than a copy.
pub fn reaches_current(event_type: &str, version: &str) -> bool {
    let target = current_version(event_type);
    let mut version = version;
    while version != target {
        match STEPS
            .iter()
            .find(|(t, from, _, _)| *t == event_type && *from == version)
        {
            Some((_, _, to, _)) => version = to,
            None => return false,
        }
    }
    true
}

/// `payload` of `event_type` at `version`, brought to the current version. Returns the new
/// version and payload (unchanged when already current).
///
/// # Errors
/// A sentence naming the version when no chain of steps reaches the current version (a row
/// from a newer writer, or a version this build never knew).
pub fn upcast(
    event_type: &str,
    version: &str,
    mut payload: Value,
) -> Result<(String, Value), String> {
    let mut version = version.to_owned();
    upcast_in_place(event_type, &mut version, &mut payload)?;
    Ok((version, payload))
}

/// As [`upcast`], in place: `version` and `payload` become the current ones. On an error
/// neither is changed.
///
/// # Errors
/// As [`upcast`].
pub fn upcast_in_place(
    event_type: &str,
    version: &mut String,
    payload: &mut Value,
) -> Result<(), String> {
    let target = current_version(event_type);
    if !reaches_current(event_type, version) {
        return Err(format!(
            "no upcaster from version {version} of {event_type} (this build reads version {target})"
        ));
    }
    while version.as_str() != target {
        // Always found: `reaches_current` walked the same steps.
        let Some((_, _, to, step)) = STEPS
            .iter()
            .find(|(t, from, _, _)| *t == event_type && *from == version.as_str())
        else {
            break;
        };
        *payload = step(std::mem::take(payload));
        *version = (*to).to_owned();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_scheduled_v1_gains_an_empty_room() {
        let (v, p) = upcast("session_scheduled", "1", json!({"session_id": "s1"})).unwrap();
        assert_eq!(
            (v.as_str(), p),
            ("2", json!({"session_id": "s1", "room": null}))
        );
        let (v, p) = upcast("session_scheduled", "2", json!({"room": "B12"})).unwrap();
        assert_eq!((v.as_str(), p), ("2", json!({"room": "B12"})));
    }

    #[test]
    fn field_study_formed_v1_comes_from_no_split() {
        let (v, p) = upcast("field_study_formed", "1", json!({"field_study_id": "fs"})).unwrap();
        assert_eq!(
            (v.as_str(), p),
            ("2", json!({"field_study_id": "fs", "split_from": null}))
        );
        let (v, p) = upcast("field_study_formed", "2", json!({"split_from": "fs-a"})).unwrap();
        assert_eq!((v.as_str(), p), ("2", json!({"split_from": "fs-a"})));
    }

    #[test]
    fn unknown_versions_are_refused() {
        assert!(upcast("session_scheduled", "3", json!({})).is_err());
        assert!(upcast("cohort_closed", "0", json!({})).is_err());
        assert_eq!(
            upcast("cohort_closed", "1", json!({"cohort_id": "c"}))
                .unwrap()
                .0,
            "1"
        );
    }
}
