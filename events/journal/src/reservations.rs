//! Reservations: the claims of the rules that span aggregates
//! ([`fieldtrail_domain::claims`]), written in the append's transaction on both backends.
//!
//! The `reservations` table (primary key `(claim_kind, claim_key)`) holds each claim taken and
//! not released, with its holder (`type/id` of the stream whose event took it) and the global
//! position of that event. An append first inserts its events (the version-checked insert
//! stays the transaction's first write, see "Cursor design"), then its ledger row, then applies
//! the claims of its events ([`fieldtrail_domain::claims::claims`]): a take of a claim another
//! stream holds fails the append with [`JournalError::ClaimHeld`] (the handler answers the
//! rule's rejection), so of two commands on two servers taking the same claim, only one commits.
//!
//! The table is a derived index of the events, not a record: releasing deletes the row (the
//! events stay append-only). A journal written before it existed, or filled by a copy
//! ([`crate::Backend::import_events`] marks the table stale), is rebuilt from its events in
//! global-log order through [`ClaimFold`] ([`crate::Backend::rebuild_reservations`]), at the next
//! open or explicitly.

use crate::backend::NewEvent;
use fieldtrail_domain::claims::{self, ClaimChange, ClaimFold};
use fieldtrail_domain::{AnyEvent, FieldStudyEvent, StreamKind};
use serde_json::Value;

/// One reservation as stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Reservation {
    /// `field_study_member` or `certificate` ([`fieldtrail_domain::claims::ClaimKind`]).
    pub claim_kind: String,
    /// `<cohort_id>/<learner_id>`.
    pub claim_key: String,
    /// `type/id` of the stream holding it.
    pub holder: String,
    /// Global position of the event that took it.
    pub position: i64,
}

/// What a rebuild of the reservations did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReservationsRebuilt {
    /// Events read (those of the types in [`claims::CLAIM_EVENT_TYPES`]).
    pub events: u64,
    /// Reservations held afterwards.
    pub held: u64,
    /// Takes that met a claim another stream held (a journal written before the rule was
    /// enforced); the first holder kept it.
    pub clashes: u64,
}

/// The claim changes of an append: `(change, global position of its event)`, in event order.
/// `study_cohort` is the cohort of the field study appended to (needed for `members_changed`;
/// found in the batch itself when it forms the study). Rows this build cannot decode change
/// no claim.
pub(crate) fn changes(
    stream_type: &str,
    events: &[NewEvent],
    positions: &[i64],
    mut study_cohort: Option<String>,
) -> Vec<(ClaimChange, i64)> {
    let mut out = Vec::new();
    for ((event_type, event_version, payload), position) in events.iter().zip(positions) {
        let Ok(event) = AnyEvent::decode(stream_type, event_type, event_version, payload) else {
            continue;
        };
        if let AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed { cohort_id, .. }) = &event {
            study_cohort = Some(cohort_id.as_str().to_owned());
        }
        for change in claims::claims(&event, study_cohort.as_deref()) {
            out.push((change, *position));
        }
    }
    out
}

/// Whether an append to `stream_type` of `events` needs the study's cohort looked up (a
/// `members_changed` event, without a `field_study_formed` before it in the batch).
pub(crate) fn needs_study_cohort(stream_type: &str, events: &[NewEvent]) -> bool {
    stream_type == StreamKind::FIELD_STUDY
        && events
            .iter()
            .take_while(|e| e.0 != "field_study_formed")
            .any(|e| e.0 == "members_changed")
}

/// The `cohort_id` of a `field_study_formed` payload.
pub(crate) fn cohort_of(payload: &Value) -> Option<String> {
    payload
        .get("cohort_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Folds events given in global-log order as `(stream_type, stream_id, position, type,
/// version, payload)`; rows this build cannot decode change no claim.
pub(crate) fn fold<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a str, i64, &'a str, &'a str, &'a Value)>,
) -> (ClaimFold, u64) {
    let mut fold = ClaimFold::new();
    let mut events = 0;
    for (stream_type, stream_id, position, event_type, event_version, payload) in rows {
        events += 1;
        if let Ok(event) = AnyEvent::decode(stream_type, event_type, event_version, payload) {
            fold.apply(stream_type, stream_id, position, &event);
        }
    }
    (fold, events)
}

/// The rows of a fold, sorted by kind then key.
pub(crate) fn rows(fold: &ClaimFold) -> Vec<Reservation> {
    fold.held()
        .map(|(claim, holder)| Reservation {
            claim_kind: claim.kind.as_str().to_owned(),
            claim_key: claim.key.clone(),
            holder: holder.stream.clone(),
            position: holder.position,
        })
        .collect()
}

/// The PostgreSQL side: the append's claims, the rebuild, the listing.
/// Whether any of `events` takes or releases a claim (most appends do neither: the
/// reservation table is not touched then).
pub(crate) fn takes_or_releases(events: &[crate::backend::NewEvent]) -> bool {
    events
        .iter()
        .any(|e| fieldtrail_domain::claims::CLAIM_EVENT_TYPES.contains(&e.0.as_str()))
}

pub(crate) mod pg {
    use super::ReservationsRebuilt;
    use super::{changes, cohort_of, fold, needs_study_cohort, rows, Reservation};
    use crate::backend::NewEvent;
    use crate::JournalError;
    use deadpool_postgres::Pool;
    use fieldtrail_domain::claims::{Claim, ClaimChange, CLAIM_EVENT_TYPES};
    use serde_json::Value;
    use tokio_postgres::error::SqlState;
    use tokio_postgres::Transaction;

    /// A lock wait another transaction holds (`FOR UPDATE NOWAIT` on a claim being released or
    /// taken right now) or a deadlock between two appends: decided again by the handler.
    fn raced(e: tokio_postgres::Error, stream: &str, expected: i64) -> JournalError {
        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
            || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        {
            JournalError::VersionConflict {
                stream: stream.to_owned(),
                expected,
            }
        } else {
            e.into()
        }
    }

    /// Applies the claims of an append's `events` (at `positions`) inside its transaction,
    /// after its events and ledger row. A take meets one of three cases: the claim is free
    /// (the row is inserted; a concurrent uncommitted insert of the same claim is waited for),
    /// held ([`JournalError::ClaimHeld`], whoever holds it: a second certificate comes from the
    /// same cohort stream as the first), or locked by a transaction
    /// releasing it right now ([`JournalError::VersionConflict`]: the command is decided again
    /// once that transaction has ended, so that claims change in the order of the global log).
    ///
    /// # Errors
    /// As above, and [`JournalError::Postgres`]; the caller rolls back.
    pub(crate) async fn apply(
        tx: &Transaction<'_>,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[NewEvent],
        positions: &[i64],
    ) -> Result<(), JournalError> {
        if !super::takes_or_releases(events) {
            return Ok(());
        }
        let holder = format!("{stream_type}/{stream_id}");
        let study_cohort = if needs_study_cohort(stream_type, events) {
            tx.query_opt(
                "SELECT payload FROM events WHERE stream_type = 'field_study' AND stream_id = $1
                   AND event_type = 'field_study_formed' ORDER BY stream_version LIMIT 1",
                &[&stream_id],
            )
            .await?
            .and_then(|r| cohort_of(&r.get::<_, Value>(0)))
        } else {
            None
        };
        for (change, position) in changes(stream_type, events, positions, study_cohort) {
            match change {
                ClaimChange::Take(claim) => {
                    take(tx, claim, &holder, position, expected).await?;
                }
                ClaimChange::Release(claim) => {
                    tx.execute(
                        "DELETE FROM reservations WHERE claim_kind = $1 AND claim_key = $2 AND holder = $3",
                        &[&claim.kind.as_str(), &claim.key, &holder],
                    )
                    .await
                    .map_err(|e| raced(e, &holder, expected))?;
                }
                ClaimChange::ReleaseAny(claim) => {
                    tx.execute(
                        "DELETE FROM reservations WHERE claim_kind = $1 AND claim_key = $2",
                        &[&claim.kind.as_str(), &claim.key],
                    )
                    .await
                    .map_err(|e| raced(e, &holder, expected))?;
                }
                ClaimChange::TakeFrom(claim, from) => {
                    let moved = tx
                        .execute(
                            "UPDATE reservations SET holder = $3, position = $4
                             WHERE claim_kind = $1 AND claim_key = $2 AND holder = $5",
                            &[&claim.kind.as_str(), &claim.key, &holder, &position, &from],
                        )
                        .await
                        .map_err(|e| raced(e, &holder, expected))?;
                    if moved == 0 {
                        take(tx, claim, &holder, position, expected).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn take(
        tx: &Transaction<'_>,
        claim: Claim,
        holder: &str,
        position: i64,
        expected: i64,
    ) -> Result<(), JournalError> {
        let kind = claim.kind.as_str();
        let held = tx
            .query_opt(
                "SELECT holder FROM reservations WHERE claim_kind = $1 AND claim_key = $2 FOR UPDATE NOWAIT",
                &[&kind, &claim.key],
            )
            .await
            .map_err(|e| raced(e, holder, expected))?;
        if let Some(row) = held {
            return Err(JournalError::ClaimHeld {
                claim,
                holder: row.get(0),
            });
        }
        let inserted = tx
            .execute(
                "INSERT INTO reservations (claim_kind, claim_key, holder, position) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (claim_kind, claim_key) DO NOTHING",
                &[&kind, &claim.key, &holder, &position],
            )
            .await
            .map_err(|e| raced(e, holder, expected))?;
        if inserted == 1 {
            return Ok(());
        }
        // A concurrent append took it and committed while this one waited: name the holder.
        let by = tx
            .query_opt(
                "SELECT holder FROM reservations WHERE claim_kind = $1 AND claim_key = $2",
                &[&kind, &claim.key],
            )
            .await?;
        match by {
            Some(row) => Err(JournalError::ClaimHeld {
                claim,
                holder: row.get(0),
            }),
            None => Err(JournalError::VersionConflict {
                stream: holder.to_owned(),
                expected,
            }),
        }
    }

    /// Rebuilds the table from the events in global-log order (see the module documentation),
    /// in one transaction that locks the table against appends' claims meanwhile. With
    /// `only_if_stale`, does nothing (`None`) unless the table is marked stale (a journal
    /// migrated from before the table, or filled by a copy).
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub(crate) async fn rebuild(
        pool: &Pool,
        only_if_stale: bool,
    ) -> Result<Option<ReservationsRebuilt>, JournalError> {
        let stale = "SELECT coalesce((SELECT rebuilt_at IS NULL FROM reservations_state WHERE id = 1), true)";
        let mut client = pool.get().await?;
        if only_if_stale && !client.query_one(stale, &[]).await?.get::<_, bool>(0) {
            return Ok(None);
        }
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE reservations IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        if only_if_stale && !tx.query_one(stale, &[]).await?.get::<_, bool>(0) {
            tx.rollback().await?;
            return Ok(None);
        }
        let types: Vec<&str> = CLAIM_EVENT_TYPES.to_vec();
        let events = tx
            .query(
                "SELECT stream_type, stream_id, position, event_type, event_version, payload
                 FROM events WHERE event_type = ANY($1) ORDER BY tx_id, position",
                &[&types],
            )
            .await?;
        let payloads: Vec<Value> = events.iter().map(|r| r.get(5)).collect();
        let (fold, read) = fold(events.iter().zip(&payloads).map(|(r, p)| {
            (
                r.get::<_, &str>(0),
                r.get::<_, &str>(1),
                r.get::<_, i64>(2),
                r.get::<_, &str>(3),
                r.get::<_, &str>(4),
                p,
            )
        }));
        let held = rows(&fold);
        tx.execute("DELETE FROM reservations", &[]).await?;
        let kinds: Vec<&str> = held.iter().map(|r| r.claim_kind.as_str()).collect();
        let keys: Vec<&str> = held.iter().map(|r| r.claim_key.as_str()).collect();
        let holders: Vec<&str> = held.iter().map(|r| r.holder.as_str()).collect();
        let positions: Vec<i64> = held.iter().map(|r| r.position).collect();
        tx.execute(
            "INSERT INTO reservations (claim_kind, claim_key, holder, position)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
            &[&kinds, &keys, &holders, &positions],
        )
        .await?;
        tx.execute(
            "INSERT INTO reservations_state (id, rebuilt_at) VALUES (1, clock_timestamp())
             ON CONFLICT (id) DO UPDATE SET rebuilt_at = excluded.rebuilt_at",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(ReservationsRebuilt {
            events: read,
            held: held.len() as u64,
            clashes: fold.clashes(),
        }))
    }

    /// Every reservation, by kind then key.
    ///
    /// # Errors
    /// [`JournalError::Postgres`] / [`JournalError::Pool`].
    pub(crate) async fn list(pool: &Pool) -> Result<Vec<Reservation>, JournalError> {
        let client = pool.get().await?;
        let rows = client
            .query(
                "SELECT claim_kind, claim_key, holder, position FROM reservations ORDER BY claim_kind, claim_key",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Reservation {
                claim_kind: r.get(0),
                claim_key: r.get(1),
                holder: r.get(2),
                position: r.get(3),
            })
            .collect())
    }
}
