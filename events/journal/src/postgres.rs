//! [`Backend`] on PostgreSQL: the production journal ([`PgJournal`]). The journal's own
//! statements are in [`crate::repository`], [`crate::log`] and [`crate::audit`]; this module
//! adds the read-model store, the tokens and the journal copy.

use crate::audit::{self, AuditRecord, Cut, EventFilter, StreamSet};
use crate::backend::{
    Backend, BackendKind, CommitOutcome, DocumentCommit, HistoryOf, LedgerRow, NewEvent,
    StreamQuery, TokenRecord,
};
use crate::chain::{SealedEvent, VerifyReport};
use crate::checkpoint::{self, PROJECTOR_LOCK};
use crate::reservations::{self, Reservation, ReservationsRebuilt};
use crate::StoredEvent;
use crate::{AppendedCommand, CommandMetadata, Cursor, GlobalLog, JournalError, PgJournal};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

const TOKEN_COLUMNS: &str =
    "token_id, name, role, cohort_id, learner_id, secret_sha256, created_at, revoked_at";

fn token(r: &tokio_postgres::Row) -> TokenRecord {
    TokenRecord {
        token_id: r.get(0),
        name: r.get(1),
        role: r.get(2),
        cohort_id: r.get(3),
        learner_id: r.get(4),
        secret_sha256: r.get(5),
        created_at: r.get(6),
        revoked_at: r.get(7),
    }
}

/// Read-model documents upserted per statement by `commit_documents` (bounds the statement's
/// parameters in a rebuild, which writes every document at once).
const DOCUMENTS_PER_STATEMENT: usize = 500;

#[async_trait::async_trait]
impl Backend for PgJournal {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[NewEvent],
        metadata: &CommandMetadata,
    ) -> Result<Vec<i64>, JournalError> {
        let positions = self
            .group_append(stream_type, stream_id, expected, events, metadata)
            .await?;
        self.notify().notify_waiters();
        Ok(positions)
    }

    async fn append_streams(
        &self,
        parts: &[crate::StreamAppend],
        metadata: &CommandMetadata,
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        let positions = PgJournal::append_streams(self, parts, metadata).await?;
        self.notify().notify_waiters();
        Ok(positions)
    }

    async fn append_batch(
        &self,
        batch: &[crate::AppendRequest],
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        let positions = PgJournal::append_batch(self, batch).await?;
        self.notify().notify_waiters();
        Ok(positions)
    }

    async fn applied(&self, command_id: &str) -> Result<Option<AppendedCommand>, JournalError> {
        PgJournal::applied(self, command_id).await
    }

    async fn applied_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<AppendedCommand>, JournalError> {
        PgJournal::applied_many(self, command_ids).await
    }

    async fn record_rejections(
        &self,
        rejections: &[crate::RejectedCommand],
    ) -> Result<(), JournalError> {
        crate::rejections::pg::record(self.pool(), rejections).await
    }

    async fn rejected_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<crate::RejectedCommand>, JournalError> {
        crate::rejections::pg::find(self.pool(), Some(command_ids)).await
    }

    async fn export_rejections(&self) -> Result<Vec<crate::RejectedCommand>, JournalError> {
        crate::rejections::pg::find(self.pool(), None).await
    }

    async fn stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        PgJournal::stream(self, stream_type, stream_id, after).await
    }

    async fn event_at(
        &self,
        stream_type: &str,
        stream_id: &str,
        stream_version: i64,
    ) -> Result<Option<StoredEvent>, JournalError> {
        PgJournal::event_at(self, stream_type, stream_id, stream_version).await
    }

    async fn read_log(
        &self,
        cut: Cut,
        streams: Option<&StreamSet>,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        audit::read_cut_where(self.pool(), cut, streams, after, limit).await
    }

    async fn cursor_at(&self, position: i64) -> Result<Cursor, JournalError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT tx_id::text, position FROM events WHERE position <= $1 ORDER BY position DESC LIMIT 1",
                &[&position],
            )
            .await?;
        Ok(row
            .map(|r| Cursor {
                tx_id: r.get::<_, String>(0).parse().unwrap_or_default(),
                position: r.get(1),
            })
            .unwrap_or_default())
    }

    async fn head(&self) -> Result<i64, JournalError> {
        GlobalLog::new(self.pool().clone()).head().await
    }

    async fn count(&self) -> Result<i64, JournalError> {
        GlobalLog::new(self.pool().clone()).count().await
    }

    async fn wait_readable(&self, limit: Duration) -> Result<bool, JournalError> {
        GlobalLog::new(self.pool().clone())
            .wait_readable(limit)
            .await
    }

    async fn find_streams(&self, query: StreamQuery<'_>) -> Result<Vec<String>, JournalError> {
        let pool = self.pool();
        match query {
            StreamQuery::ProgrammeOf { cohort_id } => Ok(audit::programme_of(pool, cohort_id)
                .await?
                .into_iter()
                .collect()),
            StreamQuery::FieldStudiesOf { cohort_id } => {
                let client = pool.get().await?;
                let rows = client
                    .query(
                        "SELECT stream_id FROM events
                         WHERE stream_type = 'field_study' AND event_type = 'field_study_formed'
                           AND payload ->> 'cohort_id' = $1
                         ORDER BY position",
                        &[&cohort_id],
                    )
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }
            StreamQuery::CohortsEnrolling {
                learner_ids,
                except,
            } => audit::cohorts_enrolling(pool, learner_ids, except).await,
        }
    }

    async fn history(
        &self,
        of: HistoryOf<'_>,
        filter: &EventFilter,
    ) -> Result<Vec<AuditRecord>, JournalError> {
        match of {
            HistoryOf::Stream {
                stream_type,
                stream_id,
            } => audit::stream_events(self.pool(), stream_type, stream_id, filter).await,
            HistoryOf::Actor(actor) => audit::actor_events(self.pool(), actor, filter).await,
        }
    }

    async fn verify(&self, at_position: Option<i64>) -> Result<VerifyReport, JournalError> {
        audit::verify(self.pool(), at_position).await
    }

    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<SealedEvent>, JournalError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM events
                     WHERE (tx_id, position) > ($1::text::xid8, $2)
                       AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                     ORDER BY events.tx_id, events.position LIMIT $3",
                    audit::SEALED_COLUMNS
                ),
                &[&after.tx_id.to_string(), &after.position, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(audit::sealed_event)
            .collect::<Result<_, _>>()?)
    }

    async fn export_ledger(&self) -> Result<Vec<LedgerRow>, JournalError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT command_id, command, stream_type, stream_id, first_position, last_position, recorded_at
                 FROM command_ledger ORDER BY first_position, command_id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| LedgerRow {
                command_id: r.get(0),
                command: r.get(1),
                stream_type: r.get(2),
                stream_id: r.get(3),
                first_position: r.get(4),
                last_position: r.get(5),
                recorded_at: r.get(6),
            })
            .collect())
    }

    /// Rows are written in the order given, in one transaction per run of increasing
    /// positions: PostgreSQL orders the global log by writing transaction, and a later
    /// transaction of this connection has a higher id, so the copy keeps the source's order.
    async fn import_events(
        &self,
        events: &[SealedEvent],
        ledger: &[LedgerRow],
    ) -> Result<(), JournalError> {
        let mut client = self.pool().get().await?;
        let head: i64 = client
            .query_one("SELECT coalesce(max(position), 0) FROM events", &[])
            .await?
            .get(0);
        if let Some(first) = events.iter().map(|e| e.position).min() {
            if first <= head {
                return Err(JournalError::Other(format!(
                    "cannot copy event at position {first}: the target journal already reaches position {head}"
                )));
            }
        }
        let mut start = 0;
        while start < events.len() {
            let mut end = start + 1;
            while end < events.len() && events[end].position > events[end - 1].position {
                end += 1;
            }
            let tx = client.transaction().await?;
            // The copied events' claims are not in the reservation table yet: mark it stale
            // (rebuilt by the copy when it ends, or at the next open if it stops half-way).
            tx.execute("UPDATE reservations_state SET rebuilt_at = NULL", &[])
                .await?;
            let insert = tx
                .prepare(
                    "INSERT INTO events (position, event_id, stream_type, stream_id, stream_version,
                        event_type, event_version, payload, occurred_at, recorded_at, actor, command_id,
                        correlation_id, causation_id, prev_hash, hash, reported_actor, chain_version,
                        command)
                     OVERRIDING SYSTEM VALUE
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .await?;
            for e in &events[start..end] {
                let prev = e.prev_hash.map(|h| h.to_vec());
                let hash = e.hash.map(|h| h.to_vec());
                tx.execute(
                    &insert,
                    &[
                        &e.position,
                        &e.event_id,
                        &e.stream_type,
                        &e.stream_id,
                        &e.stream_version,
                        &e.event_type,
                        &e.event_version,
                        &e.payload,
                        &e.occurred_at,
                        &e.recorded_at,
                        &e.actor,
                        &e.command_id,
                        &e.correlation_id,
                        &e.causation_id,
                        &prev,
                        &hash,
                        &e.reported_actor,
                        &e.chain_version,
                        &e.command,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            start = end;
        }
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), (SELECT max(position) FROM events))
             WHERE EXISTS (SELECT 1 FROM events)",
            &[],
        )
        .await?;
        let insert = tx
            .prepare(
                "INSERT INTO command_ledger (command_id, command, stream_type, stream_id, first_position, last_position, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (command_id) DO NOTHING",
            )
            .await?;
        for l in ledger {
            tx.execute(
                &insert,
                &[
                    &l.command_id,
                    &l.command,
                    &l.stream_type,
                    &l.stream_id,
                    &l.first_position,
                    &l.last_position,
                    &l.recorded_at,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        // Its own commits are not announced by its LISTEN connection (migration V11).
        self.notify().notify_waiters();
        Ok(())
    }

    async fn rebuild_reservations(&self) -> Result<ReservationsRebuilt, JournalError> {
        Ok(reservations::pg::rebuild(self.pool(), false)
            .await?
            .unwrap_or_default())
    }

    async fn reservations(&self) -> Result<Vec<Reservation>, JournalError> {
        reservations::pg::list(self.pool()).await
    }

    async fn checkpoint(&self, name: &str) -> Result<Cursor, JournalError> {
        let client = self.pool().get().await?;
        checkpoint::load(&client, name).await
    }

    async fn commit_documents(
        &self,
        commit: DocumentCommit,
    ) -> Result<CommitOutcome, JournalError> {
        if commit.expected.is_some() && commit.documents.len() <= DOCUMENTS_PER_STATEMENT {
            return checkpoint::compare_and_set(self.pool(), &commit).await;
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Read models and checkpoints are derived from the journal: their commit need not
        // wait for the WAL flush (PostgreSQL's asynchronous commit; a crash can lose the last
        // such transactions, never half of one, and the projector then folds those events
        // again). The journal's own appends stay synchronous.
        tx.batch_execute(&format!(
            "SET LOCAL synchronous_commit TO OFF; SELECT pg_advisory_xact_lock({PROJECTOR_LOCK})"
        ))
        .await?;
        let stored = checkpoint::load(&tx, &commit.checkpoint).await?;
        let moved = match commit.expected {
            Some(expected) => stored != expected,
            None => stored > commit.cursor,
        };
        if moved {
            tx.rollback().await?;
            return Ok(CommitOutcome::Moved(stored));
        }
        if commit.expected.is_none() {
            tx.execute("DELETE FROM read_models", &[]).await?;
        }
        // Every document of the batch in one statement, a page at a time.
        for page in commit.documents.chunks(DOCUMENTS_PER_STATEMENT) {
            let kinds: Vec<&str> = page.iter().map(|d| d.0.as_str()).collect();
            let keys: Vec<&str> = page.iter().map(|d| d.1.as_str()).collect();
            let documents: Vec<&Value> = page.iter().map(|d| &d.2).collect();
            tx.execute(
                "INSERT INTO read_models (kind, key, document, position)
                 SELECT d.kind, d.key, d.document, $4
                 FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS d(kind, key, document)
                 ON CONFLICT (kind, key) DO UPDATE SET document = excluded.document, position = excluded.position",
                &[&kinds, &keys, &documents, &commit.position],
            )
            .await?;
        }
        checkpoint::save(&tx, &commit.checkpoint, commit.cursor).await?;
        tx.commit().await?;
        Ok(CommitOutcome::Written)
    }

    async fn document(&self, kind: &str, key: &str) -> Result<Option<(Value, i64)>, JournalError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT document, position FROM read_models WHERE kind = $1 AND key = $2",
                &[&kind, &key],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn documents(&self) -> Result<Vec<(String, String, Value)>, JournalError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT kind, key, document FROM read_models ORDER BY kind, key",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    async fn store_digest(
        &self,
        digest: &crate::digests::SignedDigest,
    ) -> Result<i64, JournalError> {
        crate::digests::check(digest)?;
        crate::digests::pg::store(self.pool(), digest).await
    }

    async fn digests(&self) -> Result<Vec<crate::digests::SignedDigest>, JournalError> {
        crate::digests::pg::list(self.pool()).await
    }

    async fn publish_keys(
        &self,
        keys: &[crate::signing_keys::PublishedKey],
    ) -> Result<(), JournalError> {
        keys.iter().try_for_each(crate::signing_keys::check)?;
        crate::signing_keys::pg::publish(self.pool(), keys).await
    }

    async fn published_keys(&self) -> Result<Vec<crate::signing_keys::PublishedKey>, JournalError> {
        crate::signing_keys::pg::list(self.pool()).await
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<(), JournalError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO api_tokens (token_id, name, role, cohort_id, learner_id, secret_sha256, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &t.token_id,
                    &t.name,
                    &t.role,
                    &t.cohort_id,
                    &t.learner_id,
                    &t.secret_sha256,
                    &t.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, JournalError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(token).collect())
    }

    async fn live_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>, JournalError> {
        let client = self.pool().get().await?;
        // Every request checks its token: a statement prepared once per connection.
        let statement = client
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_id = $1 AND revoked_at IS NULL"
            ))
            .await?;
        let row = client.query_opt(&statement, &[&token_id]).await?;
        Ok(row.as_ref().map(token))
    }

    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, JournalError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE api_tokens SET revoked_at = clock_timestamp() WHERE token_id = $1 AND revoked_at IS NULL",
                &[&token_id],
            )
            .await?;
        Ok(n == 1)
    }

    async fn subject_keys(
        &self,
        subjects: &[String],
    ) -> Result<Vec<crate::sealing::SubjectKey>, JournalError> {
        let client = self.pool().get().await?;
        // On the append path of every command with personal data whose keys are not in
        // memory: prepared once per connection (a statement given as text is parsed, run and
        // closed each time: two more round trips).
        let statement = client
            .prepare_cached(
                "SELECT subject_id, wrapped_key, created_at, erased_at FROM subject_keys
                 WHERE subject_id = ANY($1)",
            )
            .await?;
        let rows = client.query(&statement, &[&subjects]).await?;
        Ok(rows
            .iter()
            .map(|r| crate::sealing::SubjectKey {
                subject_id: r.get(0),
                wrapped: r.get(1),
                created_at: r.get(2),
                erased_at: r.get(3),
            })
            .collect())
    }

    async fn erase_subject_key(&self, subject_id: &str) -> Result<(), JournalError> {
        let client = self.pool().get().await?;
        client
            .execute(crate::sealing::ERASE_KEY_PG, &[&subject_id])
            .await?;
        Ok(())
    }

    async fn export_subject_keys(&self) -> Result<Vec<crate::sealing::SubjectKey>, JournalError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT subject_id, wrapped_key, created_at, erased_at FROM subject_keys
                 ORDER BY subject_id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| crate::sealing::SubjectKey {
                subject_id: r.get(0),
                wrapped: r.get(1),
                created_at: r.get(2),
                erased_at: r.get(3),
            })
            .collect())
    }

    async fn insert_subject_keys(
        &self,
        keys: &[crate::sealing::SubjectKey],
    ) -> Result<(), JournalError> {
        let client = self.pool().get().await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.subject_id.as_str()).collect();
        let wrapped: Vec<Option<&[u8]>> = keys.iter().map(|k| k.wrapped.as_deref()).collect();
        let created: Vec<chrono::DateTime<chrono::Utc>> =
            keys.iter().map(|k| k.created_at).collect();
        let erased: Vec<Option<chrono::DateTime<chrono::Utc>>> =
            keys.iter().map(|k| k.erased_at).collect();
        let statement = client
            .prepare_cached(
                "INSERT INTO subject_keys (subject_id, wrapped_key, created_at, erased_at)
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::timestamptz[])
                 ON CONFLICT (subject_id) DO NOTHING",
            )
            .await?;
        client
            .execute(&statement, &[&ids, &wrapped, &created, &erased])
            .await?;
        Ok(())
    }

    fn notifier(&self) -> Arc<Notify> {
        self.notify().clone()
    }

    fn listen(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.url().map(|url| {
            crate::log::spawn_listener_for(
                url.to_owned(),
                self.notifier(),
                Some(self.pool().clone()),
            )
        })
    }

    fn postgres(&self) -> Option<&deadpool_postgres::Pool> {
        Some(self.pool())
    }

    fn close(&self) {
        self.pool().close();
    }
}
