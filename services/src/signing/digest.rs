//! Signed digests of the journal's head: `fieldtrail audit digest`, `serve`'s periodic job,
//! `fieldtrail audit digests`, `GET /audit/digests`, and the offline check of an exported
//! journal against one (`fieldtrail audit verify --digest FILE --export FILE`).
//!
//! **What is signed.** The cut of the global log read up to the horizon (every transaction
//! before it has ended, so the cut never changes): its last row's global position, which names
//! the cut (every row up to that one in the global log's order; positions are kept by every
//! copy, and covered by the hashes from chain version 2), its transaction id (advisory: a copy
//! to PostgreSQL gives the rows new ids, in the same order), the number of events, the journal digest over its stream heads (RFC 6962 Merkle
//! root, as `audit verify` prints it), the hash of its last event (which, from chain version 2,
//! covers that event's position), when, and with which key. The statement is a JWS (EdDSA,
//! `typ` [`DIGEST_TYP`]) whose payload is a [`Statement`]. A journal that does not verify is
//! not signed.
//!
//! **Offline check.** With the export, the statement and the public keys only: the signature;
//! the export's order (strictly increasing (transaction id, position): a moved line is named
//! by its position); every stream's chain ([`chain::JournalCheck`], each break with its
//! position); the command ledger (each command's first and last positions hold its events: a
//! removed event is named by its position); no member an event or command line does not have
//! in the format; and the cut's digest, event count and head hash equal to the signed ones
//! (when fewer events than signed are found, each global position of the cut the export lacks
//! is named). Events after the cut are checked too, but nothing signed vouches for them: the
//! report says how many, and from which position.
//!
//! **Never short.** A walk or an export waits [`READABLE_WAIT`] for every committed event to be
//! readable; when a long transaction elsewhere on the server holds the global log back longer,
//! it fails ([`readable`]) rather than sign or export a cut that silently lacks them.

use crate::signing::export::JournalExport;
use crate::signing::jws::{self, VerifyError};
use crate::signing::keys::{KeyError, KeyRecord, KeyStore};
use chrono::{DateTime, SubsecRound, Utc};
use fieldtrail_journal::chain::{self, Break, CutAt, JournalCheck, VerifyReport};
use fieldtrail_journal::digests::SignedDigest;
use fieldtrail_journal::{Cursor, Journal, JournalError};
use fieldtrail_projections::formats::Publisher;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How long a walk or an export waits for every committed event to be readable.
pub const READABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The variable that shortens [`READABLE_WAIT`] (whole seconds, at least 1): for tests that
/// hold the server's horizon on purpose, so that they hold it no longer than their check.
pub const READABLE_WAIT_ENV: &str = "FIELDTRAIL_READABLE_WAIT_SECS";

/// [`READABLE_WAIT`], or the seconds of [`READABLE_WAIT_ENV`] when it is set to a number from
/// 1 to 10.
fn readable_wait() -> std::time::Duration {
    std::env::var(READABLE_WAIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=READABLE_WAIT.as_secs()).contains(s))
        .map_or(READABLE_WAIT, std::time::Duration::from_secs)
}

/// The JWS `typ` of a signed digest.
pub const DIGEST_TYP: &str = "fieldtrail-digest+jwt";

/// What a signed digest states (the JWS payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Who signed: the publisher's DID.
    pub iss: String,
    /// The transaction id of the cut's last row where it was signed (advisory: a copy of
    /// the journal to PostgreSQL gives its rows other ids, in the same order).
    pub tx_id: u64,
    /// The global position of the cut's last row: names the cut (every row up to this one in
    /// the global log's order).
    pub position: i64,
    /// Events in the cut.
    pub events: u64,
    /// The journal digest of the cut, hex.
    pub digest: String,
    /// The hash of the cut's last event, hex.
    pub head_hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub signed_at: String,
    /// The key id (JWK thumbprint) that signed it.
    pub kid: String,
}

/// Why no digest was signed.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// No usable key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal does not verify: nothing is signed.
    #[error("the journal does not verify ({0}): no digest signed; run `fieldtrail audit verify`")]
    NotVerified(String),
    /// Nothing to sign yet.
    #[error("the journal holds no event yet: nothing to sign")]
    Empty,
}

/// Waits until every event committed so far is readable ([`READABLE_WAIT`] at most).
///
/// # Errors
/// [`JournalError::Other`] when a transaction elsewhere on the server holds the global log
/// back longer (the cut or the export would silently lack what was committed since); the
/// journal's errors.
pub async fn readable(journal: &Journal) -> Result<(), JournalError> {
    let wait = readable_wait();
    if journal.wait_readable(wait).await? {
        return Ok(());
    }
    Err(JournalError::Other(format!(
        "a transaction on the database server has held the global log back for {} s: events committed since are not readable yet, and a digest or an export made now would silently lack them; nothing was signed or exported: try again once that transaction ends (PostgreSQL: see pg_stat_activity for a long one)",
        wait.as_secs()
    )))
}

/// Walks the global log up to the horizon, page by page, checking every row's hash and every
/// stream's chain: the cut a digest signs ([`VerifyReport::last`] ends it).
///
/// # Errors
/// The journal's errors.
pub async fn walk(journal: &Journal) -> Result<VerifyReport, JournalError> {
    readable(journal).await?;
    let mut check = JournalCheck::new(Vec::new(), None);
    let mut cursor = Cursor::default();
    loop {
        let page = journal.export_events(cursor, 4096).await?;
        let Some(last) = page.last() else { break };
        cursor = Cursor {
            tx_id: last.tx_id,
            position: last.position,
        };
        let links = tokio::task::spawn_blocking(move || {
            page.iter()
                .map(chain::SealedEvent::link)
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| JournalError::Other(format!("verification thread failed: {e}")))?;
        for link in links {
            check.feed(link);
        }
    }
    Ok(check.finish(HashMap::new()))
}

/// `fieldtrail audit digest`: walks the journal ([`walk`]), and if it verifies, signs its head
/// with the key in force and keeps the digest ([`signed_head`], then [`keep`]). With
/// `unless_unchanged`, answers `None` instead when the last digest kept already ends at the
/// same row (what the periodic job does).
///
/// # Errors
/// [`DigestError`].
pub async fn sign_head(
    journal: &Journal,
    store: &KeyStore,
    publisher: &Publisher,
    unless_unchanged: bool,
) -> Result<Option<SignedDigest>, DigestError> {
    match signed_head(journal, store, publisher, unless_unchanged).await? {
        Some(digest) => Ok(Some(keep(journal, digest).await?)),
        None => Ok(None),
    }
}

/// Keeps `digest` in the journal; returns it with its number.
///
/// # Errors
/// The journal's errors.
pub async fn keep(
    journal: &Journal,
    mut digest: SignedDigest,
) -> Result<SignedDigest, DigestError> {
    digest.digest_id = journal.store_digest(&digest).await?;
    Ok(digest)
}

/// As [`sign_head`], without keeping the digest (its number is 0): what `audit digest --out`
/// writes to its file before keeping it.
///
/// # Errors
/// [`DigestError`].
pub async fn signed_head(
    journal: &Journal,
    store: &KeyStore,
    publisher: &Publisher,
    unless_unchanged: bool,
) -> Result<Option<SignedDigest>, DigestError> {
    let key = store.active()?;
    // Every key that signs a kept digest is published by the journal too (idempotent).
    journal.publish_keys(&[key.record.to_published()]).await?;
    let report = walk(journal).await?;
    if !report.intact() {
        let first = report
            .breaks
            .first()
            .map(fieldtrail_journal::audit::describe)
            .unwrap_or_default();
        return Err(DigestError::NotVerified(first));
    }
    let last = report.last.clone().ok_or(DigestError::Empty)?;
    if unless_unchanged {
        let kept = journal.digests().await?;
        // The position names the row (a copied journal's digests keep the source's
        // transaction ids).
        if kept.last().is_some_and(|d| d.position == last.position) {
            return Ok(None);
        }
    }
    let signed_at: DateTime<Utc> = Utc::now().trunc_subsecs(0);
    let statement = Statement {
        iss: publisher.did(),
        tx_id: last.tx_id,
        position: last.position,
        events: report.events,
        digest: report.digest.clone(),
        head_hash: last.hash.clone().unwrap_or_default(),
        signed_at: signed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        kid: key.record.kid.clone(),
    };
    let payload = serde_json::to_value(&statement)
        .map_err(|e| DigestError::Journal(JournalError::Other(e.to_string())))?;
    let token = jws::sign(
        &key,
        &format!("{}#{}", statement.iss, key.record.kid),
        DIGEST_TYP,
        None,
        &payload,
    )?;
    let digest = SignedDigest {
        digest_id: 0,
        tx_id: statement.tx_id,
        position: statement.position,
        events: i64::try_from(statement.events).unwrap_or(i64::MAX),
        digest: statement.digest,
        head_hash: statement.head_hash,
        signed_at,
        key_id: statement.kid,
        jws: token,
    };
    Ok(Some(digest))
}

/// `serve`'s periodic job: every `interval` (the first one an interval after start), signs the
/// journal's head when it moved since the last digest kept ([`sign_head`]), until `shutdown`.
/// Each failure is logged (once per kind while it lasts: no key, a journal that does not
/// verify) and retried at the next tick.
pub async fn sign_periodically(
    journal: Journal,
    store: KeyStore,
    interval: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut last_error = String::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let publisher = match crate::export::publisher_from_env() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "signed digest: the publisher settings are wrong");
                continue;
            }
        };
        match sign_head(&journal, &store, &publisher, true).await {
            Ok(Some(d)) => {
                last_error.clear();
                tracing::info!(digest_id = d.digest_id, position = d.position, events = d.events,
                               key = %d.key_id, "signed digest of the journal's head kept");
            }
            Ok(None) | Err(DigestError::Empty) => {}
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    match &e {
                        DigestError::NotVerified(_) => {
                            tracing::error!(error = %text, "signed digest refused")
                        }
                        _ => tracing::warn!(error = %text, "no signed digest"),
                    }
                    last_error = text;
                }
            }
        }
    }
}

/// The statement of a signed digest, its signature checked against `keys`.
///
/// # Errors
/// [`VerifyError`], or a statement that is not one (as [`VerifyError::Malformed`]).
pub fn open(token: &str, keys: &[KeyRecord]) -> Result<Statement, VerifyError> {
    let (header, payload) = jws::verify(token, keys)?;
    if header.typ.as_deref() != Some(DIGEST_TYP) {
        return Err(VerifyError::Malformed(format!(
            "typ {:?}, expected {DIGEST_TYP}",
            header.typ
        )));
    }
    serde_json::from_value(payload).map_err(|e| VerifyError::Malformed(e.to_string()))
}

/// One thing wrong with an export, at a position when it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The global position concerned.
    pub position: Option<i64>,
    /// The stream concerned (`type/id`), when one is.
    pub stream: Option<String>,
    /// What is wrong, in a sentence.
    pub reason: String,
}

/// What was checked against a signed digest: an export file, or the configured journal
/// (exported in memory). The report's sentences name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checked {
    /// An export file (`--export FILE`, offline).
    Export,
    /// The journal itself (`audit verify --digest FILE` without `--export`).
    Journal,
}

impl Checked {
    /// `export` or `journal`.
    pub fn noun(self) -> &'static str {
        match self {
            Checked::Export => "export",
            Checked::Journal => "journal",
        }
    }
}

/// The outcome of checking an export against a signed digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OfflineReport {
    /// What was checked.
    pub checked: Checked,
    /// The signed statement (its signature verified).
    pub statement: Statement,
    /// Events in the export.
    pub events: u64,
    /// Events of the export inside the signed cut.
    pub events_in_cut: u64,
    /// The events after the signed cut: checked (their chains), but not covered by the
    /// digest; `None` when there are none.
    pub after_cut: Option<AfterCut>,
    /// Everything wrong, in order of position (findings without one last).
    pub findings: Vec<Finding>,
}

/// The events of an export after the signed cut, which no signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AfterCut {
    /// How many.
    pub events: u64,
    /// The global position of the first of them (in the export's order).
    pub first_position: i64,
}

impl OfflineReport {
    /// Whether the export matches the signed digest and every chain holds.
    pub fn verified(&self) -> bool {
        self.findings.is_empty()
    }
}

fn from_break(b: Break) -> Finding {
    Finding {
        position: b.position,
        reason: format!("version {}: {}", b.version, b.reason),
        stream: Some(b.stream),
    }
}

/// The lines of an export out of the global log's order, (transaction id, position), each
/// named at its own position, and for every line the transaction id the rest of the check
/// uses. The transaction id is not covered by the hashes (the position is): an edited one
/// shows only as a line out of order, or as an id that differs from those of the other events
/// of its command (one command is one transaction). So: first, an event whose transaction id
/// differs from the one most of its command's events share is named, and that id is used;
/// then the lines outside a longest run of lines in strictly increasing order are named (of
/// two lines swapped with each other, the later one). Such a line gets the transaction id of
/// the line kept before it.
fn order_findings(events: &[chain::SealedEvent], noun: &str) -> (Vec<Finding>, Vec<u64>) {
    let mut findings = Vec::new();
    let mut tx_ids: Vec<u64> = events.iter().map(|e| e.tx_id).collect();
    let mut counts: HashMap<&str, HashMap<u64, usize>> = HashMap::new();
    for e in events {
        *counts
            .entry(e.command_id.as_str())
            .or_default()
            .entry(e.tx_id)
            .or_default() += 1;
    }
    let shared: HashMap<&str, u64> = counts
        .iter()
        .filter_map(|(command, by_tx)| {
            let total: usize = by_tx.values().sum();
            by_tx
                .iter()
                .find(|(_, n)| 2 * **n > total)
                .map(|(tx, _)| (*command, *tx))
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        if let Some(&tx) = shared
            .get(e.command_id.as_str())
            .filter(|tx| **tx != e.tx_id)
        {
            findings.push(Finding {
                position: Some(e.position),
                stream: Some(e.stream()),
                reason: format!(
                    "its transaction id {} is not the one the other events of its command {} have ({tx}): a command is written in one transaction; edited?",
                    e.tx_id, e.command_id
                ),
            });
            tx_ids[i] = tx;
        }
    }
    // A longest strictly increasing run, found from the end (patience sorting): `best[l]` is
    // the line starting the best run of l + 1 lines seen so far (the one with the greatest
    // key), `next[i]` the line after line i in its run.
    let key = |i: usize| (tx_ids[i], events[i].position);
    let mut best: Vec<usize> = Vec::new();
    let mut next: Vec<Option<usize>> = vec![None; events.len()];
    for i in (0..events.len()).rev() {
        let slot = best.partition_point(|&b| key(b) > key(i));
        next[i] = slot.checked_sub(1).map(|s| best[s]);
        if slot == best.len() {
            best.push(i);
        } else {
            best[slot] = i;
        }
    }
    let mut kept = vec![false; events.len()];
    let mut at = best.last().copied();
    while let Some(i) = at {
        kept[i] = true;
        at = next[i];
    }
    let position = |i: Option<usize>| i.map(|i| events[i].position);
    let mut kept_after: Vec<Option<usize>> = vec![None; events.len()];
    for i in (0..events.len().saturating_sub(1)).rev() {
        kept_after[i] = if kept[i + 1] {
            Some(i + 1)
        } else {
            kept_after[i + 1]
        };
    }
    let mut before: Option<usize> = None;
    for i in 0..events.len() {
        if kept[i] {
            before = Some(i);
            continue;
        }
        let after = kept_after[i];
        let e = &events[i];
        findings.push(Finding {
            position: Some(e.position),
            stream: Some(e.stream()),
            reason: format!(
                "it is out of the global log's order (transaction id, position) in the {noun}{}{}, with transaction id {}: moved? (or its transaction id edited)",
                position(before)
                    .map(|p| format!(", after position {p}"))
                    .unwrap_or_default(),
                position(after)
                    .map(|p| format!(", before position {p}"))
                    .unwrap_or_default(),
                e.tx_id
            ),
        });
        if let Some(tx) = before.or(after).map(|j| tx_ids[j]) {
            tx_ids[i] = tx;
        }
    }
    (findings, tx_ids)
}

/// The command ledger's rows checked against the events of their commands, whose hashes
/// cover the command id, the stream, the positions, the time and (on every row written since
/// the events keep it) the command's name: a ledger row's first and last positions hold
/// events of its command, its last one on its stream; they are its command's first and last
/// events; its name and time are its events' (when they carry the name). And every event's
/// command has its row. Each finding is at the ledger row's first position (or the event's).
fn ledger_findings(export: &JournalExport, noun: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let at: HashMap<i64, &chain::SealedEvent> =
        export.events.iter().map(|e| (e.position, e)).collect();
    let mut of_command: HashMap<&str, Vec<&chain::SealedEvent>> = HashMap::new();
    for e in &export.events {
        of_command.entry(e.command_id.as_str()).or_default().push(e);
    }
    for l in &export.ledger {
        let stream = format!("{}/{}", l.stream_type, l.stream_id);
        let mut placed = true;
        for (which, position) in [("first", l.first_position), ("last", l.last_position)] {
            match at.get(&position) {
                None => {
                    placed = false;
                    findings.push(Finding {
                        position: Some(position),
                        stream: Some(stream.clone()),
                        reason: format!(
                            "the command ledger records the {which} event of command {} ({}) here, but the {noun} has no event at this position: removed?",
                            l.command_id, l.command
                        ),
                    });
                }
                // A command on several streams (a split) starts on another stream than its
                // own; its last event is on the ledger's.
                Some(e)
                    if e.command_id != l.command_id
                        || (which == "last" && e.stream() != stream) =>
                {
                    placed = false;
                    findings.push(Finding {
                        position: Some(position),
                        stream: Some(e.stream()),
                        reason: format!(
                            "the command ledger records the {which} event of command {} on {stream} here, but the event here is of command {} on {}: replaced?",
                            l.command_id, e.command_id, e.stream()
                        ),
                    });
                }
                Some(_) => {}
            }
            if l.first_position == l.last_position {
                break;
            }
        }
        let Some(events) = of_command.get(l.command_id.as_str()) else {
            continue;
        };
        let edited = |what: String| Finding {
            position: Some(l.first_position),
            stream: Some(stream.clone()),
            reason: format!(
                "the command ledger's row of command {} {what}: the row was edited",
                l.command_id
            ),
        };
        let first = events.iter().map(|e| e.position).min().unwrap_or_default();
        let last = events.iter().max_by_key(|e| e.position).copied();
        let last_position = last.map_or(first, |e| e.position);
        if placed && (first, last_position) != (l.first_position, l.last_position) {
            findings.push(edited(format!(
                "spans positions {} to {}, but its events are at positions {first} to {last_position}",
                l.first_position, l.last_position
            )));
        }
        // The name, and the time, are covered by the events' hashes on the rows that keep the
        // name (every row written since the events keep it).
        if let Some(named) = events.iter().find_map(|e| e.command.as_deref()) {
            if named != l.command {
                findings.push(edited(format!(
                    "names the command {:?}, but its events, whose hashes cover the name, were appended by {named:?}",
                    l.command
                )));
            }
            if let Some(last) = last.filter(|e| e.recorded_at != l.recorded_at) {
                findings.push(edited(format!(
                    "says it was recorded at {}, but its last event (position {}) was recorded at {}",
                    chain::timestamp(&l.recorded_at),
                    last.position,
                    chain::timestamp(&last.recorded_at)
                )));
            }
        }
    }
    let ledgered: HashSet<&str> = export
        .ledger
        .iter()
        .map(|l| l.command_id.as_str())
        .collect();
    let mut named: HashSet<&str> = HashSet::new();
    for e in &export.events {
        if !ledgered.contains(e.command_id.as_str()) && named.insert(e.command_id.as_str()) {
            findings.push(Finding {
                position: Some(e.position),
                stream: Some(e.stream()),
                reason: format!(
                    "the {noun} has no command ledger row for its command {}: removed?",
                    e.command_id
                ),
            });
        }
    }
    findings
}

/// Checks `export` (read from a file or from the journal: `checked`) against `statement`
/// (whose signature the caller verified, [`open`]). Pure: no I/O.
pub fn check_export(
    export: &JournalExport,
    statement: &Statement,
    checked: Checked,
) -> OfflineReport {
    let noun = checked.noun();
    let mut findings = export.findings.clone();
    if !export.complete {
        findings.push(Finding {
            position: None,
            stream: None,
            reason: "the export does not end with its `end` line, or its counts differ: truncated or edited".into(),
        });
    }
    // Order of the lines, and the transaction ids (not covered by the hashes).
    let (order, tx_ids) = order_findings(&export.events, noun);
    findings.extend(order);
    findings.extend(ledger_findings(export, noun));
    // The cut is named by its last row's position; that row's transaction id is the one the
    // export gives it (the statement's is the source's: a copy may have renumbered them).
    let cut = CutAt::Cursor {
        tx_id: export
            .events
            .iter()
            .zip(&tx_ids)
            .find(|(e, _)| e.position == statement.position)
            .map_or(statement.tx_id, |(_, tx)| *tx),
        position: statement.position,
    };
    let outside: Vec<i64> = export
        .events
        .iter()
        .zip(&tx_ids)
        .filter(|(e, tx)| !cut.covers(**tx, e.position))
        .map(|(e, _)| e.position)
        .collect();
    let after_cut = outside.first().map(|first| AfterCut {
        events: outside.len() as u64,
        first_position: *first,
    });
    // The chains, and the cut's digest.
    let mut ledger: BTreeMap<(String, String), i64> = BTreeMap::new();
    for l in &export.ledger {
        let max = ledger
            .entry((l.stream_type.clone(), l.stream_id.clone()))
            .or_insert(l.last_position);
        *max = (*max).max(l.last_position);
    }
    let mut check = JournalCheck::with_cut(
        ledger.into_iter().map(|((t, i), p)| (t, i, p)).collect(),
        Some(cut),
    );
    // Each line with the transaction id the order check found fitting, so that a line it
    // already named is not named again at later positions (its stream's next versions).
    for (e, tx_id) in export.events.iter().zip(&tx_ids) {
        check.feed(chain::ChainLink {
            tx_id: *tx_id,
            ..e.link()
        });
    }
    let mut diagnosed = HashMap::new();
    for (stream_type, stream_id) in check.broken_streams() {
        let mut rows: Vec<chain::SealedEvent> = export
            .events
            .iter()
            .zip(&tx_ids)
            .filter(|(e, _)| e.stream_type == stream_type && e.stream_id == stream_id)
            .map(|(e, tx_id)| chain::SealedEvent {
                tx_id: *tx_id,
                ..e.clone()
            })
            .collect();
        rows.sort_by_key(|e| (e.stream_version, e.position));
        if let Some(found) = chain::diagnose(&rows) {
            diagnosed.insert((stream_type, stream_id), found);
        }
    }
    let report = check.finish(diagnosed);
    findings.extend(report.breaks.into_iter().map(from_break));
    let at_cut = report.digest_at.clone();
    let events_in_cut = at_cut.as_ref().map_or(0, |a| a.events);
    if let Some(at) = at_cut {
        let mut differs = Vec::new();
        if at.events != statement.events {
            differs.push(format!(
                "{} events signed, {} in the {noun} up to it",
                statement.events, at.events
            ));
        }
        if at.digest != statement.digest {
            differs.push(format!(
                "digest {} signed, {} computed from the {noun}",
                statement.digest, at.digest
            ));
        }
        if at.head_hash.as_deref() != Some(statement.head_hash.as_str()) {
            differs.push(format!(
                "the last event's hash {} signed, {} in the {noun}",
                statement.head_hash,
                at.head_hash.as_deref().unwrap_or("none")
            ));
        }
        if !differs.is_empty() {
            findings.push(Finding {
                position: Some(statement.position),
                stream: None,
                reason: format!(
                    "the {noun} does not match the digest signed at position {}: {}",
                    statement.position,
                    differs.join("; ")
                ),
            });
        }
        if at.events < statement.events {
            findings.extend(missing_positions(export, statement, noun));
        }
    }
    findings.sort_by_key(|f| (f.position.is_none(), f.position));
    OfflineReport {
        checked,
        statement: statement.clone(),
        events: report.events,
        events_in_cut,
        after_cut,
        findings,
    }
}

/// At most this many missing positions are named one by one.
const MISSING_NAMED: usize = 100;

/// The global positions of the signed cut that the export holds no event at, each named: what
/// is said when the export holds fewer events in the cut than the digest signed (a removed
/// event, whatever else was removed with it, was at one of them).
fn missing_positions(export: &JournalExport, statement: &Statement, noun: &str) -> Vec<Finding> {
    let present: HashSet<i64> = export.events.iter().map(|e| e.position).collect();
    let mut findings = Vec::new();
    let mut missing = (1..=statement.position).filter(|p| !present.contains(p));
    for position in missing.by_ref().take(MISSING_NAMED) {
        findings.push(Finding {
            position: Some(position),
            stream: None,
            reason: format!(
                "the {noun} has no event at this position of the signed cut, and fewer events than the digest signed: removed? (a position can also be one the journal never used, taken by a transaction that was rolled back)"
            ),
        });
    }
    let more = missing.count();
    if more > 0 {
        findings.push(Finding {
            position: None,
            stream: None,
            reason: format!("{more} more positions of the signed cut have no event in the {noun}"),
        });
    }
    findings
}

/// The offline report as lines for a person.
pub fn offline_text(report: &OfflineReport) -> String {
    let s = &report.statement;
    let mut out = format!(
        "digest signed {} by key {} ({}): signature valid; it covers {} events up to position {} (transaction {}), digest {}\n",
        s.signed_at, s.kid, s.iss, s.events, s.position, s.tx_id, s.digest
    );
    for f in &report.findings {
        out.push_str(&format!(
            "BROKEN{}{}: {}\n",
            f.position
                .map(|p| format!(" position {p}"))
                .unwrap_or_default(),
            f.stream
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            f.reason
        ));
    }
    let noun = report.checked.noun();
    if let Some(after) = &report.after_cut {
        out.push_str(&format!(
            "NOT COVERED: {} events after the signed cut, from position {}: their chains were checked, but no signed digest vouches for them (sign a newer digest to cover them)\n",
            after.events, after.first_position
        ));
    }
    if report.verified() {
        out.push_str(&format!(
            "{noun} verified against the signed digest: {} events, {} of them in the signed cut, every hash chain intact\n",
            report.events, report.events_in_cut
        ));
    } else {
        out.push_str(&format!(
            "{noun} NOT verified against the signed digest: {} findings; {} events read\n",
            report.findings.len(),
            report.events
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain::SealedEvent;

    /// Events at positions 1, 2, ... with the transaction ids and commands given.
    fn log(rows: &[(u64, &str)]) -> Vec<SealedEvent> {
        rows.iter()
            .enumerate()
            .map(|(n, (tx_id, command_id))| SealedEvent {
                position: i64::try_from(n).unwrap() + 1,
                tx_id: *tx_id,
                event_id: uuid::Uuid::from_u128(n as u128),
                stream_type: "cohort".into(),
                stream_id: "c".into(),
                stream_version: i64::try_from(n).unwrap() + 1,
                event_type: "cohort_closed".into(),
                event_version: "1".into(),
                payload: serde_json::json!({}),
                occurred_at: chrono::DateTime::UNIX_EPOCH,
                recorded_at: chrono::DateTime::UNIX_EPOCH,
                actor: "staff:s".into(),
                command_id: (*command_id).into(),
                correlation_id: (*command_id).into(),
                causation_id: (*command_id).into(),
                prev_hash: None,
                hash: None,
                reported_actor: None,
                chain_version: chain::CHAIN_V2,
                command: None,
            })
            .collect()
    }

    /// The positions named by the order check, and the transaction ids it hands on.
    fn check(rows: &[(u64, &str)]) -> (Vec<i64>, Vec<u64>) {
        let (findings, tx_ids) = order_findings(&log(rows), "export");
        (findings.iter().filter_map(|f| f.position).collect(), tx_ids)
    }

    #[test]
    fn an_edited_transaction_id_is_named_at_its_own_position() {
        // One transaction (a batch): line 3's id raised, or lowered.
        let one = [(7, "a"), (7, "b"), (7, "c"), (7, "d"), (7, "e")];
        let mut raised = one;
        raised[2].0 = 8;
        assert_eq!(check(&raised), (vec![3], vec![7; 5]));
        let mut lowered = one;
        lowered[2].0 = 6;
        assert_eq!(check(&lowered), (vec![3], vec![7; 5]));
        // One transaction per command: line 3's raised beyond the next two.
        let each = [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")];
        let mut raised = each;
        raised[2].0 = 9;
        assert_eq!(check(&raised), (vec![3], vec![1, 2, 2, 4, 5]));
        // An event whose command's other events have another id.
        let command = [(1, "a"), (2, "b"), (2, "b"), (2, "b"), (3, "c")];
        let mut odd = command;
        odd[3].0 = 1;
        assert_eq!(check(&odd), (vec![4], vec![1, 2, 2, 2, 3]));
        // Nothing edited: nothing named.
        assert_eq!(check(&each).0, Vec::<i64>::new());
    }

    #[test]
    fn of_two_lines_swapped_the_later_one_is_named() {
        let mut rows = log(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
        rows.swap(1, 2);
        let (findings, _) = order_findings(&rows, "export");
        let named: Vec<i64> = findings.iter().filter_map(|f| f.position).collect();
        assert_eq!(named, vec![2]);
        assert!(findings[0]
            .reason
            .contains("after position 3, before position 4"));
    }
}
