//! [`PgJournal`]: our cqrs-es `PersistedEventRepository` on tokio-postgres.
//!
//! An append is one short transaction whose FIRST write is the events insert with the
//! expected-version check inside the statement, so that the transaction id (taken at the first
//! write) orders appends to one stream the same way as their stream versions (DESIGN.md
//! decision 3, trap a). The command ledger row follows in the same transaction, then the
//! claims of the events in the reservation table ([`crate::reservations`]).
//! Before the insert, the append only reads: the database clock (`recorded_at`), the hash of
//! the stream's previous event, which the new events' hashes chain to ([`crate::chain`]), and
//! the new events' global positions (`nextval` of the position's sequence, in the same
//! statement), which their hashes cover and the insert stores explicitly. `nextval` may give
//! the transaction its id (PostgreSQL does when it logs the sequence), but only after that
//! statement's snapshot saw the stream's head committed: the writer of the head still has
//! the smaller transaction id, so trap (a) stays closed.

use crate::chain::{self, ChainedEvent, Hash, GENESIS};
use crate::stored::{StoredEvent, COLUMNS};
use crate::{CommandMetadata, JournalError};
use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// The Postgres journal (cheap to clone: it holds a pool); the production [`crate::Backend`].
#[derive(Clone)]
pub struct PgJournal {
    pool: Pool,
    /// Appends waiting for the next group commit ([`PgJournal::group_append`]).
    pending: crate::group::AppendQueue,
    /// The URL the `LISTEN` connection uses ([`crate::Backend::listen`]).
    url: Option<String>,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

/// What the ledger knows of an applied command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedCommand {
    /// The idempotency key.
    pub command_id: String,
    /// `type/id` of the stream it appended to.
    pub stream: String,
    /// Global position of its first event.
    pub first_position: i64,
    /// Global position of its last event.
    pub last_position: i64,
}

const APPEND: &str = "
INSERT INTO events (event_id, stream_type, stream_id, stream_version, event_type, event_version,
                    payload, occurred_at, actor, command_id, correlation_id, causation_id,
                    recorded_at, prev_hash, hash, reported_actor, position, chain_version, command)
OVERRIDING SYSTEM VALUE
SELECT e.event_id, $1, $2, $3 + e.n, e.event_type, e.event_version, e.payload, $8, $9, $10, $11, $12,
       $13, e.prev_hash, e.hash, $16, e.position, $18, $19
FROM unnest($4::uuid[], $5::text[], $6::text[], $7::jsonb[], $14::bytea[], $15::bytea[],
            $17::bigint[]) WITH ORDINALITY
       AS e(event_id, event_type, event_version, payload, prev_hash, hash, position, n)
WHERE (SELECT coalesce(max(stream_version), 0) FROM events
       WHERE stream_type = $1 AND stream_id = $2) = $3
ORDER BY e.n
RETURNING position";

/// [`APPEND`] and the command's ledger row in one statement (a data-modifying `WITH`): the
/// ledger row is written only when the events are (`HAVING count(*) > 0`), and a command id
/// already in the ledger fails the whole statement (`command_ledger_pkey`). `$17` is the
/// command's name (stored in the events too, which their hashes cover), `$18` the events'
/// positions (taken by [`HEAD`]), `$19` their chain version; the ledger row's `recorded_at`
/// is the events' (`$13`). Returns the events' positions, in stream order.
const APPEND_WITH_LEDGER: &str = "
WITH appended AS (
  INSERT INTO events (event_id, stream_type, stream_id, stream_version, event_type, event_version,
                      payload, occurred_at, actor, command_id, correlation_id, causation_id,
                      recorded_at, prev_hash, hash, reported_actor, position, chain_version, command)
  OVERRIDING SYSTEM VALUE
  SELECT e.event_id, $1, $2, $3 + e.n, e.event_type, e.event_version, e.payload, $8, $9, $10, $11, $12,
         $13, e.prev_hash, e.hash, $16, e.position, $19, $17
  FROM unnest($4::uuid[], $5::text[], $6::text[], $7::jsonb[], $14::bytea[], $15::bytea[],
              $18::bigint[]) WITH ORDINALITY
         AS e(event_id, event_type, event_version, payload, prev_hash, hash, position, n)
  WHERE (SELECT coalesce(max(stream_version), 0) FROM events
         WHERE stream_type = $1 AND stream_id = $2) = $3
  ORDER BY e.n
  RETURNING position
), ledger AS (
  INSERT INTO command_ledger (command_id, command, stream_type, stream_id, first_position, last_position, recorded_at)
  SELECT $10, $17, $1, $2, min(position), max(position), $13 FROM appended HAVING count(*) > 0
)
SELECT position FROM appended ORDER BY position";

/// Read before the insert: the database clock, which becomes the events' `recorded_at`, the
/// hash of the stream's event at the expected version, which the first new event chains to
/// (see [`crate::chain`]), and, when that event is there, `$4` new global positions (see the
/// module documentation for why taking them here keeps trap (a) closed).
const HEAD: &str = "
SELECT clock_timestamp(), e.hash, e.position IS NOT NULL,
       CASE WHEN e.position IS NOT NULL OR $3 = 0 THEN ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'position'))
                  FROM generate_series(1, $4::int)) END
FROM (SELECT 1) AS one
LEFT JOIN events e ON e.stream_type = $1 AND e.stream_id = $2 AND e.stream_version = $3";

impl PgJournal {
    /// A journal on `pool` (migrated with [`crate::database::migrate`]).
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            pending: crate::group::AppendQueue::default(),
            url: None,
            notify: std::sync::Arc::default(),
        }
    }

    /// As [`PgJournal::new`], with the URL a `LISTEN` connection opens to learn of commits.
    pub fn with_url(pool: Pool, url: &str) -> Self {
        Self {
            url: Some(url.to_owned()),
            ..Self::new(pool)
        }
    }

    /// The URL given to [`PgJournal::with_url`].
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The notifier the `LISTEN` connection signals.
    pub fn notify(&self) -> &std::sync::Arc<tokio::sync::Notify> {
        &self.notify
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The ledger's record of `command_id`, if it was applied.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn applied(&self, command_id: &str) -> Result<Option<AppendedCommand>, JournalError> {
        let client = self.pool.get().await?;
        // Every command asks: a statement prepared once per connection (one round trip saved).
        let statement = client
            .prepare_cached(
                "SELECT stream_type || '/' || stream_id, first_position, last_position FROM command_ledger WHERE command_id = $1",
            )
            .await?;
        let row = client.query_opt(&statement, &[&command_id]).await?;
        Ok(row.map(|r| AppendedCommand {
            command_id: command_id.to_owned(),
            stream: r.get(0),
            first_position: r.get(1),
            last_position: r.get(2),
        }))
    }

    /// Every event of one stream, in stream-version order, from version `after + 1`.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE stream_type = $1 AND stream_id = $2 AND stream_version > $3 ORDER BY stream_version"))
            .await?;
        let rows = client
            .query(&statement, &[&stream_type, &stream_id, &after])
            .await?;
        rows.iter()
            .map(|r| StoredEvent::from_row(r).map_err(JournalError::from))
            .collect()
    }

    /// The event at `stream_version` of one stream, if there is one.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn event_at(
        &self,
        stream_type: &str,
        stream_id: &str,
        stream_version: i64,
    ) -> Result<Option<StoredEvent>, JournalError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE stream_type = $1 AND stream_id = $2 AND stream_version = $3"))
            .await?;
        let row = client
            .query_opt(&statement, &[&stream_type, &stream_id, &stream_version])
            .await?;
        row.as_ref()
            .map(|r| StoredEvent::from_row(r).map_err(JournalError::from))
            .transpose()
    }

    /// Appends `events` (type, version, payload without tag) to a stream whose current version
    /// must be exactly `expected`, and records `metadata.command_id` in the ledger, in one
    /// transaction. Returns the new events' global positions.
    ///
    /// # Errors
    /// [`JournalError::VersionConflict`] when the stream is not at `expected` (whether or not a
    /// unique key would clash); [`JournalError::DuplicateCommand`] when the command id is in
    /// the ledger already; [`JournalError::ClaimHeld`] when an event takes a claim that
    /// is held; [`JournalError::Postgres`] / [`JournalError::Pool`]. Nothing is
    /// appended in any error case.
    pub async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[(String, String, Value)],
        metadata: &CommandMetadata,
    ) -> Result<Vec<i64>, JournalError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        match append_in(&tx, stream_type, stream_id, expected, events, metadata).await {
            Ok(positions) => {
                tx.commit().await?;
                metrics::histogram!("fieldtrail_append_batch_events")
                    .record(positions.len() as f64);
                Ok(positions)
            }
            Err(e) => {
                // Dropping the transaction rolls it back; say so explicitly when we can.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

impl PgJournal {
    /// As [`PgJournal::append`], sharing one transaction (one WAL flush) with the appends that
    /// are waiting at the same moment: the first append to find the queue empty leads, takes a
    /// connection, and commits everything queued by then in one transaction, each command in
    /// its own savepoint with its own version check and ledger row, so one failing command
    /// fails alone. With nothing else waiting, the append runs alone, without a savepoint.
    /// The leader runs as its own task: a caller that goes away does not abandon the others.
    ///
    /// # Errors
    /// As [`PgJournal::append`]; when the connection or the commit fails, every command of the
    /// batch gets that error (nothing was appended).
    pub async fn group_append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[(String, String, Value)],
        metadata: &CommandMetadata,
    ) -> Result<Vec<i64>, JournalError> {
        let (answer, lead) =
            self.pending
                .push(stream_type, stream_id, expected, events, metadata)?;
        if lead {
            let (pool, pending) = (self.pool.clone(), self.pending.clone());
            tokio::spawn(async move {
                let client = pool.get().await;
                let batch = pending.take();
                match client {
                    Ok(mut client) => commit_batch(&mut client, batch).await,
                    Err(e) => {
                        let message = format!("postgres pool: {e}");
                        for p in batch {
                            let _ = p
                                .reply
                                .send(Err(JournalError::Unavailable(message.clone())));
                        }
                    }
                }
            });
        }
        crate::group::answer(answer).await
    }
}

/// Commits `batch` in one transaction (see [`PgJournal::group_append`]) and answers each.
///
/// Trap (a) stays closed on the savepoint path too, though the transaction takes its id at
/// its first command's insert and decides nothing itself: every command of `batch` was
/// decided, against a state whose events were committed (a read, or this process's own
/// committed append), before it was queued, so before `take` and before this transaction
/// began. The writer of the event at a command's expected version therefore committed, and
/// took its (smaller) transaction id, before this transaction took its own; a writer that
/// advanced the stream after the decision makes the command's version check fail. The
/// events' `tx_id` is the top-level transaction's (`pg_current_xact_id()` in a savepoint).
async fn commit_batch(
    client: &mut deadpool_postgres::Client,
    batch: Vec<crate::group::PendingAppend>,
) {
    let fail_all = |batch: Vec<crate::group::PendingAppend>, e: &JournalError| {
        let message = e.to_string();
        let unavailable = e.is_unavailable();
        for p in batch {
            let error = if unavailable {
                JournalError::Unavailable(message.clone())
            } else {
                JournalError::Other(format!("the append transaction failed: {message}"))
            };
            let _ = p.reply.send(Err(error));
        }
    };
    if let [only] = batch.as_slice() {
        // An erasure destroys its subject's key in the append's transaction: not alone.
        if !crate::reservations::takes_or_releases(&only.events)
            && crate::sealing::erased_by(&only.events).is_empty()
        {
            let r = append_alone(client, only).await;
            metrics::histogram!("fieldtrail_append_batch_commands").record(1.0);
            if let Ok(positions) = &r {
                metrics::histogram!("fieldtrail_append_batch_events")
                    .record(positions.len() as f64);
            }
            if let Some(only) = batch.into_iter().next() {
                let _ = only.reply.send(r);
            }
            return;
        }
    }
    if batch.len() > 1 {
        // The whole group in one statement per kind of row (crate::batch); a version conflict,
        // a known command id or a held claim in any of it rolls it back, and the group is then
        // appended command by command below, each failing alone.
        let requests: Vec<crate::AppendRequest> = batch
            .iter()
            .map(|p| crate::AppendRequest {
                stream_type: p.stream_type.clone(),
                stream_id: p.stream_id.clone(),
                expected: p.expected,
                events: p.events.clone(),
                metadata: p.metadata.clone(),
            })
            .collect();
        match crate::batch::append_batch_on(client, &requests).await {
            Ok(positions) => {
                metrics::histogram!("fieldtrail_append_batch_commands").record(batch.len() as f64);
                for (p, positions) in batch.into_iter().zip(positions) {
                    let _ = p.reply.send(Ok(positions));
                }
                return;
            }
            Err(
                JournalError::VersionConflict { .. }
                | JournalError::DuplicateCommand(_)
                | JournalError::ClaimHeld { .. },
            ) => {}
            Err(e) => return fail_all(batch, &e),
        }
    }
    let mut tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &e.into()),
    };
    let mut results = Vec::with_capacity(batch.len());
    if let [only] = batch.as_slice() {
        let r = append_in(
            &tx,
            &only.stream_type,
            &only.stream_id,
            only.expected,
            &only.events,
            &only.metadata,
        )
        .await;
        results.push(r);
    } else {
        for p in &batch {
            let savepoint = match tx.savepoint("command").await {
                Ok(sp) => sp,
                Err(e) => return fail_all(batch, &e.into()),
            };
            let r = append_in(
                &savepoint,
                &p.stream_type,
                &p.stream_id,
                p.expected,
                &p.events,
                &p.metadata,
            )
            .await;
            let closed = match &r {
                Ok(_) => savepoint.commit().await,
                Err(_) => savepoint.rollback().await,
            };
            if let Err(e) = closed {
                return fail_all(batch, &e.into());
            }
            results.push(r);
        }
    }
    let committed = if results.iter().any(Result::is_ok) {
        tx.commit().await
    } else {
        tx.rollback().await
    };
    if let Err(e) = committed {
        return fail_all(batch, &e.into());
    }
    metrics::histogram!("fieldtrail_append_batch_commands").record(batch.len() as f64);
    for (p, r) in batch.into_iter().zip(results) {
        if let Ok(positions) = &r {
            metrics::histogram!("fieldtrail_append_batch_events").record(positions.len() as f64);
        }
        let _ = p.reply.send(r);
    }
}

/// The append of a command that commits alone and takes or releases no claim (most of them):
/// the head read, then ONE statement run outside an explicit transaction (PostgreSQL makes a
/// single statement its own transaction): the version-checked events insert and the ledger
/// row together ([`APPEND_WITH_LEDGER`]). Two round trips, against five for
/// `BEGIN`/head/insert/ledger/`COMMIT`.
///
/// # Errors
/// As [`PgJournal::append`].
async fn append_alone(
    client: &deadpool_postgres::Client,
    p: &crate::group::PendingAppend,
) -> Result<Vec<i64>, JournalError> {
    let (head, append) = (
        client.prepare_cached(HEAD).await?,
        client.prepare_cached(APPEND_WITH_LEDGER).await?,
    );
    let raw: &tokio_postgres::Client = client;
    let (stream_type, stream_id, expected) =
        (p.stream_type.as_str(), p.stream_id.as_str(), p.expected);
    let (events, metadata) = (&p.events, &p.metadata);
    let ids: Vec<Uuid> = metadata.event_ids_at(0, events.len());
    let types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    let versions: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    let payloads: Vec<&Value> = events.iter().map(|e| &e.2).collect();
    let occurred_at: DateTime<Utc> = metadata.occurred_at.with_timezone(&Utc).trunc_subsecs(6);
    let conflict = || JournalError::VersionConflict {
        stream: format!("{stream_type}/{stream_id}"),
        expected,
    };
    let (recorded_at, positions, prev_hashes, hashes) = chain_hashes(
        raw,
        &head,
        stream_type,
        stream_id,
        expected,
        events,
        &ids,
        occurred_at,
        metadata,
    )
    .await?;
    let rows = match raw
        .query(
            &append,
            &[
                &stream_type,
                &stream_id,
                &expected,
                &ids,
                &types,
                &versions,
                &payloads,
                &occurred_at,
                &metadata.actor,
                &metadata.command_id,
                &metadata.correlation_id,
                &metadata.causation_id,
                &recorded_at,
                &prev_hashes
                    .iter()
                    .map(|h| h.as_slice())
                    .collect::<Vec<&[u8]>>(),
                &hashes.iter().map(|h| h.as_slice()).collect::<Vec<&[u8]>>(),
                &metadata.reported_actor,
                &metadata.command,
                &positions,
                &chain::CURRENT_CHAIN,
            ],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(if is_ledger_duplicate(&e) {
                JournalError::DuplicateCommand(metadata.command_id.clone())
            } else {
                conflict()
            });
        }
        Err(e) if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) => return Err(conflict()),
        Err(e) => return Err(e.into()),
    };
    if rows.len() != events.len() {
        return Err(conflict());
    }
    let stored: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    if stored != positions {
        return Err(JournalError::Other(format!(
            "the journal stored positions {stored:?} for the positions {positions:?} the hashes cover"
        )));
    }
    Ok(stored)
}

/// The append's statements inside a transaction the caller owns (and commits or rolls back):
/// first the version-checked events insert, then the ledger row, then the claims of the
/// events in the reservation table ([`crate::reservations`]). [`PgJournal::append`] wraps it
/// in its own transaction; tests use it to hold a transaction open.
///
/// # Errors
/// As [`PgJournal::append`]; after an error the caller must roll the transaction back.
pub async fn append_in(
    tx: &tokio_postgres::Transaction<'_>,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    events: &[(String, String, Value)],
    metadata: &CommandMetadata,
) -> Result<Vec<i64>, JournalError> {
    let (positions, recorded_at) =
        insert_in(tx, stream_type, stream_id, expected, events, metadata, 0).await?;
    // An erasure destroys its key here, before the ledger row: whatever fails after it
    // (a known command id, a held claim) rolls the key back with the events.
    crate::sealing::erase_keys_pg(tx, events).await?;
    let span = (positions.first(), positions.last());
    ledger_in(tx, metadata, stream_type, stream_id, span, recorded_at).await?;
    crate::reservations::pg::apply(tx, stream_type, stream_id, expected, events, &positions)
        .await?;
    Ok(positions)
}

impl PgJournal {
    /// See [`crate::Backend::append_streams`]: one transaction of the parts' version-checked
    /// inserts (the first is the transaction's first write), one ledger row, the claims.
    ///
    /// # Errors
    /// As [`PgJournal::append`].
    pub async fn append_streams(
        &self,
        parts: &[crate::StreamAppend],
        metadata: &CommandMetadata,
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        let Some(last) = parts.last() else {
            return Ok(Vec::new());
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let result = async {
            let mut positions = Vec::with_capacity(parts.len());
            let mut recorded_at = None;
            let mut offset = 0;
            for p in parts {
                let (at, time) = insert_in(
                    &tx,
                    &p.stream_type,
                    &p.stream_id,
                    p.expected,
                    &p.events,
                    metadata,
                    offset,
                )
                .await?;
                positions.push(at);
                recorded_at = Some(time);
                offset += p.events.len();
            }
            // The ledger row's time is its last part's (the command's own stream).
            let recorded_at = recorded_at.unwrap_or_else(Utc::now);
            let span = (
                positions.first().and_then(|p: &Vec<i64>| p.first()),
                positions.last().and_then(|p: &Vec<i64>| p.last()),
            );
            ledger_in(
                &tx,
                metadata,
                &last.stream_type,
                &last.stream_id,
                span,
                recorded_at,
            )
            .await?;
            for (p, at) in parts.iter().zip(&positions) {
                crate::reservations::pg::apply(
                    &tx,
                    &p.stream_type,
                    &p.stream_id,
                    p.expected,
                    &p.events,
                    at,
                )
                .await?;
                crate::sealing::erase_keys_pg(&tx, &p.events).await?;
            }
            Ok::<_, JournalError>(positions)
        }
        .await;
        match result {
            Ok(positions) => {
                tx.commit().await?;
                Ok(positions)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// The command's ledger row (after its events): `stream`, from the first to the last position
/// of `span`, at its last event's `recorded_at`. [`JournalError::DuplicateCommand`] when the
/// command id is there already.
async fn ledger_in(
    tx: &tokio_postgres::Transaction<'_>,
    metadata: &CommandMetadata,
    stream_type: &str,
    stream_id: &str,
    span: (Option<&i64>, Option<&i64>),
    recorded_at: DateTime<Utc>,
) -> Result<(), JournalError> {
    let (first, last) = (span.0.copied().unwrap_or(0), span.1.copied().unwrap_or(0));
    let inserted = match tx
        .execute(
            "INSERT INTO command_ledger (command_id, command, stream_type, stream_id, first_position, last_position, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (command_id) DO NOTHING",
            &[&metadata.command_id, &metadata.command, &stream_type, &stream_id, &first, &last, &recorded_at],
        )
        .await
    {
        Ok(n) => n,
        Err(e) if is_ledger_duplicate(&e) => 0,
        Err(e) => return Err(e.into()),
    };
    if inserted == 0 {
        return Err(JournalError::DuplicateCommand(metadata.command_id.clone()));
    }
    Ok(())
}

/// The version-checked insert of `events` at `expected` + 1, ..., chained to the stream's
/// event at `expected`; returns their positions and `recorded_at`.
async fn insert_in(
    tx: &tokio_postgres::Transaction<'_>,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    events: &[(String, String, Value)],
    metadata: &CommandMetadata,
    offset: usize,
) -> Result<(Vec<i64>, DateTime<Utc>), JournalError> {
    let ids: Vec<Uuid> = metadata.event_ids_at(offset, events.len());
    let types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    let versions: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    let payloads: Vec<&Value> = events.iter().map(|e| &e.2).collect();
    // Microseconds, as PostgreSQL stores them: the hash covers the stored value.
    let occurred_at: DateTime<Utc> = metadata.occurred_at.with_timezone(&Utc).trunc_subsecs(6);
    let conflict = || JournalError::VersionConflict {
        stream: format!("{stream_type}/{stream_id}"),
        expected,
    };
    let (recorded_at, positions, prev_hashes, hashes) = chain_hashes(
        tx,
        HEAD,
        stream_type,
        stream_id,
        expected,
        events,
        &ids,
        occurred_at,
        metadata,
    )
    .await?;
    let rows = match tx
        .query(
            APPEND,
            &[
                &stream_type,
                &stream_id,
                &expected,
                &ids,
                &types,
                &versions,
                &payloads,
                &occurred_at,
                &metadata.actor,
                &metadata.command_id,
                &metadata.correlation_id,
                &metadata.causation_id,
                &recorded_at,
                &prev_hashes
                    .iter()
                    .map(|h| h.as_slice())
                    .collect::<Vec<&[u8]>>(),
                &hashes.iter().map(|h| h.as_slice()).collect::<Vec<&[u8]>>(),
                &metadata.reported_actor,
                &positions,
                &chain::CURRENT_CHAIN,
                &metadata.command,
            ],
        )
        .await
    {
        Ok(rows) => rows,
        // Another writer holds or took the version (a deadlock between two group commits is
        // resolved by PostgreSQL aborting one statement): decided again by the handler.
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
        {
            return Err(conflict())
        }
        Err(e) => return Err(e.into()),
    };
    if rows.len() != events.len() {
        return Err(conflict());
    }
    let stored: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    if stored != positions {
        return Err(JournalError::Other(format!(
            "the journal stored positions {stored:?} for the positions {positions:?} the hashes cover"
        )));
    }
    Ok((stored, recorded_at))
}

/// The hash chain of an append (see [`crate::chain`]): reads the database clock (the events'
/// `recorded_at`) and the hash of the stream's event at `expected`, takes the new events'
/// positions, then hashes each new event chained to the one before. Returns
/// `(recorded_at, positions, prev_hashes, hashes)`.
#[allow(clippy::too_many_arguments)]
async fn chain_hashes<C, S>(
    tx: &C,
    head_statement: &S,
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    events: &[(String, String, Value)],
    ids: &[Uuid],
    occurred_at: DateTime<Utc>,
    metadata: &CommandMetadata,
) -> Result<(DateTime<Utc>, Vec<i64>, Vec<Hash>, Vec<Hash>), JournalError>
where
    C: tokio_postgres::GenericClient + Sync,
    S: tokio_postgres::ToStatement + ?Sized + Sync + Send,
{
    let n = i32::try_from(events.len())
        .map_err(|_| JournalError::Other("too many events in one append".into()))?;
    let head = tx
        .query_one(head_statement, &[&stream_type, &stream_id, &expected, &n])
        .await?;
    let recorded_at: DateTime<Utc> = head.get(0);
    let found: bool = head.get(2);
    let mut positions: Vec<i64> = head.get::<_, Option<Vec<i64>>>(3).unwrap_or_default();
    positions.sort_unstable();
    let stored: Option<&[u8]> = head.get(1);
    let prev: Hash = match (expected, found) {
        (0, _) => GENESIS,
        // The stream is not at `expected`: the version-checked insert would refuse it.
        (_, false) => {
            return Err(JournalError::VersionConflict {
                stream: format!("{stream_type}/{stream_id}"),
                expected,
            })
        }
        (_, true) => stored.and_then(chain::hash_from_bytes).ok_or_else(|| {
            JournalError::Other(format!(
                "stream {stream_type}/{stream_id} version {expected} has no hash: it was written \
                 before the hash chain; run `fieldtrail migrate` to seal it"
            ))
        })?,
    };
    if positions.len() != events.len() {
        return Err(JournalError::Other(format!(
            "the journal gave {} positions for {} events",
            positions.len(),
            events.len()
        )));
    }
    let (prev_hashes, hashes) = hash_appended(
        stream_type,
        stream_id,
        expected,
        events,
        ids,
        &positions,
        occurred_at,
        recorded_at,
        metadata,
        prev,
    );
    Ok((recorded_at, positions, prev_hashes, hashes))
}

/// The chain of an append, on every path of both backends (append, group commit, bulk
/// append): each new event's hash (over its content, its global position from `positions`,
/// and the hash before it, [`chain::event_hash`] in the [`chain::CURRENT_CHAIN`] form),
/// starting from `prev` (the hash of the stream's event at `expected`, or [`GENESIS`]). The
/// caller stores exactly these positions. Returns `(prev_hashes, hashes)`, one per event.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hash_appended(
    stream_type: &str,
    stream_id: &str,
    expected: i64,
    events: &[(String, String, Value)],
    ids: &[Uuid],
    positions: &[i64],
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    metadata: &CommandMetadata,
    mut prev: Hash,
) -> (Vec<Hash>, Vec<Hash>) {
    let mut prev_hashes = Vec::with_capacity(events.len());
    let mut hashes = Vec::with_capacity(events.len());
    for (n, (((event_type, event_version, payload), event_id), position)) in
        events.iter().zip(ids).zip(positions).enumerate()
    {
        let hash = chain::event_hash(&ChainedEvent {
            stream_type,
            stream_id,
            stream_version: expected.saturating_add(1 + i64::try_from(n).unwrap_or(i64::MAX)),
            event_id: *event_id,
            event_type,
            event_version,
            payload,
            occurred_at,
            recorded_at,
            actor: &metadata.actor,
            command_id: &metadata.command_id,
            correlation_id: &metadata.correlation_id,
            causation_id: &metadata.causation_id,
            prev_hash: &prev,
            reported_actor: metadata.reported_actor.as_deref(),
            chain_version: chain::CURRENT_CHAIN,
            position: *position,
            command: Some(&metadata.command),
        });
        prev_hashes.push(prev);
        hashes.push(hash);
        prev = hash;
    }
    (prev_hashes, hashes)
}

/// Whether `e` is a unique violation of the command ledger's key: the id is in the ledger, or
/// was refused before (migration V8's trigger raises it so; [`crate::rejections`]).
pub(crate) fn is_ledger_duplicate(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error()
            .and_then(|d| d.constraint())
            .is_some_and(|c| c == "command_ledger_pkey")
}
