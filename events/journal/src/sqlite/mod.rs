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
    writer: Mutex<Connection>,
    /// Appends waiting for the next group commit ([`write::group_commit`]).
    pending: Mutex<Vec<write::PendingAppend>>,
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

impl SqliteJournal {
    /// Opens (creating if missing) the journal file at `path` and its schema.
    ///
    /// # Errors
    /// [`JournalError::Other`] naming the file when it cannot be opened or is not a journal.
    pub async fn open(path: &Path) -> Result<Self, JournalError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| JournalError::Other(format!("journal thread failed: {e}")))?
    }

    fn open_blocking(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                JournalError::Other(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let writer = connect(path).map_err(|e| match e {
            JournalError::Sqlite(e) => JournalError::Other(format!(
                "{} is not a fieldtrail journal (or is damaged): {e}",
                path.display()
            )),
            e => e,
        })?;
        writer
            .execute_batch(include_str!("schema.sql"))
            .map_err(|e| {
                JournalError::Other(format!(
                    "{} is not a fieldtrail journal (or is damaged): {e}",
                    path.display()
                ))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                pending: Mutex::new(Vec::new()),
                readers: Mutex::new(Vec::new()),
                notify: Arc::default(),
            }),
        })
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
        let (reply, answer) = tokio::sync::oneshot::channel();
        let lead = {
            let mut pending = self
                .inner
                .pending
                .lock()
                .map_err(|_| JournalError::Other("journal queue poisoned".into()))?;
            pending.push(write::PendingAppend {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                expected,
                events: events.to_vec(),
                metadata: metadata.clone(),
                reply,
            });
            pending.len() == 1
        };
        if lead {
            let inner = self.inner.clone();
            let committed = tokio::task::spawn_blocking(move || {
                let writer = inner.writer.lock();
                let batch = inner
                    .pending
                    .lock()
                    .map(|mut p| std::mem::take(&mut *p))
                    .unwrap_or_default();
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
        answer
            .await
            .map_err(|_| JournalError::Other("the journal writer stopped".into()))?
    }

    async fn applied(&self, command_id: &str) -> Result<Option<AppendedCommand>, JournalError> {
        let command_id = command_id.to_owned();
        self.read(move |tx| read::applied(tx, &command_id)).await
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

    fn notifier(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    fn listen(&self) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}
