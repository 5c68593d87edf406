//! The bulk append on PostgreSQL ([`crate::Backend::append_batch`]): a whole batch of commands
//! in one transaction of four statements, whatever its size: the heads of its streams, one
//! `INSERT ... SELECT FROM unnest(...)` of every event, one of every ledger row, `COMMIT`
//! (plus the reservation statements of the few events that take or release a claim).
//!
//! The hash chain is computed in Rust: the first request of each stream chains to the stored
//! head, each later request of the same stream to the request before it. The version check
//! is the heads query (each stream must be exactly at its first request's expected version)
//! plus the unique key on `(stream_type, stream_id, stream_version)`, which refuses a version
//! another writer took in between. As in [`crate::PgJournal::append`], the reads come first so
//! that the events insert is the transaction's first write (DESIGN.md decision 3); the heads
//! query also takes the batch's global positions (`nextval`, which the hashes cover and the
//! insert stores: see [`crate::repository`] on why trap (a) stays closed).

use crate::chain::{self, Hash, GENESIS};
use crate::repository::hash_appended;
use crate::{AppendRequest, JournalError, PgJournal};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// For each stream of the batch (at its first request's expected version): the database
/// clock, the stream's current version and the hash of its event at the expected version; on
/// the first row, the batch's `$4` new global positions (taken once, in the same statement).
const HEADS: &str = "
SELECT clock_timestamp(), h.n,
       (SELECT coalesce(max(e.stream_version), 0) FROM events e
         WHERE e.stream_type = h.st AND e.stream_id = h.sid),
       (SELECT e.hash FROM events e
         WHERE e.stream_type = h.st AND e.stream_id = h.sid AND e.stream_version = h.expected),
       CASE WHEN h.n = 1 THEN ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'position'))
                                    FROM generate_series(1, $4::int)) END
FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS h(st, sid, expected, n)";

const INSERT: &str = "
INSERT INTO events (event_id, stream_type, stream_id, stream_version, event_type, event_version,
                    payload, occurred_at, actor, command_id, correlation_id, causation_id,
                    recorded_at, prev_hash, hash, reported_actor, position, chain_version, command)
OVERRIDING SYSTEM VALUE
SELECT e.event_id, e.st, e.sid, e.v, e.et, e.ev, e.payload, e.occ, e.actor, e.cid, e.corr,
       e.caus, $16, e.prev, e.hash, e.rep, e.position, $18, e.command
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
            $7::jsonb[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[],
            $13::bytea[], $14::bytea[], $15::text[], $17::bigint[], $19::text[]) WITH ORDINALITY
       AS e(event_id, st, sid, v, et, ev, payload, occ, actor, cid, corr, caus, prev, hash, rep,
            position, command, n)
ORDER BY e.n
RETURNING position, stream_type, stream_id, stream_version";

const LEDGER: &str = "
INSERT INTO command_ledger (command_id, command, stream_type, stream_id, first_position, last_position, recorded_at)
SELECT *, $7::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
ON CONFLICT (command_id) DO NOTHING";

/// The columns of every event of a batch, as the `INSERT`'s arrays.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<Uuid>,
    stream_types: Vec<&'a str>,
    stream_ids: Vec<&'a str>,
    versions: Vec<i64>,
    event_types: Vec<&'a str>,
    event_versions: Vec<&'a str>,
    payloads: Vec<&'a Value>,
    occurred: Vec<DateTime<Utc>>,
    actors: Vec<&'a str>,
    command_ids: Vec<&'a str>,
    correlations: Vec<&'a str>,
    causations: Vec<&'a str>,
    prev_hashes: Vec<Hash>,
    hashes: Vec<Hash>,
    reported: Vec<Option<&'a str>>,
    positions: Vec<i64>,
    commands: Vec<&'a str>,
}

fn conflict(request: &AppendRequest) -> JournalError {
    JournalError::VersionConflict {
        stream: format!("{}/{}", request.stream_type, request.stream_id),
        expected: request.expected,
    }
}

impl PgJournal {
    /// See [`crate::Backend::append_batch`].
    ///
    /// # Errors
    /// As [`crate::Backend::append_batch`]; [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn append_batch(
        &self,
        batch: &[AppendRequest],
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.pool().get().await?;
        append_batch_on(&mut client, batch).await
    }
}

/// [`PgJournal::append_batch`] on a connection the caller holds (the group commit's leader).
///
/// # Errors
/// As [`PgJournal::append_batch`].
pub(crate) async fn append_batch_on(
    client: &mut deadpool_postgres::Client,
    batch: &[AppendRequest],
) -> Result<Vec<Vec<i64>>, JournalError> {
    {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // The first request of each stream, and each request's expected version checked
        // against the one before it on the same stream.
        let mut tails: HashMap<(&str, &str), i64> = HashMap::new();
        let mut firsts: Vec<&AppendRequest> = Vec::new();
        for r in batch {
            match tails.get(&(r.stream_type.as_str(), r.stream_id.as_str())) {
                Some(&tail) if tail != r.expected => return Err(conflict(r)),
                Some(_) => {}
                None => firsts.push(r),
            }
            let end = r.expected + i64::try_from(r.events.len()).unwrap_or(i64::MAX);
            tails.insert((&r.stream_type, &r.stream_id), end);
        }
        let total: usize = batch.iter().map(|r| r.events.len()).sum();
        let wanted = i32::try_from(total)
            .map_err(|_| JournalError::Other("too many events in one batch".into()))?;
        let tx = client.transaction().await?;
        let heads = tx.prepare_cached(HEADS).await?;
        let rows = tx
            .query(
                &heads,
                &[
                    &firsts
                        .iter()
                        .map(|r| r.stream_type.as_str())
                        .collect::<Vec<_>>(),
                    &firsts
                        .iter()
                        .map(|r| r.stream_id.as_str())
                        .collect::<Vec<_>>(),
                    &firsts.iter().map(|r| r.expected).collect::<Vec<_>>(),
                    &wanted,
                ],
            )
            .await?;
        let mut all_positions: Vec<i64> = Vec::new();
        let mut recorded_at: Option<DateTime<Utc>> = None;
        let mut prev: HashMap<(&str, &str), Hash> = HashMap::new();
        for row in &rows {
            recorded_at.get_or_insert_with(|| row.get::<_, DateTime<Utc>>(0));
            if let Some(taken) = row.get::<_, Option<Vec<i64>>>(4) {
                all_positions = taken;
            }
            let n = usize::try_from(row.get::<_, i64>(1) - 1).unwrap_or(usize::MAX);
            let r = firsts
                .get(n)
                .ok_or_else(|| JournalError::Other("heads query answered a row too many".into()))?;
            let current: i64 = row.get(2);
            if current != r.expected {
                return Err(conflict(r));
            }
            let head = if r.expected == 0 {
                GENESIS
            } else {
                row.get::<_, Option<&[u8]>>(3)
                    .and_then(chain::hash_from_bytes)
                    .ok_or_else(|| {
                        JournalError::Other(format!(
                            "stream {}/{} version {} has no hash: run `fieldtrail migrate` to seal it",
                            r.stream_type, r.stream_id, r.expected
                        ))
                    })?
            };
            prev.insert((&r.stream_type, &r.stream_id), head);
        }
        let recorded_at = recorded_at
            .ok_or_else(|| JournalError::Other("heads query answered no row".into()))?
            .trunc_subsecs(6);
        all_positions.sort_unstable();
        if all_positions.len() != total {
            return Err(JournalError::Other(format!(
                "the journal gave {} positions for {total} events",
                all_positions.len()
            )));
        }
        let mut next_positions = all_positions.into_iter();
        let mut cols = Rows::default();
        for r in batch {
            let key = (r.stream_type.as_str(), r.stream_id.as_str());
            let start = prev.get(&key).copied().unwrap_or(GENESIS);
            let ids: Vec<Uuid> = r.metadata.event_ids_at(0, r.events.len());
            let positions: Vec<i64> = next_positions.by_ref().take(r.events.len()).collect();
            // Microseconds, as PostgreSQL stores them: the hash covers the stored value.
            let occurred_at = r.metadata.occurred_at.with_timezone(&Utc).trunc_subsecs(6);
            let (prevs, hashes) = hash_appended(
                &r.stream_type,
                &r.stream_id,
                r.expected,
                &r.events,
                &ids,
                &positions,
                occurred_at,
                recorded_at,
                &r.metadata,
                start,
            );
            if let Some(last) = hashes.last() {
                prev.insert(key, *last);
            }
            let m = &r.metadata;
            for (n, (event_type, event_version, payload)) in r.events.iter().enumerate() {
                cols.ids.push(ids[n]);
                cols.stream_types.push(&r.stream_type);
                cols.stream_ids.push(&r.stream_id);
                cols.versions
                    .push(r.expected + 1 + i64::try_from(n).unwrap_or(i64::MAX));
                cols.event_types.push(event_type);
                cols.event_versions.push(event_version);
                cols.payloads.push(payload);
                cols.occurred.push(occurred_at);
                cols.actors.push(&m.actor);
                cols.command_ids.push(&m.command_id);
                cols.correlations.push(&m.correlation_id);
                cols.causations.push(&m.causation_id);
                cols.prev_hashes.push(prevs[n]);
                cols.hashes.push(hashes[n]);
                cols.reported.push(m.reported_actor.as_deref());
                cols.positions.push(positions[n]);
                cols.commands.push(&m.command);
            }
        }
        let insert = tx.prepare_cached(INSERT).await?;
        let prev_hashes: Vec<&[u8]> = cols.prev_hashes.iter().map(|h| h.as_slice()).collect();
        let hashes: Vec<&[u8]> = cols.hashes.iter().map(|h| h.as_slice()).collect();
        let inserted = match tx
            .query(
                &insert,
                &[
                    &cols.ids,
                    &cols.stream_types,
                    &cols.stream_ids,
                    &cols.versions,
                    &cols.event_types,
                    &cols.event_versions,
                    &cols.payloads,
                    &cols.occurred,
                    &cols.actors,
                    &cols.command_ids,
                    &cols.correlations,
                    &cols.causations,
                    &prev_hashes,
                    &hashes,
                    &cols.reported,
                    &recorded_at,
                    &cols.positions,
                    &chain::CURRENT_CHAIN,
                    &cols.commands,
                ],
            )
            .await
        {
            Ok(rows) => rows,
            // Another writer took a version in between (or a deadlock with one).
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                let _ = tx.rollback().await;
                return Err(conflict(firsts[0]));
            }
            Err(e) => return Err(e.into()),
        };
        let mut position: HashMap<(String, String, i64), i64> = HashMap::new();
        for row in &inserted {
            position.insert((row.get(1), row.get(2), row.get(3)), row.get(0));
        }
        let mut positions = Vec::with_capacity(batch.len());
        for r in batch {
            let of_request: Vec<i64> = (1..=r.events.len())
                .filter_map(|n| {
                    let version = r.expected + i64::try_from(n).ok()?;
                    position
                        .get(&(r.stream_type.clone(), r.stream_id.clone(), version))
                        .copied()
                })
                .collect();
            if of_request.len() != r.events.len() {
                let _ = tx.rollback().await;
                return Err(conflict(r));
            }
            positions.push(of_request);
        }
        let ledger = tx.prepare_cached(LEDGER).await?;
        let first: Vec<i64> = positions
            .iter()
            .map(|p| p.first().copied().unwrap_or(0))
            .collect();
        let last: Vec<i64> = positions
            .iter()
            .map(|p| p.last().copied().unwrap_or(0))
            .collect();
        let written = tx
            .execute(
                &ledger,
                &[
                    &batch
                        .iter()
                        .map(|r| r.metadata.command_id.as_str())
                        .collect::<Vec<_>>(),
                    &batch
                        .iter()
                        .map(|r| r.metadata.command.as_str())
                        .collect::<Vec<_>>(),
                    &batch
                        .iter()
                        .map(|r| r.stream_type.as_str())
                        .collect::<Vec<_>>(),
                    &batch
                        .iter()
                        .map(|r| r.stream_id.as_str())
                        .collect::<Vec<_>>(),
                    &first,
                    &last,
                    &recorded_at,
                ],
            )
            .await;
        // A refused id (migration V8's trigger) fails the statement as a duplicate key would.
        let written = match written {
            Ok(n) => n,
            Err(e) if crate::repository::is_ledger_duplicate(&e) => 0,
            Err(e) => return Err(e.into()),
        };
        if usize::try_from(written).unwrap_or(0) != batch.len() {
            let _ = tx.rollback().await;
            return Err(JournalError::DuplicateCommand(
                "a command of the batch (already in the ledger)".to_owned(),
            ));
        }
        // The claims of the events (rules across aggregates), request by request in the
        // batch's order, in the same transaction ([`crate::reservations`]).
        for (r, p) in batch.iter().zip(&positions) {
            if let Err(e) = crate::reservations::pg::apply(
                &tx,
                &r.stream_type,
                &r.stream_id,
                r.expected,
                &r.events,
                p,
            )
            .await
            {
                let _ = tx.rollback().await;
                return Err(e);
            }
            // An erasure's key goes in the same transaction as its event.
            if let Err(e) = crate::sealing::erase_keys_pg(&tx, &r.events).await {
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
        tx.commit().await?;
        metrics::histogram!("fieldtrail_append_batch_events").record(cols.ids.len() as f64);
        Ok(positions)
    }
}

impl PgJournal {
    /// See [`crate::Backend::applied_many`]: one query for the whole list.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub async fn applied_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<crate::AppendedCommand>, JournalError> {
        if command_ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT command_id, stream_type || '/' || stream_id, first_position, last_position
                 FROM command_ledger WHERE command_id = ANY($1)",
            )
            .await?;
        let rows = client.query(&statement, &[&command_ids]).await?;
        Ok(rows
            .iter()
            .map(|r| crate::AppendedCommand {
                command_id: r.get(0),
                stream: r.get(1),
                first_position: r.get(2),
                last_position: r.get(3),
            })
            .collect())
    }
}
