//! What auditors read from the journal: a stream's or an actor's events with their whole
//! envelope and chain columns, the journal cut at a point (for `as_of` answers), the walk of
//! `audit verify`, and the sealing of rows written before the hash chain existed.
//!
//! The pure parts (canonical form, hash, checks, digest) are in [`crate::chain`].

use crate::chain::{
    self, Break, ChainLink, ChainedEvent, Hash, JournalCheck, SealedEvent, VerifyReport, GENESIS,
};
use crate::stored::{StoredEvent, COLUMNS};
use crate::{Cursor, JournalError};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use deadpool_postgres::Pool;
use futures::{pin_mut, TryStreamExt};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{IsolationLevel, Row};
use uuid::Uuid;

/// A point in the journal to cut it at, for `as_of` answers. Events are kept in global-log
/// order; the cut keeps:
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// events at global positions `<=` this one;
    Position(i64),
    /// events the journal recorded at or before this instant (`recorded_at <= t`, the
    /// system's clock);
    Recorded(DateTime<Utc>),
    /// events that happened in the world at or before this instant (`occurred_at <= t`, the
    /// command's `at`).
    Occurred(DateTime<Utc>),
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::Position(p) => write!(f, "as of global position {p}"),
            Cut::Recorded(t) => write!(f, "as recorded by {}", utc_text(t)),
            Cut::Occurred(t) => write!(f, "as of what had happened by {}", utc_text(t)),
        }
    }
}

/// Up to `limit` events of the cut after `after`, in global-log order ((transaction id,
/// position), below the horizon of running transactions, as [`crate::GlobalLog`] reads).
/// The order names `events.tx_id`: a bare `tx_id` would be the text output column of
/// `COLUMNS` (`tx_id::text AS tx_id`), sorted as text and without the index.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn read_cut(
    pool: &Pool,
    cut: Cut,
    after: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, JournalError> {
    read_cut_where(pool, cut, None, after, limit).await
}

/// The one query behind [`read_cut`] and [`read_cut_of`]: the global log after `after`, cut
/// at `cut`, optionally narrowed to `streams`.
pub(crate) async fn read_cut_where(
    pool: &Pool,
    cut: Cut,
    streams: Option<&StreamSet>,
    after: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, JournalError> {
    let (filter, bound): (&str, Box<dyn ToSql + Sync + Send>) = match cut {
        Cut::Position(p) => ("position <= $4", Box::new(p)),
        Cut::Recorded(t) => ("recorded_at <= $4", Box::new(t)),
        Cut::Occurred(t) => ("occurred_at <= $4", Box::new(t)),
    };
    let in_streams = if streams.is_some() {
        "((stream_type = 'programme' AND stream_id = ANY($5))
          OR (stream_type = 'cohort' AND stream_id = ANY($6))
          OR (stream_type = 'field_study' AND stream_id = ANY($7)))"
    } else {
        "TRUE"
    };
    let tx_id = after.tx_id.to_string();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tx_id, &after.position, &limit, &*bound];
    if let Some(streams) = streams {
        params.extend([
            &streams.programmes as &(dyn ToSql + Sync),
            &streams.cohorts,
            &streams.field_studies,
        ]);
    }
    let client = pool.get().await?;
    // Prepared once per connection and kind of cut (six texts): the projector, the relay and
    // every event stream read the log after each commit.
    let statement = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events
             WHERE {in_streams}
               AND (tx_id, position) > ($1::text::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
               AND {filter}
             ORDER BY events.tx_id, events.position
             LIMIT $3"
        ))
        .await?;
    let rows = client.query(&statement, &params).await?;
    rows.iter()
        .map(|r| StoredEvent::from_row(r).map_err(JournalError::from))
        .collect()
}

/// The streams an `as_of` fold reads, by type (`None`: every stream).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamSet {
    /// Programme ids.
    pub programmes: Vec<String>,
    /// Cohort ids.
    pub cohorts: Vec<String>,
    /// Field study ids.
    pub field_studies: Vec<String>,
}

/// As [`read_cut`], keeping only the events of `streams`. The selection goes through the
/// (stream type, stream id, version) index, so a few streams are read quickly from a large
/// journal.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn read_cut_of(
    pool: &Pool,
    cut: Cut,
    streams: &StreamSet,
    after: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, JournalError> {
    read_cut_where(pool, cut, Some(streams), after, limit).await
}

/// The programme a cohort was opened on (`None`: no such cohort).
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn programme_of(pool: &Pool, cohort_id: &str) -> Result<Option<String>, JournalError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT payload ->> 'programme_id' FROM events
             WHERE stream_type = 'cohort' AND stream_id = $1 AND event_type = 'cohort_opened'
             ORDER BY stream_version LIMIT 1",
            &[&cohort_id],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// The field studies formed in a cohort, sorted.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn field_studies_of(pool: &Pool, cohort_id: &str) -> Result<Vec<String>, JournalError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT DISTINCT stream_id FROM events
             WHERE stream_type = 'field_study' AND event_type = 'field_study_formed'
               AND payload ->> 'cohort_id' = $1
             ORDER BY stream_id",
            &[&cohort_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Which clock a time filter applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// `recorded_at`: when the journal stored the event.
    #[default]
    Recorded,
    /// `occurred_at`: when the fact happened in the world.
    Occurred,
}

impl Clock {
    fn column(self) -> &'static str {
        match self {
            Clock::Recorded => "recorded_at",
            Clock::Occurred => "occurred_at",
        }
    }

    /// `recorded` or `occurred`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "recorded" => Ok(Clock::Recorded),
            "occurred" => Ok(Clock::Occurred),
            other => Err(format!("expected recorded or occurred, got {other:?}")),
        }
    }
}

/// Narrows a history: `from <= time < to` on `clock`, and one actor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventFilter {
    /// Inclusive lower bound.
    #[serde(serialize_with = "opt_time")]
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    #[serde(serialize_with = "opt_time")]
    pub to: Option<DateTime<Utc>>,
    /// The clock `from` and `to` apply to.
    pub clock: Clock,
    /// Only this actor's events (`role:name`, exact; as `actor` or as `reported_actor`).
    pub actor: Option<String>,
}

/// An event with its whole envelope and its chain columns, as auditors see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// `programme`, `cohort` or `field_study`.
    pub stream_type: String,
    /// The stream's id.
    pub stream_id: String,
    /// Version in the stream (1, 2, ...).
    pub stream_version: i64,
    /// Global position.
    pub position: i64,
    /// e.g. `session_held`.
    pub event_type: String,
    /// e.g. `1`.
    pub event_version: String,
    /// When it happened in the world, RFC 3339 UTC.
    #[serde(serialize_with = "time")]
    pub occurred_at: DateTime<Utc>,
    /// When the journal recorded it, RFC 3339 UTC.
    #[serde(serialize_with = "time")]
    pub recorded_at: DateTime<Utc>,
    /// Who issued the command, `role:name` (the authenticated caller).
    pub actor: String,
    /// The actor the client wrote in the envelope when it differs from `actor` (e.g. each
    /// line's actor in an import); `null` otherwise.
    pub reported_actor: Option<String>,
    /// The command's idempotency key.
    pub command_id: String,
    /// The conversation it belongs to.
    pub correlation_id: String,
    /// What caused it.
    pub causation_id: String,
    /// The event's id (UUID).
    pub event_id: Uuid,
    /// The payload (the event's fields).
    pub payload: Value,
    /// Its hash (64 hex digits), `null` for a row not sealed.
    pub hash: Option<String>,
    /// The previous event's hash in the stream (zeros for version 1).
    pub prev_hash: Option<String>,
}

/// An instant as documents show it: RFC 3339 UTC, `Z`, at most microseconds.
pub fn utc_text(t: &DateTime<Utc>) -> String {
    t.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&utc_text(t))
}

fn opt_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&utc_text(t)),
        None => s.serialize_none(),
    }
}

const AUDIT_COLUMNS: &str = "stream_type, stream_id, stream_version, position, event_type, \
    event_version, occurred_at, recorded_at, actor, command_id, correlation_id, causation_id, \
    event_id, payload, hash, prev_hash, reported_actor";

/// A history row; its payload is upcast to the current version of its event type (the
/// stored row, which the hash covers, is unchanged).
fn audit_record(row: &Row) -> Result<AuditRecord, tokio_postgres::Error> {
    let mut record = audit_record_as_stored(row)?;
    if let Ok((version, payload)) = fieldtrail_domain::upcast::upcast(
        &record.event_type,
        &record.event_version,
        record.payload.clone(),
    ) {
        record.event_version = version;
        record.payload = payload;
    }
    Ok(record)
}

fn audit_record_as_stored(row: &Row) -> Result<AuditRecord, tokio_postgres::Error> {
    let hex_of = |v: Option<Vec<u8>>| v.map(hex::encode);
    Ok(AuditRecord {
        stream_type: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        stream_version: row.try_get(2)?,
        position: row.try_get(3)?,
        event_type: row.try_get(4)?,
        event_version: row.try_get(5)?,
        occurred_at: row.try_get(6)?,
        recorded_at: row.try_get(7)?,
        actor: row.try_get(8)?,
        command_id: row.try_get(9)?,
        correlation_id: row.try_get(10)?,
        causation_id: row.try_get(11)?,
        event_id: row.try_get(12)?,
        payload: row.try_get(13)?,
        hash: hex_of(row.try_get(14)?),
        prev_hash: hex_of(row.try_get(15)?),
        reported_actor: row.try_get(16)?,
    })
}

/// Every event of one stream that passes `filter`, in stream-version order.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn stream_events(
    pool: &Pool,
    stream_type: &str,
    stream_id: &str,
    filter: &EventFilter,
) -> Result<Vec<AuditRecord>, JournalError> {
    let client = pool.get().await?;
    let column = filter.clock.column();
    let rows = client
        .query(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM events
                 WHERE stream_type = $1 AND stream_id = $2
                   AND ($3::timestamptz IS NULL OR {column} >= $3)
                   AND ($4::timestamptz IS NULL OR {column} < $4)
                   AND ($5::text IS NULL OR actor = $5 OR reported_actor = $5)
                 ORDER BY stream_version"
            ),
            &[
                &stream_type,
                &stream_id,
                &filter.from,
                &filter.to,
                &filter.actor,
            ],
        )
        .await?;
    rows.iter()
        .map(|r| audit_record(r).map_err(JournalError::from))
        .collect()
}

/// Every event issued by `actor` (as `actor` or as `reported_actor`) that passes `filter`
/// (its `actor` field is ignored), in global-log order.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn actor_events(
    pool: &Pool,
    actor: &str,
    filter: &EventFilter,
) -> Result<Vec<AuditRecord>, JournalError> {
    let client = pool.get().await?;
    let column = filter.clock.column();
    let rows = client
        .query(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM events
                 WHERE (actor = $1 OR reported_actor = $1)
                   AND ($2::timestamptz IS NULL OR {column} >= $2)
                   AND ($3::timestamptz IS NULL OR {column} < $3)
                 ORDER BY tx_id, position"
            ),
            &[&actor, &filter.from, &filter.to],
        )
        .await?;
    rows.iter()
        .map(|r| audit_record(r).map_err(JournalError::from))
        .collect()
}

/// Whether the stream has any event.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn stream_exists(
    pool: &Pool,
    stream_type: &str,
    stream_id: &str,
) -> Result<bool, JournalError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM events WHERE stream_type = $1 AND stream_id = $2)",
            &[&stream_type, &stream_id],
        )
        .await?;
    Ok(row.get(0))
}

/// The cohorts other than `except` in which any of `learner_ids` enrolled, sorted.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn cohorts_enrolling(
    pool: &Pool,
    learner_ids: &[String],
    except: &str,
) -> Result<Vec<String>, JournalError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT DISTINCT stream_id FROM events
             WHERE stream_type = 'cohort' AND event_type = 'learner_enrolled'
               AND payload ->> 'learner_id' = ANY($1) AND stream_id <> $2
             ORDER BY stream_id",
            &[&learner_ids, &except],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(crate) const SEALED_COLUMNS: &str = "position, tx_id::text, event_id, stream_type, stream_id, \
    stream_version, event_type, event_version, payload, occurred_at, recorded_at, actor, \
    command_id, correlation_id, causation_id, prev_hash, hash, reported_actor, chain_version, \
    command";

pub(crate) fn sealed_event(row: &Row) -> Result<SealedEvent, tokio_postgres::Error> {
    let tx: &str = row.try_get(1)?;
    let hash_of = |v: Option<&[u8]>| v.and_then(chain::hash_from_bytes);
    Ok(SealedEvent {
        position: row.try_get(0)?,
        tx_id: tx.parse().unwrap_or_default(),
        event_id: row.try_get(2)?,
        stream_type: row.try_get(3)?,
        stream_id: row.try_get(4)?,
        stream_version: row.try_get(5)?,
        event_type: row.try_get(6)?,
        event_version: row.try_get(7)?,
        payload: row.try_get(8)?,
        occurred_at: row.try_get(9)?,
        recorded_at: row.try_get(10)?,
        actor: row.try_get(11)?,
        command_id: row.try_get(12)?,
        correlation_id: row.try_get(13)?,
        causation_id: row.try_get(14)?,
        prev_hash: hash_of(row.try_get(15)?),
        hash: hash_of(row.try_get(16)?),
        reported_actor: row.try_get(17)?,
        chain_version: row.try_get(18)?,
        command: row.try_get(19)?,
    })
}

/// Rows decoded and hashed per batch handed to a blocking thread.
const VERIFY_BATCH: usize = 2048;
/// Batches in flight at once (decoded and hashed while the next rows are read).
const VERIFY_IN_FLIGHT: usize = 3;

/// A row's [`ChainLink`]: decodes the row (borrowing its text columns) and checks its content
/// against its hash.
fn chain_link(row: &Row) -> Result<ChainLink, tokio_postgres::Error> {
    let tx: &str = row.try_get(1)?;
    let hash_of = |v: Option<&[u8]>| v.and_then(chain::hash_from_bytes);
    let stream_type: &str = row.try_get(3)?;
    let stream_id: &str = row.try_get(4)?;
    let stream_version: i64 = row.try_get(5)?;
    let prev_hash = hash_of(row.try_get(15)?);
    let hash = hash_of(row.try_get(16)?);
    let chain_version: i16 = row.try_get(18)?;
    let position: i64 = row.try_get(0)?;
    let content_matches = match (prev_hash, hash) {
        (Some(prev_hash), Some(hash)) if chain::known_chain(chain_version) => {
            let mut event = ChainedEvent {
                stream_type,
                stream_id,
                stream_version,
                event_id: row.try_get(2)?,
                event_type: row.try_get(6)?,
                event_version: row.try_get(7)?,
                payload: &Value::Null,
                occurred_at: row.try_get(9)?,
                recorded_at: row.try_get(10)?,
                actor: row.try_get(11)?,
                command_id: row.try_get(12)?,
                correlation_id: row.try_get(13)?,
                causation_id: row.try_get(14)?,
                prev_hash: &prev_hash,
                reported_actor: row.try_get(17)?,
                chain_version,
                position,
                command: row.try_get(19)?,
            };
            // Fast path: the canonical payload straight from the jsonb text. The reference
            // (parse, then canonical_json) decides whenever the fast path declines or differs.
            let JsonbText(text) = row.try_get(8)?;
            let mut canonical = Vec::with_capacity(text.len());
            let fast = chain::canonical_json_text(text, &mut canonical)
                .is_some_and(|()| chain::event_hash_with_payload(&event, &canonical) == hash);
            fast || {
                let payload: Value = row.try_get(8)?;
                event.payload = &payload;
                chain::event_hash(&event) == hash
            }
        }
        _ => false,
    };
    Ok(ChainLink {
        stream_type: stream_type.to_owned(),
        stream_id: stream_id.to_owned(),
        stream_version,
        position,
        tx_id: tx.parse().unwrap_or_default(),
        prev_hash,
        hash,
        content_matches,
        chain_version,
    })
}

/// The text of a `jsonb` (or `json`) column as PostgreSQL sends it, without parsing it.
struct JsonbText<'a>(&'a [u8]);

impl<'a> FromSql<'a> for JsonbText<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            // Binary jsonb: a version byte (1), then the text.
            match raw.split_first() {
                Some((1, text)) => Ok(JsonbText(text)),
                _ => Err("unsupported jsonb binary version".into()),
            }
        } else {
            Ok(JsonbText(raw))
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }
}

type LinkBatch = tokio::task::JoinHandle<Result<Vec<ChainLink>, tokio_postgres::Error>>;

/// `audit verify`: walks the whole journal in one consistent snapshot (a read-only
/// repeatable-read transaction: it holds no transaction id, so it holds back no reader),
/// in global-position order, recomputing every row's hash and following every stream's chain
/// ([`JournalCheck`]); then diagnoses each broken stream over its rows in version order
/// ([`chain::diagnose`]). Rows are decoded and hashed on blocking threads, a few batches while
/// the next rows are read. With `at_position`, also gives the digest as it stood at that
/// position.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`]; a tampered row is a [`Break`] in the
/// report, not an error.
pub async fn verify(pool: &Pool, at_position: Option<i64>) -> Result<VerifyReport, JournalError> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let ledger: Vec<(String, String, i64)> = tx
        .query(
            "SELECT stream_type, stream_id, max(last_position) FROM command_ledger GROUP BY 1, 2",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut check = JournalCheck::new(ledger, at_position);
    let rows = tx
        .query_raw(
            &format!("SELECT {SEALED_COLUMNS} FROM events ORDER BY position"),
            std::iter::empty::<i64>(),
        )
        .await?;
    pin_mut!(rows);
    let mut pending: VecDeque<LinkBatch> = VecDeque::new();
    let mut batch = Vec::with_capacity(VERIFY_BATCH);
    loop {
        let row = rows.try_next().await?;
        let end = row.is_none();
        if let Some(row) = row {
            batch.push(row);
        }
        if batch.len() == VERIFY_BATCH || (end && !batch.is_empty()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(VERIFY_BATCH));
            pending.push_back(tokio::task::spawn_blocking(move || {
                full.iter().map(chain_link).collect()
            }));
            if pending.len() >= VERIFY_IN_FLIGHT {
                if let Some(done) = pending.pop_front() {
                    feed(&mut check, done).await?;
                }
            }
        }
        if end {
            break;
        }
    }
    while let Some(done) = pending.pop_front() {
        feed(&mut check, done).await?;
    }
    let mut diagnosed = HashMap::new();
    for (stream_type, stream_id) in check.broken_streams() {
        let rows: Vec<SealedEvent> = tx
            .query(
                &format!(
                    "SELECT {SEALED_COLUMNS} FROM events WHERE stream_type = $1 AND stream_id = $2
                     ORDER BY stream_version, position"
                ),
                &[&stream_type, &stream_id],
            )
            .await?
            .iter()
            .map(sealed_event)
            .collect::<Result<_, _>>()?;
        if let Some(found) = chain::diagnose(&rows) {
            diagnosed.insert((stream_type, stream_id), found);
        }
    }
    tx.commit().await?;
    Ok(check.finish(diagnosed))
}

async fn feed(check: &mut JournalCheck, done: LinkBatch) -> Result<(), JournalError> {
    let links = done
        .await
        .map_err(|e| JournalError::Other(format!("verification thread failed: {e}")))??;
    for link in links {
        check.feed(link);
    }
    Ok(())
}

/// Advisory lock key serializing [`seal_unsealed`] across processes.
pub const SEAL_LOCK: i64 = 7_461_003;

/// Seals the rows written before the hash chain existed (migration V2 left their `hash`
/// NULL): computes every stream's chain in version order and stores `prev_hash` and `hash`
/// (the one UPDATE the append-only trigger allows). Returns how many rows it sealed; 0 and
/// one indexed query when there is nothing to do. Runs in one transaction.
///
/// # Errors
/// [`JournalError::Postgres`] / [`JournalError::Pool`].
pub async fn seal_unsealed(pool: &Pool) -> Result<u64, JournalError> {
    let mut client = pool.get().await?;
    let any = client
        .query_opt("SELECT 1 FROM events WHERE hash IS NULL LIMIT 1", &[])
        .await?;
    if any.is_none() {
        return Ok(0);
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SEAL_LOCK])
        .await?;
    let streams: Vec<(String, String)> = tx
        .query(
            "SELECT DISTINCT stream_type, stream_id FROM events WHERE hash IS NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let update = tx
        .prepare("UPDATE events SET prev_hash = $1, hash = $2 WHERE position = $3 AND hash IS NULL")
        .await?;
    let mut sealed = 0;
    for (stream_type, stream_id) in streams {
        let rows = tx
            .query(
                &format!(
                    "SELECT {SEALED_COLUMNS} FROM events WHERE stream_type = $1 AND stream_id = $2
                     ORDER BY stream_version"
                ),
                &[&stream_type, &stream_id],
            )
            .await?;
        let mut prev: Hash = GENESIS;
        for row in &rows {
            let mut event = sealed_event(row)?;
            if let Some(hash) = event.hash {
                prev = hash;
                continue;
            }
            event.prev_hash = Some(prev);
            let Some(hash) = event.recompute() else {
                continue;
            };
            sealed += tx
                .execute(
                    &update,
                    &[&prev.as_slice(), &hash.as_slice(), &event.position],
                )
                .await?;
            prev = hash;
        }
    }
    tx.commit().await?;
    Ok(sealed)
}

/// The failure a verification names, for messages: `type/id version n: reason`.
pub fn describe(b: &Break) -> String {
    format!("{} version {}: {}", b.stream, b.version, b.reason)
}
