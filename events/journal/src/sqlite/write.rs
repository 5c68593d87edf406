//! The embedded journal's writes, each inside the caller's `BEGIN IMMEDIATE` transaction.

use super::micros;
use crate::backend::{
    CommitOutcome, DocumentCommit, LedgerRow, NewEvent, StreamAppend, TokenRecord,
};
use crate::chain::{self, Hash, SealedEvent, GENESIS};
use crate::group::PendingAppend;
use crate::reservations::{self, ReservationsRebuilt};
use crate::{CommandMetadata, Cursor, JournalError};
use chrono::{SubsecRound, Utc};
use fieldtrail_domain::claims::{ClaimChange, CLAIM_EVENT_TYPES};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use uuid::Uuid;

/// Appends `events` at `expected` + 1, ... with the ledger row (see
/// [`crate::Backend::append`]). The version check, the ledger check and the inserts happen
/// under the write lock, so nothing can interleave.
pub(super) fn append(
    tx: &Connection,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    events: &[NewEvent],
    metadata: &CommandMetadata,
) -> Result<Vec<i64>, JournalError> {
    check_version(tx, stream_type, stream_id, expected)?;
    check_new_command(tx, metadata)?;
    let (positions, recorded_at) =
        insert(tx, stream_type, stream_id, expected, events, metadata, 0)?;
    // An erasure destroys its key in the same transaction, before the ledger row.
    crate::sealing::erase_keys_sqlite(tx, events)?;
    let span = (positions.first(), positions.last());
    ledger(tx, metadata, stream_type, stream_id, span, recorded_at)?;
    claims(tx, stream_type, stream_id, events, &positions)?;
    Ok(positions)
}

/// Appends one command's events to several streams (see [`crate::Backend::append_streams`]):
/// each part version-checked and chained, in order; one ledger row naming the last part's
/// stream; then the claims of every part.
pub(super) fn append_streams(
    tx: &Connection,
    parts: &[StreamAppend],
    metadata: &CommandMetadata,
) -> Result<Vec<Vec<i64>>, JournalError> {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return Ok(Vec::new());
    };
    check_version(tx, &first.stream_type, &first.stream_id, first.expected)?;
    check_new_command(tx, metadata)?;
    let mut positions: Vec<Vec<i64>> = Vec::with_capacity(parts.len());
    let mut recorded_at = Utc::now();
    let mut offset = 0;
    for part in parts {
        check_version(tx, &part.stream_type, &part.stream_id, part.expected)?;
        let (p, at) = insert(
            tx,
            &part.stream_type,
            &part.stream_id,
            part.expected,
            &part.events,
            metadata,
            offset,
        )?;
        offset += part.events.len();
        positions.push(p);
        recorded_at = at;
    }
    let span = (
        positions.first().and_then(|p| p.first()),
        positions.last().and_then(|p| p.last()),
    );
    ledger(
        tx,
        metadata,
        &last.stream_type,
        &last.stream_id,
        span,
        recorded_at,
    )?;
    for (part, p) in parts.iter().zip(&positions) {
        claims(tx, &part.stream_type, &part.stream_id, &part.events, p)?;
        crate::sealing::erase_keys_sqlite(tx, &part.events)?;
    }
    Ok(positions)
}

/// [`JournalError::VersionConflict`] unless the stream is at `expected`.
fn check_version(
    tx: &Connection,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
) -> Result<(), JournalError> {
    let current: i64 = tx.query_row(
        "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_type = ?1 AND stream_id = ?2",
        params![stream_type, stream_id],
        |r| r.get(0),
    )?;
    if current != expected {
        return Err(JournalError::VersionConflict {
            stream: format!("{stream_type}/{stream_id}"),
            expected,
        });
    }
    Ok(())
}

/// [`JournalError::DuplicateCommand`] when the command id is in the ledger, or was refused
/// before ([`crate::rejections`]).
fn check_new_command(tx: &Connection, metadata: &CommandMetadata) -> Result<(), JournalError> {
    let known: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM command_ledger WHERE command_id = ?1",
            params![metadata.command_id],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_some() || crate::rejections::known_sqlite(tx, &metadata.command_id)? {
        return Err(JournalError::DuplicateCommand(metadata.command_id.clone()));
    }
    Ok(())
}

/// Inserts `events` at `expected` + 1, ..., chained to the stream's event at `expected`
/// (the caller checked the version); returns their positions and `recorded_at`.
fn insert(
    tx: &Connection,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    events: &[NewEvent],
    metadata: &CommandMetadata,
    offset: usize,
) -> Result<(Vec<i64>, chrono::DateTime<Utc>), JournalError> {
    let prev: Hash = if expected == 0 {
        GENESIS
    } else {
        let stored: Option<Vec<u8>> = tx.query_row(
            "SELECT hash FROM events WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version = ?3",
            params![stream_type, stream_id, expected],
            |r| r.get(0),
        )?;
        stored
            .as_deref()
            .and_then(chain::hash_from_bytes)
            .ok_or_else(|| {
                JournalError::Other(format!(
                    "stream {stream_type}/{stream_id} version {expected} has no hash"
                ))
            })?
    };
    // The next transaction number, and the next position (what AUTOINCREMENT would give:
    // beyond every position ever used), which the hashes cover and the insert stores.
    let (tx_id, last_position): (i64, i64) = tx.query_row(
        "SELECT coalesce(max(tx_id), 0) + 1,
                max(coalesce(max(position), 0),
                    coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))
         FROM events",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let positions: Vec<i64> = (1..=i64::try_from(events.len()).unwrap_or(i64::MAX))
        .map(|n| last_position + n)
        .collect();
    // Microseconds, as both backends store instants: the hash covers the stored value.
    let occurred_at = metadata.occurred_at.with_timezone(&Utc).trunc_subsecs(6);
    let recorded_at = Utc::now().trunc_subsecs(6);
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (event_id, stream_type, stream_id, stream_version, tx_id, event_type,
            event_version, payload, occurred_at, recorded_at, actor, command_id, correlation_id,
            causation_id, reported_actor, prev_hash, hash, position, chain_version, command)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?;
    let ids: Vec<Uuid> = metadata.event_ids_at(offset, events.len());
    let (prev_hashes, hashes) = crate::repository::hash_appended(
        stream_type,
        stream_id,
        expected,
        events,
        &ids,
        &positions,
        occurred_at,
        recorded_at,
        metadata,
        prev,
    );
    for (n, (event_type, event_version, payload)) in events.iter().enumerate() {
        let (event_id, prev, hash) = (ids[n], prev_hashes[n], hashes[n]);
        let stream_version = expected + 1 + i64::try_from(n).unwrap_or(i64::MAX);
        insert.execute(params![
            event_id.to_string(),
            stream_type,
            stream_id,
            stream_version,
            tx_id,
            event_type,
            event_version,
            serde_json::to_string(payload).map_err(|e| JournalError::Other(e.to_string()))?,
            micros(&occurred_at),
            micros(&recorded_at),
            metadata.actor,
            metadata.command_id,
            metadata.correlation_id,
            metadata.causation_id,
            metadata.reported_actor,
            prev.as_slice(),
            hash.as_slice(),
            positions[n],
            chain::CURRENT_CHAIN,
            metadata.command,
        ])?;
    }
    Ok((positions, recorded_at))
}

/// The command's ledger row: `stream`, from the first to the last position of `span`.
fn ledger(
    tx: &Connection,
    metadata: &CommandMetadata,
    stream_type: &str,
    stream_id: &str,
    span: (Option<&i64>, Option<&i64>),
    recorded_at: chrono::DateTime<Utc>,
) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO command_ledger (command_id, command, stream_type, stream_id, first_position, last_position, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            metadata.command_id,
            metadata.command,
            stream_type,
            stream_id,
            span.0.copied().unwrap_or(0),
            span.1.copied().unwrap_or(0),
            micros(&recorded_at)
        ],
    )?;
    Ok(())
}

/// Applies the claims of an append's `events` (at `positions`) to the reservation table, after
/// the events and the ledger row, under the write lock (see [`crate::reservations`]).
///
/// # Errors
/// [`JournalError::ClaimHeld`] when an event takes a claim that is held.
fn claims(
    tx: &Connection,
    stream_type: &str,
    stream_id: &str,
    events: &[NewEvent],
    positions: &[i64],
) -> Result<(), JournalError> {
    if !reservations::takes_or_releases(events) {
        return Ok(());
    }
    let holder = format!("{stream_type}/{stream_id}");
    let study_cohort = if reservations::needs_study_cohort(stream_type, events) {
        let payload: Option<String> = tx
            .query_row(
                "SELECT payload FROM events WHERE stream_type = 'field_study' AND stream_id = ?1
                   AND event_type = 'field_study_formed' ORDER BY stream_version LIMIT 1",
                params![stream_id],
                |r| r.get(0),
            )
            .optional()?;
        payload
            .and_then(|p| serde_json::from_str(&p).ok())
            .and_then(|p| reservations::cohort_of(&p))
    } else {
        None
    };
    for (change, position) in reservations::changes(stream_type, events, positions, study_cohort) {
        match change {
            ClaimChange::Take(claim) => take(tx, claim, None, &holder, position)?,
            ClaimChange::Release(claim) => {
                tx.execute(
                    "DELETE FROM reservations WHERE claim_kind = ?1 AND claim_key = ?2 AND holder = ?3",
                    params![claim.kind.as_str(), claim.key, holder],
                )?;
            }
            ClaimChange::ReleaseAny(claim) => {
                tx.execute(
                    "DELETE FROM reservations WHERE claim_kind = ?1 AND claim_key = ?2",
                    params![claim.kind.as_str(), claim.key],
                )?;
            }
            ClaimChange::TakeFrom(claim, from) => take(tx, claim, Some(&from), &holder, position)?,
        }
    }
    Ok(())
}

/// Takes `claim` for `holder` at `position`: inserted when free; moved when `from` (or the
/// holder itself) holds it; [`JournalError::ClaimHeld`] when another stream does.
fn take(
    tx: &Connection,
    claim: fieldtrail_domain::claims::Claim,
    from: Option<&str>,
    holder: &str,
    position: i64,
) -> Result<(), JournalError> {
    let by: Option<String> = tx
        .query_row(
            "SELECT holder FROM reservations WHERE claim_kind = ?1 AND claim_key = ?2",
            params![claim.kind.as_str(), claim.key],
            |r| r.get(0),
        )
        .optional()?;
    let sql = match by {
        Some(by) if from.is_some_and(|f| f == by || holder == by) => {
            "UPDATE reservations SET holder = ?3, position = ?4 WHERE claim_kind = ?1 AND claim_key = ?2"
        }
        Some(by) => return Err(JournalError::ClaimHeld { claim, holder: by }),
        None => {
            "INSERT INTO reservations (claim_kind, claim_key, holder, position) VALUES (?1, ?2, ?3, ?4)"
        }
    };
    tx.execute(
        sql,
        params![claim.kind.as_str(), claim.key, holder, position],
    )?;
    Ok(())
}

/// Whether the reservation table is marked stale (to be rebuilt from the events).
pub(super) fn reservations_stale(connection: &Connection) -> Result<bool, JournalError> {
    Ok(connection.query_row(
        "SELECT coalesce((SELECT rebuilt_at IS NULL FROM reservations_state WHERE id = 1), 1)",
        [],
        |r| r.get(0),
    )?)
}

/// Rebuilds the reservation table from the events in global-log order (see
/// [`crate::Backend::rebuild_reservations`]); with `only_if_stale`, only when the table is
/// marked stale (`None` otherwise).
pub(super) fn rebuild_reservations(
    tx: &Connection,
    only_if_stale: bool,
) -> Result<Option<ReservationsRebuilt>, JournalError> {
    if only_if_stale && !reservations_stale(tx)? {
        return Ok(None);
    }
    let placeholders = vec!["?"; CLAIM_EVENT_TYPES.len()].join(", ");
    let mut select = tx.prepare(&format!(
        "SELECT stream_type, stream_id, position, event_type, event_version, payload
         FROM events WHERE event_type IN ({placeholders}) ORDER BY tx_id, position"
    ))?;
    let rows: Vec<(String, String, i64, String, String, String)> = select
        .query_map(rusqlite::params_from_iter(CLAIM_EVENT_TYPES), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let payloads: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.5).unwrap_or(serde_json::Value::Null))
        .collect();
    let (fold, read) = reservations::fold(rows.iter().zip(&payloads).map(|(r, p)| {
        (
            r.0.as_str(),
            r.1.as_str(),
            r.2,
            r.3.as_str(),
            r.4.as_str(),
            p,
        )
    }));
    let held = reservations::rows(&fold);
    tx.execute("DELETE FROM reservations", [])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO reservations (claim_kind, claim_key, holder, position) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in &held {
        insert.execute(params![r.claim_kind, r.claim_key, r.holder, r.position])?;
    }
    tx.execute(
        "INSERT INTO reservations_state (id, rebuilt_at) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET rebuilt_at = excluded.rebuilt_at",
        params![micros(&Utc::now())],
    )?;
    Ok(Some(ReservationsRebuilt {
        events: read,
        held: held.len() as u64,
        clashes: fold.clashes(),
    }))
}

/// Appends every waiting command in ONE transaction (one fsync for all), each inside its own
/// savepoint with its own version check and ledger row: a command that fails (version
/// conflict, duplicate) is rolled back to its savepoint alone and gets its error; the others
/// commit. If the commit itself fails, every command gets that error (nothing was appended).
/// Answers each command through its reply channel; returns whether anything committed.
pub(super) fn group_commit(connection: &mut Connection, batch: Vec<PendingAppend>) -> bool {
    let mut results: Vec<Result<Vec<i64>, JournalError>> = Vec::with_capacity(batch.len());
    let outcome = (|| -> Result<(), JournalError> {
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for p in &batch {
            tx.execute_batch("SAVEPOINT command")?;
            match append(
                &tx,
                &p.stream_type,
                &p.stream_id,
                p.expected,
                &p.events,
                &p.metadata,
            ) {
                Ok(positions) => {
                    tx.execute_batch("RELEASE command")?;
                    results.push(Ok(positions));
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO command; RELEASE command")?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(())
    })();
    let committed = outcome.is_ok() && results.iter().any(Result::is_ok);
    match outcome {
        Ok(()) => {
            for (p, r) in batch.into_iter().zip(results) {
                let _ = p.reply.send(r);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for p in batch {
                let _ = p.reply.send(Err(JournalError::Other(format!(
                    "the journal could not commit: {message}"
                ))));
            }
        }
    }
    committed
}

/// Writes copied rows as given (see [`crate::Backend::import_events`]).
pub(super) fn import(
    tx: &Transaction<'_>,
    events: &[SealedEvent],
    ledger: &[LedgerRow],
) -> Result<(), JournalError> {
    let head: i64 = tx.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
        r.get(0)
    })?;
    if let Some(first) = events.iter().map(|e| e.position).min() {
        if first <= head {
            return Err(JournalError::Other(format!(
                "cannot copy event at position {first}: the target journal already reaches position {head}"
            )));
        }
    }
    // The copied events' claims are not in the reservation table yet (see
    // [`crate::Backend::import_events`]).
    tx.execute("UPDATE reservations_state SET rebuilt_at = NULL", [])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (position, event_id, stream_type, stream_id, stream_version, tx_id,
            event_type, event_version, payload, occurred_at, recorded_at, actor, command_id,
            correlation_id, causation_id, reported_actor, prev_hash, hash, chain_version, command)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?;
    for e in events {
        insert.execute(params![
            e.position,
            e.event_id.to_string(),
            e.stream_type,
            e.stream_id,
            e.stream_version,
            i64::try_from(e.tx_id).unwrap_or(i64::MAX),
            e.event_type,
            e.event_version,
            serde_json::to_string(&e.payload).map_err(|x| JournalError::Other(x.to_string()))?,
            micros(&e.occurred_at),
            micros(&e.recorded_at),
            e.actor,
            e.command_id,
            e.correlation_id,
            e.causation_id,
            e.reported_actor,
            e.prev_hash.as_ref().map(|h| h.to_vec()),
            e.hash.as_ref().map(|h| h.to_vec()),
            e.chain_version,
            e.command,
        ])?;
    }
    let mut ledger_insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO command_ledger (command_id, command, stream_type, stream_id, first_position, last_position, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for l in ledger {
        ledger_insert.execute(params![
            l.command_id,
            l.command,
            l.stream_type,
            l.stream_id,
            l.first_position,
            l.last_position,
            micros(&l.recorded_at)
        ])?;
    }
    Ok(())
}

/// Stores a projector's documents and checkpoint (see [`crate::Backend::commit_documents`]).
pub(super) fn documents(
    tx: &Transaction<'_>,
    commit: &DocumentCommit,
) -> Result<CommitOutcome, JournalError> {
    let stored = super::read::checkpoint(tx, &commit.checkpoint)?;
    let moved = match commit.expected {
        Some(expected) => stored != expected,
        None => stored > commit.cursor,
    };
    if moved {
        return Ok(CommitOutcome::Moved(stored));
    }
    if commit.expected.is_none() {
        tx.execute("DELETE FROM read_models", [])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO read_models (kind, key, document, position) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, key) DO UPDATE SET document = excluded.document, position = excluded.position",
    )?;
    for (kind, key, document) in &commit.documents {
        upsert.execute(params![
            kind,
            key,
            serde_json::to_string(document).map_err(|e| JournalError::Other(e.to_string()))?,
            commit.position
        ])?;
    }
    save_checkpoint(tx, &commit.checkpoint, commit.cursor)?;
    Ok(CommitOutcome::Written)
}

fn save_checkpoint(tx: &Transaction<'_>, name: &str, cursor: Cursor) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO checkpoints (name, tx_id, position, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position,
                                          updated_at = excluded.updated_at",
        params![
            name,
            i64::try_from(cursor.tx_id).unwrap_or(i64::MAX),
            cursor.position,
            micros(&Utc::now())
        ],
    )?;
    Ok(())
}

/// Stores a new API token.
pub(super) fn insert_token(tx: &Transaction<'_>, t: &TokenRecord) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO api_tokens (token_id, name, role, cohort_id, learner_id, secret_sha256, created_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            t.token_id.to_string(),
            t.name,
            t.role,
            t.cohort_id,
            t.learner_id,
            t.secret_sha256,
            micros(&t.created_at),
            t.revoked_at.as_ref().map(micros)
        ],
    )?;
    Ok(())
}

/// Appends every request of `batch` in one `BEGIN IMMEDIATE` transaction, all or nothing (see
/// [`crate::Backend::append_batch`]): each request is [`append`]ed in turn, so it sees the
/// requests before it (its version check, its chain and the ledger).
///
/// # Errors
/// The first request's error; nothing is committed then.
pub(super) fn append_batch(
    connection: &mut Connection,
    batch: &[crate::AppendRequest],
) -> Result<Vec<Vec<i64>>, JournalError> {
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut positions = Vec::with_capacity(batch.len());
    for r in batch {
        positions.push(append(
            &tx,
            &r.stream_type,
            &r.stream_id,
            r.expected,
            &r.events,
            &r.metadata,
        )?);
    }
    tx.commit()?;
    Ok(positions)
}
