//! The journal exported for an auditor (`fieldtrail audit export [--out FILE]`; `audit verify
//! --digest FILE` without `--export` checks the journal exported so in memory): JSON Lines,
//! in global-log order, checkable offline against a signed digest
//! (`fieldtrail audit verify --digest FILE --export FILE --public-key FILE`). The export holds
//! every committed event or fails: it never ends silently short
//! ([`crate::signing::digest::readable`]).
//!
//! ```text
//! {"fieldtrail_journal_export": 1}
//! {"event": {"position": 1, "tx_id": 812, "chain_version": 2, "stream_type": "programme", …, "prev_hash": "00…", "hash": "5f…"}}
//! …                                   one line per event, by (transaction id, position)
//! {"command": {"command_id": "c-0001", "command": "define_programme", "stream_type": …, "first_position": 1, "last_position": 1, "recorded_at": …}}
//! …                                   one line per command whose events are all above
//! {"end": {"events": 210, "commands": 184}}
//! ```
//!
//! An event line holds exactly the canonical form's members (ARCHITECTURE.md, "Hash chain"),
//! plus `hash` and `tx_id`: for a row of chain version 2, SHA-256 of the line's `event` object
//! without those two, in canonical JSON (Python: `json.dumps(obj, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=False)`), is its `hash`. Its `command` (the command's
//! name, present on every row written since the events keep it) is what a `command` line is
//! checked against: a ledger line carries nothing its events' hashes do not cover, for those
//! rows. A member the format does not have, in an event or a command line (or beside its
//! `event` / `command`), is a finding at the line's position: the hashes would not cover it,
//! so it is refused. A missing `end` line means a truncated file.

use chrono::{DateTime, Utc};
use fieldtrail_journal::chain::{self, SealedEvent};
use fieldtrail_journal::{Cursor, Journal, JournalError, LedgerRow};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The format's version (the first line's `fieldtrail_journal_export`).
pub const FORMAT: u64 = 1;

/// Events read per page.
const PAGE: i64 = 4096;

/// An event row as an export line's object.
pub fn event_line(e: &SealedEvent) -> Value {
    let mut m = Map::new();
    m.insert("position".into(), json!(e.position));
    m.insert("tx_id".into(), json!(e.tx_id));
    m.insert("chain_version".into(), json!(e.chain_version));
    m.insert("stream_type".into(), json!(e.stream_type));
    m.insert("stream_id".into(), json!(e.stream_id));
    m.insert("stream_version".into(), json!(e.stream_version));
    m.insert("event_id".into(), json!(e.event_id.to_string()));
    m.insert("event_type".into(), json!(e.event_type));
    m.insert("event_version".into(), json!(e.event_version));
    m.insert("payload".into(), e.payload.clone());
    m.insert(
        "occurred_at".into(),
        json!(chain::timestamp(&e.occurred_at)),
    );
    m.insert(
        "recorded_at".into(),
        json!(chain::timestamp(&e.recorded_at)),
    );
    m.insert("actor".into(), json!(e.actor));
    if let Some(reported) = &e.reported_actor {
        m.insert("reported_actor".into(), json!(reported));
    }
    if let Some(command) = &e.command {
        m.insert("command".into(), json!(command));
    }
    m.insert("command_id".into(), json!(e.command_id));
    m.insert("correlation_id".into(), json!(e.correlation_id));
    m.insert("causation_id".into(), json!(e.causation_id));
    m.insert("prev_hash".into(), json!(e.prev_hash.map(hex::encode)));
    m.insert("hash".into(), json!(e.hash.map(hex::encode)));
    Value::Object(m)
}

/// A ledger row as an export line's object.
pub fn command_line(l: &LedgerRow) -> Value {
    json!({"command_id": l.command_id, "command": l.command, "stream_type": l.stream_type,
           "stream_id": l.stream_id, "first_position": l.first_position,
           "last_position": l.last_position, "recorded_at": chain::timestamp(&l.recorded_at)})
}

/// An exported journal, read back.
#[derive(Clone, Debug, Default)]
pub struct JournalExport {
    /// The events, in the file's order.
    pub events: Vec<SealedEvent>,
    /// The command ledger's rows.
    pub ledger: Vec<LedgerRow>,
    /// Whether the file ends with its `end` line, and the counts there matched.
    pub complete: bool,
    /// What reading found wrong without refusing the file: members the format does not have.
    pub findings: Vec<crate::signing::digest::Finding>,
}

/// The members of an event line's object.
const EVENT_MEMBERS: [&str; 20] = [
    "position",
    "tx_id",
    "chain_version",
    "stream_type",
    "stream_id",
    "stream_version",
    "event_id",
    "event_type",
    "event_version",
    "payload",
    "occurred_at",
    "recorded_at",
    "actor",
    "reported_actor",
    "command",
    "command_id",
    "correlation_id",
    "causation_id",
    "prev_hash",
    "hash",
];

/// The members of a command line's object.
const COMMAND_MEMBERS: [&str; 7] = [
    "command_id",
    "command",
    "stream_type",
    "stream_id",
    "first_position",
    "last_position",
    "recorded_at",
];

/// The finding for the members of `object` (and of its line, `outer`, beside `kind`) the format
/// does not have; `None` when there are none.
fn unknown_members(
    outer: &Value,
    kind: &str,
    object: &Value,
    known: &[&str],
    position: i64,
    stream: String,
) -> Option<crate::signing::digest::Finding> {
    let mut names: Vec<String> = object
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| format!("{k:?}"))
        .collect();
    names.extend(
        outer
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| k.as_str() != kind)
            .map(|k| format!("{k:?} (beside {kind:?})")),
    );
    (!names.is_empty()).then(|| crate::signing::digest::Finding {
        position: Some(position),
        stream: Some(stream),
        reason: format!(
            "its {kind} line has members the export format does not have, which no hash covers: {}: added?",
            names.join(", ")
        ),
    })
}

fn text(v: &Value, key: &str, line: usize) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("line {line}: {key} is missing or not a string"))
}

fn int(v: &Value, key: &str, line: usize) -> Result<i64, String> {
    v.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("line {line}: {key} is missing or not an integer"))
}

fn time(v: &Value, key: &str, line: usize) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&text(v, key, line)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("line {line}: {key}: {e}"))
}

fn hash(v: &Value, key: &str) -> Option<chain::Hash> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| chain::hash_from_bytes(&b))
}

fn event(v: &Value, line: usize) -> Result<SealedEvent, String> {
    Ok(SealedEvent {
        position: int(v, "position", line)?,
        tx_id: v
            .get("tx_id")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("line {line}: tx_id is missing or not an integer"))?,
        chain_version: i16::try_from(int(v, "chain_version", line)?)
            .map_err(|_| format!("line {line}: chain_version out of range"))?,
        stream_type: text(v, "stream_type", line)?,
        stream_id: text(v, "stream_id", line)?,
        stream_version: int(v, "stream_version", line)?,
        event_id: uuid::Uuid::try_parse(&text(v, "event_id", line)?)
            .map_err(|e| format!("line {line}: event_id: {e}"))?,
        event_type: text(v, "event_type", line)?,
        event_version: text(v, "event_version", line)?,
        payload: v
            .get("payload")
            .cloned()
            .ok_or_else(|| format!("line {line}: payload is missing"))?,
        occurred_at: time(v, "occurred_at", line)?,
        recorded_at: time(v, "recorded_at", line)?,
        actor: text(v, "actor", line)?,
        reported_actor: v
            .get("reported_actor")
            .and_then(Value::as_str)
            .map(str::to_owned),
        command_id: text(v, "command_id", line)?,
        correlation_id: text(v, "correlation_id", line)?,
        causation_id: text(v, "causation_id", line)?,
        prev_hash: hash(v, "prev_hash"),
        hash: hash(v, "hash"),
        command: match v.get("command") {
            None => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => return Err(format!("line {line}: command is not a string")),
        },
    })
}

fn command(v: &Value, line: usize) -> Result<LedgerRow, String> {
    Ok(LedgerRow {
        command_id: text(v, "command_id", line)?,
        command: text(v, "command", line)?,
        stream_type: text(v, "stream_type", line)?,
        stream_id: text(v, "stream_id", line)?,
        first_position: int(v, "first_position", line)?,
        last_position: int(v, "last_position", line)?,
        recorded_at: time(v, "recorded_at", line)?,
    })
}

/// Reads an export file's text.
///
/// # Errors
/// A sentence naming the line when the text is not an export (a line that does not parse, or
/// gives one member twice, is
/// an error, not a finding: the file is not one fieldtrail wrote).
pub fn parse(text: &str) -> Result<JournalExport, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let first = lines.next().map(|(_, l)| l).unwrap_or_default();
    let header = strict_json(first).map_err(|e| format!("line 1: {e}"))?;
    if header
        .get("fieldtrail_journal_export")
        .and_then(Value::as_u64)
        != Some(FORMAT)
    {
        return Err(format!(
            "line 1: not a fieldtrail journal export (format {FORMAT}): {first:.80}"
        ));
    }
    let mut export = JournalExport::default();
    for (n, line) in lines {
        let number = n + 1;
        let value = strict_json(line).map_err(|e| format!("line {number}: {e}"))?;
        if let Some(e) = value.get("event") {
            let read = event(e, number)?;
            export.findings.extend(unknown_members(
                &value,
                "event",
                e,
                &EVENT_MEMBERS,
                read.position,
                read.stream(),
            ));
            export.events.push(read);
        } else if let Some(c) = value.get("command") {
            let read = command(c, number)?;
            export.findings.extend(unknown_members(
                &value,
                "command",
                c,
                &COMMAND_MEMBERS,
                read.first_position,
                format!("{}/{}", read.stream_type, read.stream_id),
            ));
            export.ledger.push(read);
        } else if let Some(end) = value.get("end") {
            export.complete = end.get("events").and_then(Value::as_u64)
                == Some(export.events.len() as u64)
                && end.get("commands").and_then(Value::as_u64) == Some(export.ledger.len() as u64);
        } else {
            return Err(format!(
                "line {number}: neither an event, a command nor the end"
            ));
        }
    }
    Ok(export)
}

/// Writes the export of `journal` to `out`, one line at a time: every event readable now in
/// global-log order, then the ledger rows of the commands whose events were all written
/// (a command whose events are not readable yet belongs to a later export), then `end`.
/// Returns (events, commands).
///
/// # Errors
/// The journal's errors; `out`'s errors as [`JournalError::Other`].
pub async fn write<W: FnMut(&[u8]) -> std::io::Result<()>>(
    journal: &Journal,
    mut out: W,
) -> Result<(u64, u64), JournalError> {
    let mut put = |value: &Value| -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(value).map_err(|e| JournalError::Other(e.to_string()))?;
        line.push(b'\n');
        out(&line).map_err(|e| JournalError::Other(format!("cannot write the export: {e}")))
    };
    // Every committed event, or an error: never a short export.
    crate::signing::digest::readable(journal).await?;
    put(&json!({"fieldtrail_journal_export": FORMAT}))?;
    let mut cursor = Cursor::default();
    let mut positions: HashSet<i64> = HashSet::new();
    loop {
        let page = journal.export_events(cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = Cursor {
            tx_id: last.tx_id,
            position: last.position,
        };
        for e in &page {
            positions.insert(e.position);
            put(&json!({"event": event_line(e)}))?;
        }
    }
    let mut commands = 0u64;
    for l in journal.export_ledger().await? {
        if positions.contains(&l.first_position) && positions.contains(&l.last_position) {
            put(&json!({"command": command_line(&l)}))?;
            commands += 1;
        }
    }
    let events = positions.len() as u64;
    put(&json!({"end": {"events": events, "commands": commands}}))?;
    Ok((events, commands))
}

/// One line of JSON, refusing an object that gives a member twice: serde_json keeps the last
/// value, and a reader that keeps the first would see another event than the one checked.
fn strict_json(line: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<NoDuplicates>(line).map(|v| v.0)
}

/// A JSON value read with every object's members distinct.
struct NoDuplicates(Value);

impl<'de> serde::Deserialize<'de> for NoDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NoDuplicatesVisitor)
            .map(NoDuplicates)
    }
}

struct NoDuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicatesVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(NoDuplicates(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let NoDuplicates(value) = map.next_value()?;
            if members.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "member {key:?} appears twice in one object"
                )));
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod strict_tests {
    use super::strict_json;

    #[test]
    fn a_member_given_twice_is_refused_at_any_depth() {
        assert!(strict_json(r#"{"a":1,"b":[{"c":2}]}"#).is_ok());
        let top = strict_json(r#"{"a":1,"a":2}"#).unwrap_err().to_string();
        assert!(top.contains("\"a\" appears twice"), "{top}");
        let deep = strict_json(r#"{"event":{"payload":{"x":"TAMPERED","x":"ok"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(deep.contains("\"x\" appears twice"), "{deep}");
    }
}
