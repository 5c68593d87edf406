//! The hash chain: the canonical form of an event, its SHA-256, the checks `audit verify` runs,
//! and the journal digest. Pure code: no I/O (the walk over the table is in [`crate::audit`]).
//!
//! **Canonical form** (ARCHITECTURE.md, "Hash chain"): the UTF-8 bytes of a JSON object
//! without whitespace whose keys are sorted by their UTF-8 bytes, with exactly these members:
//!
//! | key | value |
//! |---|---|
//! | `actor` | string |
//! | `causation_id` | string |
//! | `chain_version` | integer `2`; **absent** for chain version 1 |
//! | `command` | string, the command's name (its ledger row's `command`); **absent** when the row has none (written before it was stored) |
//! | `command_id` | string |
//! | `correlation_id` | string |
//! | `event_id` | string, the UUID in lower-case hyphenated form |
//! | `event_type` | string |
//! | `event_version` | string |
//! | `occurred_at` | string, UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always 6 fraction digits) |
//! | `payload` | the payload in canonical JSON (same rules, recursively; arrays keep their order) |
//! | `position` | integer, the event's global position; **absent** for chain version 1 |
//! | `prev_hash` | string, 64 lower-case hex digits: the previous event's `hash` in the stream, zeros for version 1 |
//! | `recorded_at` | string, same format as `occurred_at` |
//! | `reported_actor` | string: the client's own `actor` when it differs from `actor`; **absent** when the row has none |
//! | `stream_id` | string |
//! | `stream_type` | string |
//! | `stream_version` | integer |
//!
//! Strings are written as serde_json writes them (`"` and `\` escaped, control characters as
//! `\n`, `\t`, ... or `\u00XX`, everything else as UTF-8); numbers as serde_json writes them
//! (integers in decimal; payloads hold no fractions). `hash` = SHA-256 of those bytes.
//!
//! **Chain versions.** Each row records which form its hash covers (`chain_version`): version
//! 1 (rows written before fieldtrail hashed positions) lacks `chain_version` and `position`;
//! version 2 (every row written since) has both, so the event's global position, and with it
//! its place in the global log, is covered as well as its command id. A row keeps its version
//! forever (a copy keeps it too); a verifier picks the form by the row's version. The
//! transaction id is not covered (the database assigns it at the first write).
//!
//! **The command's name.** Every row written since the events table has a `command` column
//! stores the name of the command that appended it, and its hash covers it (like
//! `reported_actor`, the member is absent when the column is NULL, so older rows keep their
//! hash, whatever their chain version). The command ledger's row of that command can then be
//! checked against its events: its name, its stream, its first and last positions, its time.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write as _;
use uuid::Uuid;

/// A SHA-256 value (32 bytes).
pub type Hash = [u8; 32];

/// The `prev_hash` of every stream's version 1: 32 zero bytes.
pub const GENESIS: Hash = [0; 32];

/// The chain version of rows hashed without their global position (written before it was
/// covered; also what the `chain_version` column says for them).
pub const CHAIN_V1: i16 = 1;
/// The chain version every append writes: the canonical form includes `chain_version` and
/// `position`.
pub const CHAIN_V2: i16 = 2;
/// The chain version new rows get.
pub const CURRENT_CHAIN: i16 = CHAIN_V2;

/// Whether this build knows the canonical form of chain version `v`.
pub fn known_chain(v: i16) -> bool {
    v == CHAIN_V1 || v == CHAIN_V2
}

/// What an event's hash covers (see the module documentation for the canonical form).
#[derive(Clone, Copy, Debug)]
pub struct ChainedEvent<'a> {
    /// `programme`, `cohort` or `field_study`.
    pub stream_type: &'a str,
    /// The stream's id.
    pub stream_id: &'a str,
    /// The event's version in its stream (1, 2, ...).
    pub stream_version: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// e.g. `session_held`.
    pub event_type: &'a str,
    /// e.g. `1`.
    pub event_version: &'a str,
    /// The stored payload (no type tag).
    pub payload: &'a Value,
    /// When it happened in the world (microsecond precision, as stored).
    pub occurred_at: DateTime<Utc>,
    /// When the journal recorded it (microsecond precision, as stored).
    pub recorded_at: DateTime<Utc>,
    /// `role:name`.
    pub actor: &'a str,
    /// The command's idempotency key.
    pub command_id: &'a str,
    /// Correlation id.
    pub correlation_id: &'a str,
    /// Causation id.
    pub causation_id: &'a str,
    /// The previous event's hash in the stream ([`GENESIS`] for version 1).
    pub prev_hash: &'a Hash,
    /// The client's own `actor`, when it differs from `actor` (absent from the canonical form
    /// when `None`, so rows written before the column existed keep their hash).
    pub reported_actor: Option<&'a str>,
    /// Which canonical form: [`CHAIN_V1`] (without the next two members) or [`CHAIN_V2`].
    pub chain_version: i16,
    /// The event's global position (in the canonical form from [`CHAIN_V2`] on).
    pub position: i64,
    /// The name of the command that appended it (absent from the canonical form when `None`,
    /// so rows written before the column existed keep their hash).
    pub command: Option<&'a str>,
}

/// An instant as the canonical form writes it: UTC, microseconds, `Z`
/// (`2025-09-15T07:00:00.000000Z`). Finer digits are dropped (PostgreSQL keeps microseconds).
pub fn timestamp(t: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(27);
    push_timestamp(&mut out, t);
    String::from_utf8(out).unwrap_or_default()
}

fn push_timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    let micros = (t.nanosecond() % 1_000_000_000) / 1000;
    if (0..=9999).contains(&t.year()) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    } else {
        let _ = write!(out, "{}.{micros:06}Z", t.format("%Y-%m-%dT%H:%M:%S"));
    }
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends the canonical JSON of `value` to `out`: no whitespace, object keys sorted by
/// their UTF-8 bytes, arrays in order, strings and numbers as serde_json writes them.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_string(out, key);
                out.push(b':');
                canonical_json(item, out);
            }
            out.push(b'}');
        }
    }
}

/// The canonical form of an event: the bytes its hash is taken over (UTF-8).
pub fn canonical_bytes(e: &ChainedEvent<'_>) -> Vec<u8> {
    canonical_bytes_with(e, None)
}

fn canonical_bytes_with(e: &ChainedEvent<'_>, canonical_payload: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(640);
    let mut uuid = [0u8; 36];
    let mut prev = [0u8; 64];
    out.extend_from_slice(b"{\"actor\":");
    push_string(&mut out, e.actor);
    out.extend_from_slice(b",\"causation_id\":");
    push_string(&mut out, e.causation_id);
    let positioned = e.chain_version >= CHAIN_V2;
    if positioned {
        let _ = write!(out, ",\"chain_version\":{}", e.chain_version);
    }
    if let Some(command) = e.command {
        out.extend_from_slice(b",\"command\":");
        push_string(&mut out, command);
    }
    out.extend_from_slice(b",\"command_id\":");
    push_string(&mut out, e.command_id);
    out.extend_from_slice(b",\"correlation_id\":");
    push_string(&mut out, e.correlation_id);
    out.extend_from_slice(b",\"event_id\":\"");
    out.extend_from_slice(e.event_id.hyphenated().encode_lower(&mut uuid).as_bytes());
    out.extend_from_slice(b"\",\"event_type\":");
    push_string(&mut out, e.event_type);
    out.extend_from_slice(b",\"event_version\":");
    push_string(&mut out, e.event_version);
    out.extend_from_slice(b",\"occurred_at\":\"");
    push_timestamp(&mut out, &e.occurred_at);
    out.extend_from_slice(b"\",\"payload\":");
    match canonical_payload {
        Some(bytes) => out.extend_from_slice(bytes),
        None => canonical_json(e.payload, &mut out),
    }
    if positioned {
        let _ = write!(out, ",\"position\":{}", e.position);
    }
    out.extend_from_slice(b",\"prev_hash\":\"");
    if hex::encode_to_slice(e.prev_hash, &mut prev).is_ok() {
        out.extend_from_slice(&prev);
    }
    out.extend_from_slice(b"\",\"recorded_at\":\"");
    push_timestamp(&mut out, &e.recorded_at);
    out.push(b'"');
    if let Some(reported) = e.reported_actor {
        out.extend_from_slice(b",\"reported_actor\":");
        push_string(&mut out, reported);
    }
    out.extend_from_slice(b",\"stream_id\":");
    push_string(&mut out, e.stream_id);
    out.extend_from_slice(b",\"stream_type\":");
    push_string(&mut out, e.stream_type);
    let _ = write!(out, ",\"stream_version\":{}}}", e.stream_version);
    out
}

/// The canonical form of an event as text ([`canonical_bytes`]).
pub fn canonical(e: &ChainedEvent<'_>) -> String {
    String::from_utf8(canonical_bytes(e)).unwrap_or_default()
}

/// The event's hash: SHA-256 of [`canonical_bytes`].
pub fn event_hash(e: &ChainedEvent<'_>) -> Hash {
    Sha256::digest(canonical_bytes(e)).into()
}

/// As [`event_hash`], with the payload given already in canonical JSON (`e.payload` is then
/// ignored): what verification uses with [`canonical_json_text`].
pub fn event_hash_with_payload(e: &ChainedEvent<'_>, canonical_payload: &[u8]) -> Hash {
    Sha256::digest(canonical_bytes_with(e, Some(canonical_payload))).into()
}

/// The canonical JSON of a JSON text (as PostgreSQL prints a `jsonb`), without building a
/// tree, when it can be done exactly: `None` when the text holds a string with an escape
/// sequence, a number that is not a plain integer of at most 18 digits, or is not valid JSON.
/// The caller then parses it and uses [`canonical_json`], which is the reference; when this
/// answers, the bytes are the same.
pub fn canonical_json_text(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut reader = TextReader { text, at: 0 };
    reader.value(out)?;
    reader.skip_blanks();
    (reader.at == text.len()).then_some(())
}

struct TextReader<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> TextReader<'a> {
    fn skip_blanks(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_blanks();
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes, quotes included.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at - 1;
        let length = self.text.get(self.at..)?.iter().position(|b| *b == b'"')?;
        let inner = self.text.get(self.at..self.at + length)?;
        if inner.iter().any(|b| *b == b'\\' || *b < 0x20) {
            return None;
        }
        self.at += length + 1;
        self.text.get(start..self.at)
    }

    fn value(&mut self, out: &mut Vec<u8>) -> Option<()> {
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut members: Vec<(&'a [u8], Vec<u8>)> = Vec::new();
                if self.peek()? == b'}' {
                    self.at += 1;
                } else {
                    loop {
                        let key = self.string()?;
                        self.expect(b':')?;
                        let mut item = Vec::new();
                        self.value(&mut item)?;
                        members.push((key, item));
                        match self.peek()? {
                            b',' => self.at += 1,
                            b'}' => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                // Keys without escapes: their quoted bytes sort as the keys do.
                members.sort_unstable_by(|a, b| a.0[1..a.0.len() - 1].cmp(&b.0[1..b.0.len() - 1]));
                out.push(b'{');
                for (i, (key, item)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    out.push(b':');
                    out.extend_from_slice(item);
                }
                out.push(b'}');
                Some(())
            }
            b'[' => {
                self.at += 1;
                out.push(b'[');
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    let mut first = true;
                    loop {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        self.value(out)?;
                        match self.peek()? {
                            b',' => self.at += 1,
                            b']' => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push(b']');
                Some(())
            }
            b'"' => {
                out.extend_from_slice(self.string()?);
                Some(())
            }
            b't' | b'f' | b'n' => {
                let rest = self.text.get(self.at..)?;
                let word: &[u8] = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|w| rest.starts_with(w))?;
                self.at += word.len();
                out.extend_from_slice(word);
                Some(())
            }
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                let digits = usize::from(self.text[start] == b'-');
                let end = self.text[start + digits..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(self.text.len(), |n| start + digits + n);
                let number = &self.text[start..end];
                let body = &number[digits..];
                let plain = !body.is_empty()
                    && body.len() <= 18
                    && ((body == b"0" && digits == 0) || body[0] != b'0');
                let next = self.text.get(end).copied();
                if !plain || matches!(next, Some(b'.' | b'e' | b'E')) {
                    return None;
                }
                self.at = end;
                out.extend_from_slice(number);
                Some(())
            }
            _ => None,
        }
    }
}

/// A 32-byte hash from a `bytea` column, `None` when it is not 32 bytes long.
pub fn hash_from_bytes(bytes: &[u8]) -> Option<Hash> {
    Hash::try_from(bytes).ok()
}

/// The Merkle tree hash of `leaves` (RFC 6962, section 2.1): SHA-256 of the empty string for
/// no leaf; `SHA-256(0x00 || leaf)` for one; `SHA-256(0x01 || left || right)` above, split at
/// the largest power of two below the number of leaves.
pub fn merkle_root<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(leaf.as_ref());
            h.finalize().into()
        }
        _ => {
            let mut k = 1;
            while k * 2 < leaves.len() {
                k *= 2;
            }
            let (left, right) = leaves.split_at(k);
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(merkle_root(left));
            h.update(merkle_root(right));
            h.finalize().into()
        }
    }
}

/// The leaf of a stream head in the journal digest: the UTF-8 bytes of
/// `"<stream_type>/<stream_id> <version> <hash hex>"`.
pub fn head_leaf(stream_type: &str, stream_id: &str, version: i64, hash: &Hash) -> String {
    format!("{stream_type}/{stream_id} {version} {}", hex::encode(hash))
}

/// The journal digest: the Merkle root ([`merkle_root`]) over the heads of every stream, as
/// `(stream_type, stream_id, version, hash)`, leaves ([`head_leaf`]) ordered by stream type
/// then stream id (UTF-8 bytes).
pub fn journal_digest(heads: &[(String, String, i64, Hash)]) -> Hash {
    let mut sorted: Vec<&(String, String, i64, Hash)> = heads.iter().collect();
    sorted.sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    let leaves: Vec<String> = sorted
        .into_iter()
        .map(|(t, i, v, h)| head_leaf(t, i, *v, h))
        .collect();
    merkle_root(&leaves)
}

/// An event as stored, with its chain columns: what verification reads.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedEvent {
    /// Global position.
    pub position: i64,
    /// Writing transaction id (`xid8`).
    pub tx_id: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Stream type.
    pub stream_type: String,
    /// Stream id.
    pub stream_id: String,
    /// Version in the stream.
    pub stream_version: i64,
    /// Event type.
    pub event_type: String,
    /// Event type version.
    pub event_version: String,
    /// Payload.
    pub payload: Value,
    /// When it happened in the world.
    pub occurred_at: DateTime<Utc>,
    /// When the journal recorded it.
    pub recorded_at: DateTime<Utc>,
    /// `role:name`.
    pub actor: String,
    /// Command id.
    pub command_id: String,
    /// Correlation id.
    pub correlation_id: String,
    /// Causation id.
    pub causation_id: String,
    /// Stored `prev_hash` (`None`: missing or not 32 bytes).
    pub prev_hash: Option<Hash>,
    /// Stored `hash` (`None`: missing or not 32 bytes).
    pub hash: Option<Hash>,
    /// The client's own actor, if it differs from `actor`.
    pub reported_actor: Option<String>,
    /// Which canonical form its hash covers ([`CHAIN_V1`], [`CHAIN_V2`]).
    pub chain_version: i16,
    /// The name of the command that appended it (`None` for rows written before it was
    /// stored).
    pub command: Option<String>,
}

impl SealedEvent {
    /// The hash of this row's content with its stored `prev_hash` (`None` without one, or
    /// when its chain version is not one this build knows).
    pub fn recompute(&self) -> Option<Hash> {
        let prev_hash = self.prev_hash.as_ref()?;
        if !known_chain(self.chain_version) {
            return None;
        }
        Some(event_hash(&ChainedEvent {
            stream_type: &self.stream_type,
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: &self.event_type,
            event_version: &self.event_version,
            payload: &self.payload,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            actor: &self.actor,
            command_id: &self.command_id,
            correlation_id: &self.correlation_id,
            causation_id: &self.causation_id,
            prev_hash,
            reported_actor: self.reported_actor.as_deref(),
            chain_version: self.chain_version,
            position: self.position,
            command: self.command.as_deref(),
        }))
    }

    /// Whether the stored hash is the hash of the stored content (false when either chain
    /// column is missing).
    pub fn content_matches(&self) -> bool {
        match (self.hash, self.recompute()) {
            (Some(stored), Some(computed)) => stored == computed,
            _ => false,
        }
    }

    /// `type/id`.
    pub fn stream(&self) -> String {
        format!("{}/{}", self.stream_type, self.stream_id)
    }
}

/// What the walk of `audit verify` keeps of a row: its place in its stream and in the global
/// log, its chain columns, and whether its content matches its hash (computed beforehand,
/// possibly on another thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLink {
    /// Stream type.
    pub stream_type: String,
    /// Stream id.
    pub stream_id: String,
    /// Version in the stream.
    pub stream_version: i64,
    /// Global position.
    pub position: i64,
    /// Writing transaction id.
    pub tx_id: u64,
    /// Stored `prev_hash`.
    pub prev_hash: Option<Hash>,
    /// Stored `hash`.
    pub hash: Option<Hash>,
    /// Whether the stored hash is the hash of the stored content ([`SealedEvent::content_matches`]).
    pub content_matches: bool,
    /// The row's chain version ([`CHAIN_V1`], [`CHAIN_V2`]).
    pub chain_version: i16,
}

impl SealedEvent {
    /// The row's [`ChainLink`], checking its content.
    pub fn link(&self) -> ChainLink {
        ChainLink {
            stream_type: self.stream_type.clone(),
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            position: self.position,
            tx_id: self.tx_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
            content_matches: self.content_matches(),
            chain_version: self.chain_version,
        }
    }
}

/// Where a stream's chain breaks first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    /// `type/id`.
    pub stream: String,
    /// The first stream version that does not verify.
    pub version: i64,
    /// Where in the global log: the position of the row found there, of the first row after
    /// a missing version, or (for missing last versions) the position the command ledger
    /// records for the stream's last event. `None` only when none of these is known.
    pub position: Option<i64>,
    /// What is wrong, in a sentence.
    pub reason: String,
}

/// Checks one stream's rows read in stream-version order; returns the first break. This is
/// the precise diagnosis `audit verify` gives for a stream the walk found broken.
pub fn diagnose(rows: &[SealedEvent]) -> Option<Break> {
    let mut previous: Option<&SealedEvent> = None;
    for (i, row) in rows.iter().enumerate() {
        let expected = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
        let at = |reason: String| Break {
            stream: row.stream(),
            version: expected,
            position: Some(row.position),
            reason,
        };
        if row.stream_version != expected {
            let reason = if row.stream_version > expected {
                let before = previous
                    .map(|p| format!(" (position {})", p.position))
                    .unwrap_or_default();
                format!(
                    "version {expected} is missing (deleted?): the stream goes from version {}{before} to version {} (position {})",
                    expected - 1,
                    row.stream_version,
                    row.position
                )
            } else {
                format!("version {} appears more than once", row.stream_version)
            };
            // Named at the first row after the gap (or the repeated row): where the stream
            // breaks in the global log.
            return Some(at(reason));
        }
        if let Some(reason) = row_fault(row, previous) {
            return Some(at(reason));
        }
        previous = Some(row);
    }
    None
}

/// What is wrong with `row` given the previous row of its stream, checked in this order:
/// chain columns present, content matches the hash, `prev_hash` links to the previous hash,
/// global order (position and transaction id) agrees with the version order.
fn row_fault(row: &SealedEvent, previous: Option<&SealedEvent>) -> Option<String> {
    let (Some(_), Some(prev_hash)) = (row.hash, row.prev_hash) else {
        return Some("it has no hash (written without the chain, or its hash was erased)".into());
    };
    if !known_chain(row.chain_version) {
        return Some(unknown_chain(row.chain_version));
    }
    if !row.content_matches() {
        return Some(
            "its content no longer matches its hash: the row was changed after it was written"
                .into(),
        );
    }
    let linked = previous.and_then(|p| p.hash).unwrap_or(GENESIS);
    if prev_hash != linked {
        return Some(match previous {
            Some(p) => format!(
                "its prev_hash is not the hash of version {}: an event was removed, replaced or reordered before it",
                p.stream_version
            ),
            None => "it is version 1 but its prev_hash is not the genesis value (zeros): events were removed before it".into(),
        });
    }
    if let Some(p) = previous {
        if row.position <= p.position || row.tx_id < p.tx_id {
            return Some(format!(
                "it comes before version {} in the global log (position {} after {}): reordered",
                p.stream_version, row.position, p.position
            ));
        }
    }
    None
}

fn unknown_chain(version: i16) -> String {
    format!(
        "its chain version {version} is not one this build knows ({CHAIN_V1} or {CHAIN_V2}): the row was changed, or it was written by a newer fieldtrail"
    )
}

#[derive(Clone, Debug, Default)]
struct StreamState {
    next_version: i64,
    last_hash: Option<Hash>,
    last_position: i64,
    last_tx: u64,
    last_version: i64,
    head: Option<(i64, Hash)>,
    head_at: Option<(i64, Hash)>,
    ledger_max: Option<i64>,
    broken: Option<Break>,
}

/// The outcome of `audit verify`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Rows read.
    pub events: u64,
    /// Streams found (in the journal or the command ledger).
    pub streams: u64,
    /// Highest global position read (0 for an empty journal).
    pub head_position: i64,
    /// The journal digest over every stream head, hex ([`journal_digest`]).
    pub digest: String,
    /// The digest over the heads as they stood at a global position, when asked.
    pub digest_at: Option<DigestAt>,
    /// Every broken stream's first break, by stream.
    pub breaks: Vec<Break>,
    /// The last row read, in the walk's order (for a walk in global-log order, the cursor
    /// that ends the cut it read), with its hash; `None` for an empty journal.
    pub last: Option<LogPoint>,
}

/// One row's place in the global log and its hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPoint {
    /// Writing transaction id.
    pub tx_id: u64,
    /// Global position.
    pub position: i64,
    /// Its stored `hash`, hex (`None` when it has none).
    pub hash: Option<String>,
}

/// Where a cut of the journal ends, for [`JournalCheck::with_cut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutAt {
    /// Every row at a global position `<=` this one.
    Position(i64),
    /// Every row at or before this cursor of the global log, ordered by (transaction id,
    /// position): what a cut read below the horizon holds, and stays final.
    Cursor {
        /// The last row's transaction id.
        tx_id: u64,
        /// The last row's position.
        position: i64,
    },
}

impl CutAt {
    /// Whether the row at (`tx_id`, `position`) is inside the cut.
    pub fn covers(self, tx_id: u64, position: i64) -> bool {
        match self {
            Self::Position(at) => position <= at,
            Self::Cursor {
                tx_id: t,
                position: p,
            } => (tx_id, position) <= (t, p),
        }
    }

    /// The order rows of the cut are compared in to find its last one.
    fn key(self, tx_id: u64, position: i64) -> (u64, i64) {
        match self {
            Self::Position(_) => (0, position),
            Self::Cursor { .. } => (tx_id, position),
        }
    }

    /// The cut's global position.
    pub fn position(self) -> i64 {
        match self {
            Self::Position(p) | Self::Cursor { position: p, .. } => p,
        }
    }
}

impl VerifyReport {
    /// Whether every stream verified.
    pub fn intact(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// The journal digest as of a global position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DigestAt {
    /// The position (events at positions `<=` it count).
    pub position: i64,
    /// Events at or before it.
    pub events: u64,
    /// The digest over the stream heads at that position, hex.
    pub digest: String,
    /// The hash of the cut's last row (highest position, or the cursor's row), hex.
    pub head_hash: Option<String>,
}

/// The single pass of `audit verify` over the journal in global-position order: it follows
/// every stream's chain and finds the streams that break (and a first guess of where). Pure:
/// feed it rows, then ask [`JournalCheck::broken_streams`] and [`JournalCheck::finish`].
#[derive(Debug, Default)]
pub struct JournalCheck {
    streams: HashMap<(String, String), StreamState>,
    events: u64,
    events_at: u64,
    head_position: i64,
    at: Option<CutAt>,
    last_at: Option<((u64, i64), Option<Hash>)>,
    last: Option<LogPoint>,
}

impl JournalCheck {
    /// A check that also computes the digest at `at_position`, knowing from the command
    /// ledger the highest global position it recorded for each stream (`type`, `id`, position).
    pub fn new(ledger: Vec<(String, String, i64)>, at_position: Option<i64>) -> Self {
        Self::with_cut(ledger, at_position.map(CutAt::Position))
    }

    /// As [`JournalCheck::new`], with the digest at any [`CutAt`].
    pub fn with_cut(ledger: Vec<(String, String, i64)>, at: Option<CutAt>) -> Self {
        let mut streams = HashMap::with_capacity(ledger.len());
        for (stream_type, stream_id, max) in ledger {
            streams.insert(
                (stream_type, stream_id),
                StreamState {
                    next_version: 1,
                    ledger_max: Some(max),
                    ..StreamState::default()
                },
            );
        }
        Self {
            streams,
            at,
            ..Self::default()
        }
    }

    /// Feeds the next row (global-position order).
    pub fn feed(&mut self, row: ChainLink) {
        let content_matches = row.content_matches;
        self.events += 1;
        self.head_position = self.head_position.max(row.position);
        self.last = Some(LogPoint {
            tx_id: row.tx_id,
            position: row.position,
            hash: row.hash.map(hex::encode),
        });
        let in_cut = self.at.is_some_and(|at| at.covers(row.tx_id, row.position));
        if let (true, Some(at)) = (in_cut, self.at) {
            let key = at.key(row.tx_id, row.position);
            if self.last_at.as_ref().is_none_or(|(k, _)| key > *k) {
                self.last_at = Some((key, row.hash));
            }
        }
        let stream = format!("{}/{}", row.stream_type, row.stream_id);
        let key = (row.stream_type, row.stream_id);
        let state = self.streams.entry(key).or_insert_with(|| StreamState {
            next_version: 1,
            ..StreamState::default()
        });
        if let Some(hash) = row.hash {
            state.head = Some((row.stream_version, hash));
            if in_cut {
                state.head_at = Some((row.stream_version, hash));
            }
        }
        if in_cut {
            self.events_at += 1;
        }
        if state.broken.is_some() {
            return;
        }
        let expected = state.next_version;
        let fault = if row.stream_version != expected {
            Some(format!(
                "version {expected} is missing or out of place: version {} comes next in the global log",
                row.stream_version
            ))
        } else if row.hash.is_none() || row.prev_hash.is_none() {
            Some("it has no hash (written without the chain, or its hash was erased)".to_owned())
        } else if !known_chain(row.chain_version) {
            Some(unknown_chain(row.chain_version))
        } else if !content_matches {
            Some(
                "its content no longer matches its hash: the row was changed after it was written"
                    .to_owned(),
            )
        } else if row.prev_hash != Some(state.last_hash.unwrap_or(GENESIS)) {
            Some(format!(
                "its prev_hash is not the hash of version {}",
                expected - 1
            ))
        } else if expected > 1 && row.tx_id < state.last_tx {
            Some(format!(
                "it was committed before version {} (transaction order): reordered",
                expected - 1
            ))
        } else if state.ledger_max.is_some_and(|max| row.position > max) {
            Some(format!(
                "no command in the command ledger appended it (the ledger records this stream up to position {}): inserted around the journal?",
                state.ledger_max.unwrap_or_default()
            ))
        } else {
            None
        };
        match fault {
            Some(reason) => {
                state.broken = Some(Break {
                    stream,
                    version: expected,
                    position: Some(row.position),
                    reason,
                });
            }
            None => {
                state.next_version = expected + 1;
                state.last_hash = row.hash;
                state.last_position = row.position;
                state.last_tx = row.tx_id;
                state.last_version = row.stream_version;
            }
        }
    }

    /// The streams (`type`, `id`) found broken so far, sorted: those to diagnose precisely
    /// with [`diagnose`] over their rows in version order.
    pub fn broken_streams(&self) -> Vec<(String, String)> {
        let mut broken: Vec<(String, String)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.broken.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        broken.sort();
        broken
    }

    /// The report. `diagnosed` holds the precise first break of the streams
    /// [`JournalCheck::broken_streams`] named (a stream missing from it keeps the walk's guess).
    /// A stream whose last events the command ledger records but the journal lacks breaks at
    /// the first missing version.
    pub fn finish(self, diagnosed: HashMap<(String, String), Break>) -> VerifyReport {
        let mut breaks = Vec::new();
        let mut heads = Vec::new();
        let mut heads_at = Vec::new();
        let streams = self.streams.len() as u64;
        for ((stream_type, stream_id), state) in self.streams {
            if let Some((version, hash)) = state.head {
                heads.push((stream_type.clone(), stream_id.clone(), version, hash));
            }
            if let Some((version, hash)) = state.head_at {
                heads_at.push((stream_type.clone(), stream_id.clone(), version, hash));
            }
            let key = (stream_type, stream_id);
            if let Some(walked) = state.broken {
                breaks.push(diagnosed.get(&key).cloned().unwrap_or(walked));
            } else if let Some(max) = state.ledger_max.filter(|max| *max > state.last_position) {
                let version = state.last_version + 1;
                // Named at the position the ledger records the stream's last event at: the
                // position of a missing event.
                breaks.push(Break {
                    stream: format!("{}/{}", key.0, key.1),
                    version,
                    position: Some(max),
                    reason: if state.last_version == 0 {
                        format!("the stream has no events but the command ledger records events of it up to position {max}: deleted?")
                    } else {
                        format!(
                            "version {version} is missing (deleted?): the stream ends at version {} (position {}) but the command ledger records events of it up to position {max}",
                            state.last_version, state.last_position
                        )
                    },
                });
            }
        }
        breaks.sort_by(|a, b| a.stream.cmp(&b.stream));
        VerifyReport {
            events: self.events,
            streams,
            head_position: self.head_position,
            digest: hex::encode(journal_digest(&heads)),
            digest_at: self.at.map(|at| DigestAt {
                position: at.position(),
                events: self.events_at,
                digest: hex::encode(journal_digest(&heads_at)),
                head_hash: self.last_at.and_then(|(_, h)| h).map(hex::encode),
            }),
            breaks,
            last: self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A chained stream of `n` events at positions 10, 20, ...
    fn stream(stream_id: &str, n: i64) -> Vec<SealedEvent> {
        stream_at(stream_id, n, 0)
    }

    /// As [`stream`], at positions 10 + `offset`, 20 + `offset`, ...
    fn stream_at(stream_id: &str, n: i64, offset: i64) -> Vec<SealedEvent> {
        let mut rows: Vec<SealedEvent> = Vec::new();
        let mut prev = GENESIS;
        for v in 1..=n {
            let mut row = SealedEvent {
                position: v * 10 + offset,
                tx_id: 100 + v as u64,
                event_id: Uuid::from_u128(v as u128),
                stream_type: "cohort".into(),
                stream_id: stream_id.into(),
                stream_version: v,
                event_type: "cohort_closed".into(),
                event_version: "1".into(),
                payload: json!({"cohort_id": stream_id, "n": v}),
                occurred_at: at("2025-09-15T09:00:00+02:00"),
                recorded_at: at("2026-11-29T07:45:48.123456Z"),
                actor: "staff:coordinator".into(),
                command_id: format!("c{v}"),
                correlation_id: format!("c{v}"),
                causation_id: format!("c{v}"),
                prev_hash: Some(prev),
                hash: None,
                reported_actor: None,
                chain_version: CHAIN_V2,
                command: Some("close_cohort".into()),
            };
            row.hash = row.recompute();
            prev = row.hash.unwrap();
            rows.push(row);
        }
        rows
    }

    fn walk(rows: &[SealedEvent], ledger: Vec<(String, String, i64)>) -> VerifyReport {
        let mut check = JournalCheck::new(ledger, None);
        let mut sorted: Vec<&SealedEvent> = rows.iter().collect();
        sorted.sort_by_key(|r| r.position);
        for row in sorted {
            check.feed(row.link());
        }
        let mut diagnosed = HashMap::new();
        for (t, i) in check.broken_streams() {
            let mut of: Vec<SealedEvent> = rows
                .iter()
                .filter(|r| r.stream_type == t && r.stream_id == i)
                .cloned()
                .collect();
            of.sort_by_key(|r| r.stream_version);
            if let Some(b) = diagnose(&of) {
                diagnosed.insert((t, i), b);
            }
        }
        check.finish(diagnosed)
    }

    #[test]
    fn canonical_form_is_pinned() {
        let payload = json!({"z": [1, {"b": true, "a": null}], "é": "l'été \"x\"\n", "a": -3});
        let e = ChainedEvent {
            stream_type: "cohort",
            stream_id: "c1",
            stream_version: 2,
            event_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
            event_type: "session_held",
            event_version: "1",
            payload: &payload,
            occurred_at: at("2025-09-15T09:00:00.1234569+02:00"),
            recorded_at: at("2026-11-29T07:45:48Z"),
            actor: "staff:coordinator",
            command_id: "c-1",
            correlation_id: "c-1",
            causation_id: "c-1",
            prev_hash: &[0xab; 32],
            reported_actor: None,
            chain_version: CHAIN_V1,
            position: 7,
            command: None,
        };
        let text = canonical(&e);
        assert_eq!(
            text,
            concat!(
                r#"{"actor":"staff:coordinator","causation_id":"c-1","command_id":"c-1","correlation_id":"c-1","#,
                r#""event_id":"01920000-0000-7000-8000-000000000001","event_type":"session_held","event_version":"1","#,
                r#""occurred_at":"2025-09-15T07:00:00.123456Z","#,
                r#""payload":{"a":-3,"z":[1,{"a":null,"b":true}],"é":"l'été \"x\"\n"},"#,
                r#""prev_hash":"abababababababababababababababababababababababababababababababab","#,
                r#""recorded_at":"2026-11-29T07:45:48.000000Z","stream_id":"c1","stream_type":"cohort","stream_version":2}"#
            )
        );
        // Checked independently in Python: hashlib.sha256(json.dumps(obj, sort_keys=True,
        // separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
        assert_eq!(
            hex::encode(event_hash(&e)),
            "05bbd1e6fe3b88a374f78145e1c353b49d2550a0587e4808187a1cc17ab23c07"
        );
        // Chain version 2 adds `chain_version` and `position`, in their sorted places (the
        // same Python line over the object with both members).
        let v2 = ChainedEvent {
            chain_version: CHAIN_V2,
            ..e
        };
        assert_eq!(
            canonical(&v2),
            concat!(
                r#"{"actor":"staff:coordinator","causation_id":"c-1","chain_version":2,"command_id":"c-1","correlation_id":"c-1","#,
                r#""event_id":"01920000-0000-7000-8000-000000000001","event_type":"session_held","event_version":"1","#,
                r#""occurred_at":"2025-09-15T07:00:00.123456Z","#,
                r#""payload":{"a":-3,"z":[1,{"a":null,"b":true}],"é":"l'été \"x\"\n"},"position":7,"#,
                r#""prev_hash":"abababababababababababababababababababababababababababababababab","#,
                r#""recorded_at":"2026-11-29T07:45:48.000000Z","stream_id":"c1","stream_type":"cohort","stream_version":2}"#
            )
        );
        assert_eq!(
            hex::encode(event_hash(&v2)),
            "bb7cb847ad31a31fceafc4368fb8721225efbaecec103a7b1c5e4871f58d7d3c"
        );
        // A v2 hash pins the position: the same event elsewhere in the log hashes otherwise.
        assert_ne!(
            event_hash(&ChainedEvent { position: 8, ..v2 }),
            event_hash(&v2)
        );
        // The command's name, in its sorted place (before `command_id`), when the row has one.
        let named = ChainedEvent {
            command: Some("record_session_held"),
            ..v2
        };
        assert_eq!(
            canonical(&named),
            concat!(
                r#"{"actor":"staff:coordinator","causation_id":"c-1","chain_version":2,"command":"record_session_held","command_id":"c-1","correlation_id":"c-1","#,
                r#""event_id":"01920000-0000-7000-8000-000000000001","event_type":"session_held","event_version":"1","#,
                r#""occurred_at":"2025-09-15T07:00:00.123456Z","#,
                r#""payload":{"a":-3,"z":[1,{"a":null,"b":true}],"é":"l'été \"x\"\n"},"position":7,"#,
                r#""prev_hash":"abababababababababababababababababababababababababababababababab","#,
                r#""recorded_at":"2026-11-29T07:45:48.000000Z","stream_id":"c1","stream_type":"cohort","stream_version":2}"#
            )
        );
        assert_eq!(
            hex::encode(event_hash(&named)),
            "3cd2cb07cb6c2db67d1a0cfab606755157bf52530952d07e34629624a307a8b6"
        );
    }

    /// A value printed as PostgreSQL prints a `jsonb`: keys by length then bytes, `", "` and
    /// `": "` separators.
    fn jsonb_text(v: &Value) -> String {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by(|a, b| (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes())));
                let members: Vec<String> = keys
                    .into_iter()
                    .map(|k| {
                        format!(
                            "{}: {}",
                            serde_json::to_string(k).unwrap(),
                            jsonb_text(&map[k.as_str()])
                        )
                    })
                    .collect();
                format!("{{{}}}", members.join(", "))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(jsonb_text).collect();
                format!("[{}]", items.join(", "))
            }
            other => other.to_string(),
        }
    }

    fn reference(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        canonical_json(v, &mut out);
        out
    }

    #[test]
    fn the_fast_canonical_form_equals_the_reference_or_declines() {
        let mut values: Vec<Value> = include_str!("../../../data/cohort-2025.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|l| l["data"].clone())
            .collect();
        values.extend([
            json!({}),
            json!([]),
            json!({"b": [], "a": {}, "": [true, false, null, 0, -7, 123456789012345678_i64]}),
            json!({"zé": "é", "z": "ü", "aa": [[1], [{"y": 1, "x": 2}]]}),
        ]);
        assert!(values.len() > 200);
        for v in &values {
            for text in [jsonb_text(v), v.to_string()] {
                let mut fast = Vec::new();
                assert!(
                    canonical_json_text(text.as_bytes(), &mut fast).is_some(),
                    "{text}"
                );
                assert_eq!(fast, reference(v), "{text}");
            }
        }
        // Declines what it cannot do exactly; the reference handles it.
        for text in [
            r#"{"a": "line\nbreak"}"#,
            r#"{"a": 1.50}"#,
            r#"{"a": 1e3}"#,
            r#"{"a": 12345678901234567890}"#,
            r#"{"a": -0}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1"#,
            r#"{"a": 1} x"#,
            r#"{"a\"b": 1}"#,
        ] {
            assert_eq!(
                canonical_json_text(text.as_bytes(), &mut Vec::new()),
                None,
                "{text}"
            );
        }
    }

    #[test]
    fn merkle_root_follows_rfc_6962() {
        let empty: [&[u8]; 0] = [];
        assert_eq!(
            hex::encode(merkle_root(&empty)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let one = merkle_root(&[b"a"]);
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(b"a");
        assert_eq!(one, <Hash>::from(h.finalize()));
        // Three leaves: (a b) c.
        let leaf = |d: &[u8]| merkle_root(&[d]);
        let node = |l: Hash, r: Hash| {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            <Hash>::from(h.finalize())
        };
        assert_eq!(
            merkle_root(&[b"a", b"b", b"c"]),
            node(node(leaf(b"a"), leaf(b"b")), leaf(b"c"))
        );
    }

    #[test]
    fn an_intact_journal_verifies_and_its_digest_does_not_depend_on_row_order() {
        let mut rows = stream("c1", 4);
        rows.extend(stream_at("c2", 3, 5));
        let ledger = vec![
            ("cohort".into(), "c1".into(), 40),
            ("cohort".into(), "c2".into(), 35),
        ];
        let report = walk(&rows, ledger);
        assert!(report.intact(), "{report:?}");
        assert_eq!((report.events, report.streams), (7, 2));
        let heads = vec![
            (
                "cohort".to_owned(),
                "c2".to_owned(),
                3,
                rows[6].hash.unwrap(),
            ),
            (
                "cohort".to_owned(),
                "c1".to_owned(),
                4,
                rows[3].hash.unwrap(),
            ),
        ];
        assert_eq!(report.digest, hex::encode(journal_digest(&heads)));
    }

    #[test]
    fn a_changed_payload_breaks_at_its_version() {
        let mut rows = stream("c1", 5);
        rows[2].payload = json!({"cohort_id": "c1", "n": 99});
        let report = walk(&rows, vec![]);
        assert_eq!(report.breaks.len(), 1);
        assert_eq!(report.breaks[0].stream, "cohort/c1");
        assert_eq!(report.breaks[0].version, 3);
        assert!(report.breaks[0].reason.contains("content"));
    }

    #[test]
    fn a_deleted_row_breaks_at_the_missing_version() {
        let mut rows = stream("c1", 5);
        rows.remove(1);
        let report = walk(&rows, vec![]);
        assert_eq!(report.breaks[0].version, 2);
        assert!(report.breaks[0].reason.contains("missing"));
    }

    #[test]
    fn a_deleted_head_is_found_through_the_ledger() {
        let mut rows = stream("c1", 5);
        rows.pop();
        let report = walk(&rows, vec![("cohort".into(), "c1".into(), 50)]);
        assert_eq!(report.breaks[0].version, 5);
        let report = walk(&[], vec![("cohort".into(), "c9".into(), 50)]);
        assert_eq!(report.breaks[0].version, 1);
    }

    #[test]
    fn swapped_versions_break_at_the_lower_one() {
        let mut rows = stream("c1", 5);
        rows[2].stream_version = 4;
        rows[3].stream_version = 3;
        let report = walk(&rows, vec![]);
        assert_eq!(report.breaks[0].version, 3, "{report:?}");
        assert!(report.breaks[0].reason.contains("content"));
    }

    #[test]
    fn a_rehashed_row_still_breaks_the_link_to_its_successor() {
        let mut rows = stream("c1", 5);
        rows[2].payload = json!({"forged": true});
        rows[2].hash = rows[2].recompute();
        let report = walk(&rows, vec![]);
        assert_eq!(report.breaks[0].version, 4);
        assert!(report.breaks[0].reason.contains("prev_hash"));
    }

    #[test]
    fn a_moved_position_breaks_a_version_2_row_and_version_1_rows_still_verify() {
        let mut rows = stream("c1", 3);
        rows[1].position = 25;
        let report = walk(&rows, vec![]);
        assert_eq!(report.breaks[0].version, 2, "{report:?}");
        assert!(report.breaks[0].reason.contains("content"));
        // A journal written before positions were hashed: version 1 rows, then version 2.
        let mut rows = stream("c2", 4);
        let mut prev = GENESIS;
        for row in &mut rows {
            if row.stream_version <= 2 {
                row.chain_version = CHAIN_V1;
            }
            row.prev_hash = Some(prev);
            row.hash = row.recompute();
            prev = row.hash.unwrap();
        }
        let report = walk(&rows, vec![]);
        assert!(report.intact(), "{report:?}");
        // Unknown versions are named.
        rows[3].chain_version = 9;
        let report = walk(&rows, vec![]);
        assert!(
            report.breaks[0].reason.contains("chain version 9"),
            "{report:?}"
        );
    }

    #[test]
    fn a_cursor_cut_gives_the_digest_and_head_hash_of_the_log_up_to_it() {
        let rows = stream("c1", 4);
        let mut check = JournalCheck::with_cut(
            vec![],
            Some(CutAt::Cursor {
                tx_id: 102,
                position: 20,
            }),
        );
        for row in &rows {
            check.feed(row.link());
        }
        let report = check.finish(HashMap::new());
        let at = report.digest_at.unwrap();
        assert_eq!((at.position, at.events), (20, 2));
        assert_eq!(at.head_hash, rows[1].hash.map(hex::encode));
        let heads = vec![(
            "cohort".to_owned(),
            "c1".to_owned(),
            2,
            rows[1].hash.unwrap(),
        )];
        assert_eq!(at.digest, hex::encode(journal_digest(&heads)));
        assert_eq!(report.last.unwrap().position, 40);
    }

    #[test]
    fn an_event_inserted_around_the_journal_is_found_through_the_ledger() {
        let rows = stream("c1", 3);
        let report = walk(&rows, vec![("cohort".into(), "c1".into(), 20)]);
        assert_eq!(report.breaks[0].version, 3);
    }
}
