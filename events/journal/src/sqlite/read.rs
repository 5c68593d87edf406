//! The embedded journal's reads, each inside one read transaction (a consistent snapshot).

use super::{instant, micros};
use crate::audit::{AuditRecord, Clock, Cut, EventFilter, StreamSet};
use crate::backend::{HistoryOf, LedgerRow, StreamQuery, TokenRecord};
use crate::chain::{self, JournalCheck, SealedEvent, VerifyReport};
use crate::{AppendedCommand, Cursor, JournalError, StoredEvent};
use rusqlite::types::Value as Sql;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// The columns [`sealed`] reads, in its order.
const COLUMNS: &str = "position, tx_id, event_id, stream_type, stream_id, stream_version, \
    event_type, event_version, payload, occurred_at, recorded_at, actor, command_id, \
    correlation_id, causation_id, prev_hash, hash, reported_actor, chain_version, command";

fn parse_json(text: &str) -> rusqlite::Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_uuid(text: &str, column: usize) -> rusqlite::Result<Uuid> {
    Uuid::try_parse(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A row selected with [`COLUMNS`], exactly as stored.
fn sealed(r: &Row<'_>) -> rusqlite::Result<SealedEvent> {
    let hash_of = |v: Option<Vec<u8>>| v.as_deref().and_then(chain::hash_from_bytes);
    Ok(SealedEvent {
        position: r.get(0)?,
        tx_id: u64::try_from(r.get::<_, i64>(1)?).unwrap_or_default(),
        event_id: parse_uuid(&r.get::<_, String>(2)?, 2)?,
        stream_type: r.get(3)?,
        stream_id: r.get(4)?,
        stream_version: r.get(5)?,
        event_type: r.get(6)?,
        event_version: r.get(7)?,
        payload: parse_json(&r.get::<_, String>(8)?)?,
        occurred_at: instant(r.get(9)?),
        recorded_at: instant(r.get(10)?),
        actor: r.get(11)?,
        command_id: r.get(12)?,
        correlation_id: r.get(13)?,
        causation_id: r.get(14)?,
        prev_hash: hash_of(r.get(15)?),
        hash: hash_of(r.get(16)?),
        reported_actor: r.get(17)?,
        chain_version: r.get(18)?,
        command: r.get(19)?,
    })
}

fn stored(e: SealedEvent) -> StoredEvent {
    StoredEvent {
        position: e.position,
        event_id: e.event_id,
        stream_type: e.stream_type,
        stream_id: e.stream_id,
        stream_version: e.stream_version,
        tx_id: e.tx_id,
        event_type: e.event_type,
        event_version: e.event_version,
        payload: e.payload,
        occurred_at: e.occurred_at,
        recorded_at: e.recorded_at,
        actor: e.actor,
        command_id: e.command_id,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        reported_actor: e.reported_actor,
    }
    .upcast()
}

fn select(
    tx: &Transaction<'_>,
    sql: &str,
    values: Vec<Sql>,
) -> Result<Vec<SealedEvent>, JournalError> {
    let mut statement = tx.prepare_cached(sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), sealed)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn applied(
    tx: &Transaction<'_>,
    command_id: &str,
) -> Result<Option<AppendedCommand>, JournalError> {
    Ok(tx
        .query_row(
            "SELECT stream_type || '/' || stream_id, first_position, last_position FROM command_ledger WHERE command_id = ?1",
            params![command_id],
            |r| {
                Ok(AppendedCommand {
                    command_id: command_id.to_owned(),
                    stream: r.get(0)?,
                    first_position: r.get(1)?,
                    last_position: r.get(2)?,
                })
            },
        )
        .optional()?)
}

pub(super) fn stream(
    tx: &Transaction<'_>,
    stream_type: &str,
    stream_id: &str,
    after: i64,
) -> Result<Vec<StoredEvent>, JournalError> {
    let rows = select(
        tx,
        &format!("SELECT {COLUMNS} FROM events WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version > ?3 ORDER BY stream_version"),
        vec![stream_type.to_owned().into(), stream_id.to_owned().into(), after.into()],
    )?;
    Ok(rows.into_iter().map(stored).collect())
}

/// The event at `stream_version` of one stream, if there is one.
pub(super) fn event_at(
    tx: &Transaction<'_>,
    stream_type: &str,
    stream_id: &str,
    stream_version: i64,
) -> Result<Option<StoredEvent>, JournalError> {
    let rows = select(
        tx,
        &format!("SELECT {COLUMNS} FROM events WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version = ?3"),
        vec![stream_type.to_owned().into(), stream_id.to_owned().into(), stream_version.into()],
    )?;
    Ok(rows.into_iter().map(stored).next())
}

fn json_list(ids: &[String]) -> Sql {
    Sql::Text(serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned()))
}

/// The global log (see [`crate::Backend::read_log`]): `(tx_id, position) > cursor`, cut and
/// narrowed. One writer commits in position order, so nothing can appear behind the cursor.
pub(super) fn log(
    tx: &Transaction<'_>,
    cut: Cut,
    streams: Option<&StreamSet>,
    after: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, JournalError> {
    let (filter, bound): (&str, i64) = match cut {
        Cut::Position(p) => ("position <= ?4", p),
        Cut::Recorded(t) => ("recorded_at <= ?4", micros(&t)),
        Cut::Occurred(t) => ("occurred_at <= ?4", micros(&t)),
    };
    let mut values: Vec<Sql> = vec![
        i64::try_from(after.tx_id).unwrap_or(i64::MAX).into(),
        after.position.into(),
        limit.into(),
        bound.into(),
    ];
    let in_streams = match streams {
        Some(s) => {
            values.extend([
                json_list(&s.programmes),
                json_list(&s.cohorts),
                json_list(&s.field_studies),
            ]);
            "((stream_type = 'programme' AND stream_id IN (SELECT value FROM json_each(?5)))
              OR (stream_type = 'cohort' AND stream_id IN (SELECT value FROM json_each(?6)))
              OR (stream_type = 'field_study' AND stream_id IN (SELECT value FROM json_each(?7))))"
        }
        None => "1",
    };
    let rows = select(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM events
             WHERE {in_streams} AND (tx_id, position) > (?1, ?2) AND {filter}
             ORDER BY tx_id, position LIMIT ?3"
        ),
        values,
    )?;
    Ok(rows.into_iter().map(stored).collect())
}

/// A [`StreamQuery`] that can cross to a blocking thread.
pub(super) enum OwnedQuery {
    ProgrammeOf(String),
    FieldStudiesOf(String),
    CohortsEnrolling(Vec<String>, String),
}

impl From<StreamQuery<'_>> for OwnedQuery {
    fn from(q: StreamQuery<'_>) -> Self {
        match q {
            StreamQuery::ProgrammeOf { cohort_id } => Self::ProgrammeOf(cohort_id.to_owned()),
            StreamQuery::FieldStudiesOf { cohort_id } => Self::FieldStudiesOf(cohort_id.to_owned()),
            StreamQuery::CohortsEnrolling {
                learner_ids,
                except,
            } => Self::CohortsEnrolling(learner_ids.to_vec(), except.to_owned()),
        }
    }
}

pub(super) fn find_streams(
    tx: &Transaction<'_>,
    query: &OwnedQuery,
) -> Result<Vec<String>, JournalError> {
    let (sql, values): (&str, Vec<Sql>) = match query {
        OwnedQuery::ProgrammeOf(cohort) => (
            "SELECT json_extract(payload, '$.programme_id') FROM events
             WHERE stream_type = 'cohort' AND stream_id = ?1 AND event_type = 'cohort_opened'
               AND json_extract(payload, '$.programme_id') IS NOT NULL
             ORDER BY stream_version LIMIT 1",
            vec![cohort.clone().into()],
        ),
        OwnedQuery::FieldStudiesOf(cohort) => (
            "SELECT stream_id FROM events
             WHERE stream_type = 'field_study' AND event_type = 'field_study_formed'
               AND json_extract(payload, '$.cohort_id') = ?1
             ORDER BY position",
            vec![cohort.clone().into()],
        ),
        OwnedQuery::CohortsEnrolling(learners, except) => (
            "SELECT DISTINCT stream_id FROM events
             WHERE stream_type = 'cohort' AND event_type = 'learner_enrolled'
               AND json_extract(payload, '$.learner_id') IN (SELECT value FROM json_each(?1))
               AND stream_id <> ?2
             ORDER BY stream_id",
            vec![json_list(learners), except.clone().into()],
        ),
    };
    let mut statement = tx.prepare_cached(sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A [`HistoryOf`] that can cross to a blocking thread.
pub(super) enum OwnedHistory {
    Stream(String, String),
    Actor(String),
}

impl From<HistoryOf<'_>> for OwnedHistory {
    fn from(of: HistoryOf<'_>) -> Self {
        match of {
            HistoryOf::Stream {
                stream_type,
                stream_id,
            } => Self::Stream(stream_type.to_owned(), stream_id.to_owned()),
            HistoryOf::Actor(a) => Self::Actor(a.to_owned()),
        }
    }
}

fn audit_record(e: SealedEvent) -> AuditRecord {
    let hash = e.hash.map(hex::encode);
    let prev_hash = e.prev_hash.map(hex::encode);
    let e = stored(e);
    AuditRecord {
        stream_type: e.stream_type,
        stream_id: e.stream_id,
        stream_version: e.stream_version,
        position: e.position,
        event_type: e.event_type,
        event_version: e.event_version,
        occurred_at: e.occurred_at,
        recorded_at: e.recorded_at,
        actor: e.actor,
        reported_actor: e.reported_actor,
        command_id: e.command_id,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        event_id: e.event_id,
        payload: e.payload,
        hash,
        prev_hash,
    }
}

pub(super) fn history(
    tx: &Transaction<'_>,
    of: &OwnedHistory,
    filter: &EventFilter,
) -> Result<Vec<AuditRecord>, JournalError> {
    let column = match filter.clock {
        Clock::Recorded => "recorded_at",
        Clock::Occurred => "occurred_at",
    };
    let from: Sql = filter.from.as_ref().map(micros).into();
    let to: Sql = filter.to.as_ref().map(micros).into();
    let (sql, values) = match of {
        OwnedHistory::Stream(stream_type, stream_id) => (
            format!(
                "SELECT {COLUMNS} FROM events
                 WHERE stream_type = ?1 AND stream_id = ?2
                   AND (?3 IS NULL OR {column} >= ?3) AND (?4 IS NULL OR {column} < ?4)
                   AND (?5 IS NULL OR actor = ?5 OR reported_actor = ?5)
                 ORDER BY stream_version"
            ),
            vec![
                stream_type.clone().into(),
                stream_id.clone().into(),
                from,
                to,
                filter.actor.clone().into(),
            ],
        ),
        OwnedHistory::Actor(actor) => (
            format!(
                "SELECT {COLUMNS} FROM events
                 WHERE (actor = ?1 OR reported_actor = ?1)
                   AND (?2 IS NULL OR {column} >= ?2) AND (?3 IS NULL OR {column} < ?3)
                 ORDER BY tx_id, position"
            ),
            vec![actor.clone().into(), from, to],
        ),
    };
    Ok(select(tx, &sql, values)?
        .into_iter()
        .map(audit_record)
        .collect())
}

/// `audit verify` on the file (see [`crate::Backend::verify`]).
pub(super) fn verify(
    tx: &Transaction<'_>,
    at_position: Option<i64>,
) -> Result<VerifyReport, JournalError> {
    let ledger: Vec<(String, String, i64)> = {
        let mut statement = tx.prepare(
            "SELECT stream_type, stream_id, max(last_position) FROM command_ledger GROUP BY 1, 2",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut check = JournalCheck::new(ledger, at_position);
    {
        let mut statement =
            tx.prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY position"))?;
        let rows = statement.query_map([], sealed)?;
        for row in rows {
            check.feed(row?.link());
        }
    }
    let mut diagnosed = HashMap::new();
    for (stream_type, stream_id) in check.broken_streams() {
        let rows = select(
            tx,
            &format!("SELECT {COLUMNS} FROM events WHERE stream_type = ?1 AND stream_id = ?2 ORDER BY stream_version, position"),
            vec![stream_type.clone().into(), stream_id.clone().into()],
        )?;
        if let Some(found) = chain::diagnose(&rows) {
            diagnosed.insert((stream_type, stream_id), found);
        }
    }
    Ok(check.finish(diagnosed))
}

pub(super) fn sealed_after(
    tx: &Transaction<'_>,
    after: Cursor,
    limit: i64,
) -> Result<Vec<SealedEvent>, JournalError> {
    select(
        tx,
        &format!("SELECT {COLUMNS} FROM events WHERE (tx_id, position) > (?1, ?2) ORDER BY tx_id, position LIMIT ?3"),
        vec![
            i64::try_from(after.tx_id).unwrap_or(i64::MAX).into(),
            after.position.into(),
            limit.into(),
        ],
    )
}

pub(super) fn ledger(tx: &Transaction<'_>) -> Result<Vec<LedgerRow>, JournalError> {
    let mut statement = tx.prepare(
        "SELECT command_id, command, stream_type, stream_id, first_position, last_position, recorded_at
         FROM command_ledger ORDER BY first_position, command_id",
    )?;
    let rows = statement.query_map([], |r| {
        Ok(LedgerRow {
            command_id: r.get(0)?,
            command: r.get(1)?,
            stream_type: r.get(2)?,
            stream_id: r.get(3)?,
            first_position: r.get(4)?,
            last_position: r.get(5)?,
            recorded_at: instant(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn checkpoint(tx: &Transaction<'_>, name: &str) -> Result<Cursor, JournalError> {
    Ok(tx
        .query_row(
            "SELECT tx_id, position FROM checkpoints WHERE name = ?1",
            params![name],
            |r| {
                Ok(Cursor {
                    tx_id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or_default(),
                    position: r.get(1)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

pub(super) fn document(
    tx: &Transaction<'_>,
    kind: &str,
    key: &str,
) -> Result<Option<(Value, i64)>, JournalError> {
    Ok(tx
        .query_row(
            "SELECT document, position FROM read_models WHERE kind = ?1 AND key = ?2",
            params![kind, key],
            |r| Ok((parse_json(&r.get::<_, String>(0)?)?, r.get(1)?)),
        )
        .optional()?)
}

pub(super) fn documents(
    tx: &Transaction<'_>,
) -> Result<Vec<(String, String, Value)>, JournalError> {
    let mut statement =
        tx.prepare("SELECT kind, key, document FROM read_models ORDER BY kind, key")?;
    let rows = statement.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, parse_json(&r.get::<_, String>(2)?)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn tokens(
    tx: &Transaction<'_>,
    live: Option<Uuid>,
) -> Result<Vec<TokenRecord>, JournalError> {
    let sql =
        "SELECT token_id, name, role, cohort_id, learner_id, secret_sha256, created_at, revoked_at
               FROM api_tokens WHERE ?1 IS NULL OR (token_id = ?1 AND revoked_at IS NULL)
               ORDER BY created_at DESC";
    let mut statement = tx.prepare_cached(sql)?;
    let rows = statement.query_map(params![live.map(|u| u.to_string())], |r| {
        Ok(TokenRecord {
            token_id: parse_uuid(&r.get::<_, String>(0)?, 0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            cohort_id: r.get(3)?,
            learner_id: r.get(4)?,
            secret_sha256: r.get(5)?,
            created_at: instant(r.get(6)?),
            revoked_at: r.get::<_, Option<i64>>(7)?.map(instant),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
