//! [`SqliteJournal`]: the embedded [`Backend`], one SQLite file (rusqlite, bundled library).
//!
//! - WAL mode: readers never block the writer; `synchronous = FULL`, so a commit is on disk
//!   when `append` returns (SQLite documentation, "Write-Ahead Logging").
//! - One writer: every write is a `BEGIN IMMEDIATE` transaction on the one writer
//!   connection (and SQLite's file lock serializes writers of other processes on the same
//!   file), so positions commit in increasing order and the global log is read by
//!   `(tx_id, position) > cursor` without skipping anything.
//! - The same hash chain as PostgreSQL ([`crate::chain`]), the same command ledger, the read
//!   models and checkpoints in the same file, the API tokens.
//! - Group commit: concurrent appends are committed in one transaction (one fsync), each in its
//!   own savepoint with its own version check and ledger row, so one failing command fails
//!   alone ([`write::group_commit`]); an append with nothing else waiting commits at once.
//! - The bus is in-process: [`Backend::notifier`] is signalled after every commit.
//!
//! Blocking SQLite calls run on tokio's blocking threads ([`tokio::task::spawn_blocking`]).

mod read;
mod write;

use crate::audit::{AuditRecord, Cut, EventFilter, StreamSet};
use crate::backend::{
    Backend, BackendKind, CommitOutcome, DocumentCommit, HistoryOf, LedgerRow, NewEvent,
    StreamQuery, TokenRecord,
};
use crate::chain::{SealedEvent, VerifyReport};
use crate::reservations::{Reservation, ReservationsRebuilt};
use crate::{AppendedCommand, CommandMetadata, Cursor, JournalError, StoredEvent};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// How long a statement waits for another process's write lock before failing (`busy`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded journal (cheap to clone).
#[derive(Clone)]
pub struct SqliteJournal {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Opened read-only ([`SqliteJournal::open_existing`] on a file that cannot be written):
    /// readers use the writer connection, which is read-only too.
    read_only: std::sync::atomic::AtomicBool,
    writer: Mutex<Connection>,
    /// Appends waiting for the next group commit ([`write::group_commit`]).
    pending: crate::group::AppendQueue,
    readers: Mutex<Vec<Connection>>,
    notify: Arc<Notify>,
}

/// Microseconds since the Unix epoch (UTC), as the file stores instants.
pub(crate) fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant `m` microseconds after the Unix epoch.
pub(crate) fn instant(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

fn connect(path: &Path) -> Result<Connection, JournalError> {
    let connection = Connection::open(path).map_err(|e| {
        JournalError::Other(format!(
            "cannot open the journal file {}: {e}",
            path.display()
        ))
    })?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

/// Whether the file's `events` table has the `chain_version` column (user_version 3).
fn has_chain_version(connection: &Connection) -> Result<bool, JournalError> {
    has_event_column(connection, "chain_version")
}

/// Whether the file's `events` table has the column `name`.
fn has_event_column(connection: &Connection, name: &str) -> Result<bool, JournalError> {
    has_column(connection, "events", name)
}

/// Whether the file's table `table` has the column `name`.
fn has_column(connection: &Connection, table: &str, name: &str) -> Result<bool, JournalError> {
    Ok(connection.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, name],
        |r| r.get(0),
    )?)
}

/// The trigger that lets a published signing key's row change once, by its retirement, and
/// in nothing else (its endorsement included: user_version 6). Made at open, replacing the
/// trigger of a file from before, which did not know the endorsement.
const SIGNING_KEYS_TRIGGER: &str = "
CREATE TRIGGER signing_keys_retire_only BEFORE UPDATE ON signing_keys
WHEN NOT (OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL AND NEW.kid = OLD.kid
          AND NEW.public_jwk = OLD.public_jwk AND NEW.created_at = OLD.created_at
          AND NEW.endorsement IS OLD.endorsement)
BEGIN
    SELECT RAISE(ABORT, 'published signing keys are kept: only a retirement may be recorded');
END;";

/// `PRAGMA application_id` of a fieldtrail journal file ("FTJ1"): a file with tables and
/// another id is another application's database, and is refused.
pub const APPLICATION_ID: i32 = 0x4654_4a31;

fn not_a_journal(path: &Path, why: impl std::fmt::Display) -> JournalError {
    JournalError::Other(format!(
        "{} is not a fieldtrail journal (or is damaged): {why}",
        path.display()
    ))
}

/// Checks that an existing file is a journal (or an empty SQLite file) before anything is
/// written to it.
fn check_identity(connection: &Connection, path: &Path) -> Result<(), JournalError> {
    let id: i32 = connection
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| not_a_journal(path, e))?;
    let tables: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_a_journal(path, e))?;
    // A journal written before the file carried its application id has fieldtrail's tables.
    let ours: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
               AND name IN ('events', 'command_ledger', 'checkpoints', 'read_models')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_a_journal(path, e))?;
    if tables > 0 && id != APPLICATION_ID && !(id == 0 && ours == 4) {
        return Err(not_a_journal(
            path,
            "it is another application's SQLite database (fieldtrail leaves it alone)",
        ));
    }
    Ok(())
}

impl SqliteJournal {
    /// Opens the journal file at `path`, creating it (and its directory) if missing, and its
    /// schema.
    ///
    /// # Errors
    /// [`JournalError::Other`] naming the file when it cannot be opened, is a directory, or is
    /// not a journal (another application's database is refused, not changed).
    pub async fn open(path: &Path) -> Result<Self, JournalError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, true))
            .await
            .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))?
    }

    /// Opens the existing journal file at `path` without creating anything; a file that
    /// cannot be written (read-only media, a 0444 copy handed to an auditor) is opened
    /// read-only and immutable: reads and `audit verify` work, writes are refused.
    ///
    /// # Errors
    /// [`JournalError::Other`] naming the file when it does not exist or is not a journal.
    pub async fn open_existing(path: &Path) -> Result<Self, JournalError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, false))
            .await
            .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))?
    }

    fn open_blocking(path: &Path, create: bool) -> Result<Self, JournalError> {
        if path.is_dir() {
            return Err(JournalError::Other(format!(
                "{} is a directory: name a journal file in it, e.g. sqlite://{}/fieldtrail.db",
                path.display(),
                path.display()
            )));
        }
        let exists = path.exists();
        if !exists && !create {
            return Err(JournalError::Other(format!(
                "no journal at {} (fieldtrail demo, import or migrate create one)",
                path.display()
            )));
        }
        let writable = !exists
            // access(2), not an open: closing any descriptor of the file would release this
            // process's POSIX locks on it, SQLite's included (another process could then
            // remove the WAL under a live handle).
            || rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok()
                && path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .is_none_or(|d| {
                        !std::fs::metadata(d).is_ok_and(|m| m.permissions().readonly())
                    });
        if !writable {
            if !create {
                return Self::open_read_only(path);
            }
            return Err(JournalError::Other(format!(
                "{} cannot be written (read-only file or directory): this command appends to the journal; reading commands (report, audit, export, status) open it read-only",
                path.display()
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                JournalError::Other(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // Check what the file is before anything (even the WAL switch) writes to it.
        if exists {
            let probe =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .map_err(|e| not_a_journal(path, e))?;
            check_identity(&probe, path)?;
        }
        let writer = connect(path).map_err(|e| match e {
            JournalError::Sqlite(e) => not_a_journal(path, e),
            e => e,
        })?;
        if exists && !create {
            let journal: i64 = writer
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| not_a_journal(path, e))?;
            if journal == 0 {
                return Err(not_a_journal(path, "it holds no events table"));
            }
        }
        writer
            .execute_batch(&format!(
                "{} PRAGMA application_id = {APPLICATION_ID};",
                include_str!("schema.sql")
            ))
            .map_err(|e| not_a_journal(path, e))?;
        // A file written before positions were hashed (user_version 3) gets the column; its
        // rows keep chain version 1 (the default), as their hashes say.
        if !has_chain_version(&writer)? {
            writer.execute_batch(
                "ALTER TABLE events ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 1",
            )?;
        }
        // A file written before the events kept their command's name (user_version 5) gets
        // the column; its rows keep NULL, as their hashes say.
        if !has_event_column(&writer, "command")? {
            writer.execute_batch("ALTER TABLE events ADD COLUMN command TEXT")?;
        }
        // A file written before the keys carried their endorsement (user_version 6) gets the
        // column (its keys keep NULL) and the trigger that keeps it unchanged.
        if !has_column(&writer, "signing_keys", "endorsement")? {
            writer.execute_batch("ALTER TABLE signing_keys ADD COLUMN endorsement TEXT")?;
        }
        let trigger: Option<String> = writer
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'signing_keys_retire_only'",
                [],
                |r| r.get(0),
            )
            .ok();
        if !trigger.is_some_and(|sql| sql.contains("endorsement")) {
            writer.execute_batch(&format!(
                "BEGIN IMMEDIATE; DROP TRIGGER IF EXISTS signing_keys_retire_only; {SIGNING_KEYS_TRIGGER} COMMIT;"
            ))?;
        }
        // A file written before the reservations (user_version 2), or left half-copied, gets
        // them, under the write lock (another process may be doing the same).
        // The write lock is taken only when the table is stale (checked again under it).
        let mut writer = writer;
        if write::reservations_stale(&writer)? {
            let tx = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            write::rebuild_reservations(&tx, true)?;
            tx.commit()?;
        }
        Ok(Self::with_writer(path, writer))
    }

    /// A read-only, immutable view of a journal file that cannot be written.
    fn open_read_only(path: &Path) -> Result<Self, JournalError> {
        let uri = format!(
            "file:{}?immutable=1",
            path.display()
                .to_string()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23")
        );
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer =
            Connection::open_with_flags(&uri, flags).map_err(|e| not_a_journal(path, e))?;
        check_identity(&writer, path)?;
        let journal: i64 = writer
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| not_a_journal(path, e))?;
        if journal == 0 {
            return Err(not_a_journal(path, "it holds no events table"));
        }
        // A file from before user_version 3 or 5, which cannot be given the new columns:
        // temporary objects (which shadow the file's) show its rows as chain version 1 and
        // without a command's name, and no digests.
        let missing: Vec<&str> = [
            (!has_chain_version(&writer)?).then_some("1 AS chain_version"),
            (!has_event_column(&writer, "command")?).then_some("NULL AS command"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !missing.is_empty() {
            writer.execute_batch(&format!(
                "CREATE TEMP VIEW events AS SELECT *, {} FROM main.events;",
                missing.join(", ")
            ))?;
        }
        // Tables a file from an older version lacks, seen empty: digests and published keys
        // (before user_version 4), the key table (nothing in such a file is sealed), the
        // remembered refusals.
        for (table, ddl) in [
            (
                "signed_digests",
                "CREATE TEMP TABLE signed_digests (digest_id INTEGER PRIMARY KEY, tx_id INTEGER,
                   position INTEGER, events INTEGER, digest TEXT, head_hash TEXT,
                   signed_at INTEGER, key_id TEXT, jws TEXT);",
            ),
            (
                "signing_keys",
                "CREATE TEMP TABLE signing_keys (kid TEXT PRIMARY KEY, public_jwk TEXT,
                   created_at INTEGER, retired_at INTEGER, endorsement TEXT);",
            ),
            (
                "subject_keys",
                "CREATE TEMP TABLE subject_keys (subject_id TEXT PRIMARY KEY, wrapped_key BLOB,
                   created_at INTEGER, erased_at INTEGER);",
            ),
            (
                "command_rejections",
                "CREATE TEMP TABLE command_rejections (command_id TEXT PRIMARY KEY, command TEXT,
                   stream TEXT, code TEXT, message TEXT, recorded_at INTEGER);",
            ),
        ] {
            let present: i64 = writer.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )?;
            if present == 0 {
                writer.execute_batch(ddl)?;
            }
        }
        // Published keys kept before they carried an endorsement (before user_version 6).
        if !has_column(&writer, "signing_keys", "endorsement")? {
            writer.execute_batch(
                "CREATE TEMP VIEW signing_keys AS SELECT *, NULL AS endorsement FROM main.signing_keys;",
            )?;
        }
        let journal = Self::with_writer(path, writer);
        journal
            .inner
            .read_only
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(journal)
    }

    fn with_writer(path: &Path, writer: Connection) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                read_only: std::sync::atomic::AtomicBool::new(false),
                writer: Mutex::new(writer),
                pending: crate::group::AppendQueue::default(),
                readers: Mutex::new(Vec::new()),
                notify: Arc::default(),
            }),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) on the writer connection, then
    /// signals the bus if it committed.
    async fn write<T, F>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, JournalError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut connection = inner
                .writer
                .lock()
                .map_err(|_| JournalError::Other("journal writer poisoned".into()))?;
            let tx =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))?;
        if out.is_ok() {
            self.inner.notify.notify_waiters();
        }
        out
    }

    /// Runs `f` in a read transaction (one consistent snapshot) on a reader connection.
    async fn read<T, F>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, JournalError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            if inner.read_only.load(std::sync::atomic::Ordering::SeqCst) {
                let mut connection = inner
                    .writer
                    .lock()
                    .map_err(|_| JournalError::Other("journal connection poisoned".into()))?;
                let tx = connection.transaction()?;
                let out = f(&tx)?;
                tx.commit()?;
                return Ok(out);
            }
            let taken = inner.readers.lock().ok().and_then(|mut r| r.pop());
            let mut connection = match taken {
                Some(c) => c,
                None => connect(&inner.path)?,
            };
            let out = (|| {
                let tx = connection.transaction()?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })();
            if let Ok(mut readers) = inner.readers.lock() {
                if readers.len() < 8 {
                    readers.push(connection);
                }
            }
            out
        })
        .await
        .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl Backend for SqliteJournal {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[NewEvent],
        metadata: &CommandMetadata,
    ) -> Result<Vec<i64>, JournalError> {
        // Group commit: the first append to find the queue empty leads: it waits for the
        // writer, takes every append queued by then and commits them in one transaction.
        // Others queued meanwhile wait for their answer. Alone, an append is committed at once.
        let (answer, lead) =
            self.inner
                .pending
                .push(stream_type, stream_id, expected, events, metadata)?;
        if lead {
            let inner = self.inner.clone();
            let committed = tokio::task::spawn_blocking(move || {
                let writer = inner.writer.lock();
                let batch = inner.pending.take();
                match writer {
                    Ok(mut connection) => write::group_commit(&mut connection, batch),
                    Err(_) => {
                        for p in batch {
                            let _ = p
                                .reply
                                .send(Err(JournalError::Other("journal writer poisoned".into())));
                        }
                        false
                    }
                }
            })
            .await
            .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))?;
            if committed {
                self.inner.notify.notify_waiters();
            }
        }
        crate::group::answer(answer).await
    }

    async fn append_streams(
        &self,
        parts: &[crate::StreamAppend],
        metadata: &CommandMetadata,
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        let (parts, metadata) = (parts.to_vec(), metadata.clone());
        self.write(move |tx| write::append_streams(tx, &parts, &metadata))
            .await
    }

    async fn append_batch(
        &self,
        batch: &[crate::AppendRequest],
    ) -> Result<Vec<Vec<i64>>, JournalError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        let batch = batch.to_vec();
        let positions = tokio::task::spawn_blocking(move || {
            let mut writer = inner
                .writer
                .lock()
                .map_err(|_| JournalError::Other("journal writer poisoned".into()))?;
            write::append_batch(&mut writer, &batch)
        })
        .await
        .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))??;
        self.inner.notify.notify_waiters();
        Ok(positions)
    }

    async fn applied(&self, command_id: &str) -> Result<Option<AppendedCommand>, JournalError> {
        let command_id = command_id.to_owned();
        self.read(move |tx| read::applied(tx, &command_id)).await
    }

    async fn record_rejections(
        &self,
        rejections: &[crate::RejectedCommand],
    ) -> Result<(), JournalError> {
        if rejections.is_empty() {
            return Ok(());
        }
        let rejections = rejections.to_vec();
        self.write(move |tx| crate::rejections::record_sqlite(tx, &rejections))
            .await
    }

    async fn rejected_many(
        &self,
        command_ids: &[String],
    ) -> Result<Vec<crate::RejectedCommand>, JournalError> {
        if command_ids.is_empty() {
            return Ok(Vec::new());
        }
        let command_ids = command_ids.to_vec();
        self.read(move |tx| crate::rejections::find_sqlite(tx, Some(&command_ids)))
            .await
    }

    async fn export_rejections(&self) -> Result<Vec<crate::RejectedCommand>, JournalError> {
        self.read(|tx| crate::rejections::find_sqlite(tx, None))
            .await
    }

    async fn stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
        self.read(move |tx| read::stream(tx, &stream_type, &stream_id, after))
            .await
    }

    async fn event_at(
        &self,
        stream_type: &str,
        stream_id: &str,
        stream_version: i64,
    ) -> Result<Option<StoredEvent>, JournalError> {
        let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
        self.read(move |tx| read::event_at(tx, &stream_type, &stream_id, stream_version))
            .await
    }

    async fn read_log(
        &self,
        cut: Cut,
        streams: Option<&StreamSet>,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        let streams = streams.cloned();
        self.read(move |tx| read::log(tx, cut, streams.as_ref(), after, limit))
            .await
    }

    async fn cursor_at(&self, position: i64) -> Result<Cursor, JournalError> {
        self.read(move |tx| {
            Ok(tx
                .query_row(
                    "SELECT tx_id, position FROM events WHERE position <= ?1 ORDER BY position DESC LIMIT 1",
                    [position],
                    |r| {
                        Ok(Cursor {
                            tx_id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or_default(),
                            position: r.get(1)?,
                        })
                    },
                )
                .optional()?
                .unwrap_or_default())
        })
        .await
    }

    async fn head(&self) -> Result<i64, JournalError> {
        self.read(|tx| {
            Ok(
                tx.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn count(&self) -> Result<i64, JournalError> {
        self.read(|tx| Ok(tx.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?))
            .await
    }

    async fn wait_readable(&self, _limit: Duration) -> Result<bool, JournalError> {
        // One writer: whatever has committed is readable.
        Ok(true)
    }

    async fn find_streams(&self, query: StreamQuery<'_>) -> Result<Vec<String>, JournalError> {
        let query = read::OwnedQuery::from(query);
        self.read(move |tx| read::find_streams(tx, &query)).await
    }

    async fn history(
        &self,
        of: HistoryOf<'_>,
        filter: &EventFilter,
    ) -> Result<Vec<AuditRecord>, JournalError> {
        let of = read::OwnedHistory::from(of);
        let filter = filter.clone();
        self.read(move |tx| read::history(tx, &of, &filter)).await
    }

    async fn verify(&self, at_position: Option<i64>) -> Result<VerifyReport, JournalError> {
        self.read(move |tx| read::verify(tx, at_position)).await
    }

    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<SealedEvent>, JournalError> {
        self.read(move |tx| read::sealed_after(tx, after, limit))
            .await
    }

    async fn export_ledger(&self) -> Result<Vec<LedgerRow>, JournalError> {
        self.read(read::ledger).await
    }

    async fn import_events(
        &self,
        events: &[SealedEvent],
        ledger: &[LedgerRow],
    ) -> Result<(), JournalError> {
        let (events, ledger) = (events.to_vec(), ledger.to_vec());
        self.write(move |tx| write::import(tx, &events, &ledger))
            .await
    }

    async fn rebuild_reservations(&self) -> Result<ReservationsRebuilt, JournalError> {
        self.write(|tx| Ok(write::rebuild_reservations(tx, false)?.unwrap_or_default()))
            .await
    }

    async fn reservations(&self) -> Result<Vec<Reservation>, JournalError> {
        self.read(|tx| {
            let mut select = tx.prepare(
                "SELECT claim_kind, claim_key, holder, position FROM reservations ORDER BY claim_kind, claim_key",
            )?;
            let rows = select
                .query_map([], |r| {
                    Ok(Reservation {
                        claim_kind: r.get(0)?,
                        claim_key: r.get(1)?,
                        holder: r.get(2)?,
                        position: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn checkpoint(&self, name: &str) -> Result<Cursor, JournalError> {
        let name = name.to_owned();
        self.read(move |tx| read::checkpoint(tx, &name)).await
    }

    async fn commit_documents(
        &self,
        commit: DocumentCommit,
    ) -> Result<CommitOutcome, JournalError> {
        self.write(move |tx| write::documents(tx, &commit)).await
    }

    async fn document(&self, kind: &str, key: &str) -> Result<Option<(Value, i64)>, JournalError> {
        let (kind, key) = (kind.to_owned(), key.to_owned());
        self.read(move |tx| read::document(tx, &kind, &key)).await
    }

    async fn documents(&self) -> Result<Vec<(String, String, Value)>, JournalError> {
        self.read(read::documents).await
    }

    async fn store_digest(
        &self,
        digest: &crate::digests::SignedDigest,
    ) -> Result<i64, JournalError> {
        crate::digests::check(digest)?;
        let digest = digest.clone();
        self.write(move |tx| crate::digests::sqlite::store(tx, &digest))
            .await
    }

    async fn digests(&self) -> Result<Vec<crate::digests::SignedDigest>, JournalError> {
        self.read(crate::digests::sqlite::list).await
    }

    async fn publish_keys(
        &self,
        keys: &[crate::signing_keys::PublishedKey],
    ) -> Result<(), JournalError> {
        keys.iter().try_for_each(crate::signing_keys::check)?;
        let keys = keys.to_vec();
        self.write(move |tx| crate::signing_keys::sqlite::publish(tx, &keys))
            .await
    }

    async fn published_keys(&self) -> Result<Vec<crate::signing_keys::PublishedKey>, JournalError> {
        self.read(crate::signing_keys::sqlite::list).await
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), JournalError> {
        let token = token.clone();
        self.write(move |tx| write::insert_token(tx, &token)).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, JournalError> {
        self.read(|tx| read::tokens(tx, None)).await
    }

    async fn live_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>, JournalError> {
        self.read(move |tx| Ok(read::tokens(tx, Some(token_id))?.into_iter().next()))
            .await
    }

    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, JournalError> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE token_id = ?2 AND revoked_at IS NULL",
                rusqlite::params![micros(&Utc::now()), token_id.to_string()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn subject_keys(
        &self,
        subjects: &[String],
    ) -> Result<Vec<crate::sealing::SubjectKey>, JournalError> {
        let subjects = subjects.to_vec();
        self.read(move |tx| {
            let mut select = tx.prepare_cached(
                "SELECT subject_id, wrapped_key, created_at, erased_at FROM subject_keys
                 WHERE subject_id = ?1",
            )?;
            let mut out = Vec::new();
            for s in &subjects {
                let mut rows = select.query(rusqlite::params![s])?;
                if let Some(r) = rows.next()? {
                    out.push(crate::sealing::SubjectKey {
                        subject_id: r.get(0)?,
                        wrapped: r.get(1)?,
                        created_at: instant(r.get(2)?),
                        erased_at: r.get::<_, Option<i64>>(3)?.map(instant),
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn erase_subject_key(&self, subject_id: &str) -> Result<(), JournalError> {
        let subject_id = subject_id.to_owned();
        self.write(move |tx| {
            let now = micros(&Utc::now());
            tx.execute(
                crate::sealing::ERASE_KEY_SQLITE,
                rusqlite::params![subject_id, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn export_subject_keys(&self) -> Result<Vec<crate::sealing::SubjectKey>, JournalError> {
        self.read(move |tx| {
            let mut select = tx.prepare_cached(
                "SELECT subject_id, wrapped_key, created_at, erased_at FROM subject_keys
                 ORDER BY subject_id",
            )?;
            let rows = select.query_map([], |r| {
                Ok(crate::sealing::SubjectKey {
                    subject_id: r.get(0)?,
                    wrapped: r.get(1)?,
                    created_at: instant(r.get(2)?),
                    erased_at: r.get::<_, Option<i64>>(3)?.map(instant),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn insert_subject_keys(
        &self,
        keys: &[crate::sealing::SubjectKey],
    ) -> Result<(), JournalError> {
        let keys = keys.to_vec();
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO subject_keys (subject_id, wrapped_key, created_at, erased_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for k in &keys {
                insert.execute(rusqlite::params![
                    k.subject_id,
                    k.wrapped,
                    micros(&k.created_at),
                    k.erased_at.as_ref().map(micros)
                ])?;
            }
            Ok(())
        })
        .await
    }

    fn notifier(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    fn listen(&self) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}
