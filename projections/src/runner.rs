//! The projector: folds the global log into [`ReadModels`] and stores the documents.
//!
//! Each batch's documents and the checkpoint are written in one transaction, so a crash never
//! half-applies a batch. Several projectors may run on one database (two `serve` processes, or
//! an `import` next to a server): each batch takes a transaction-scoped advisory lock and
//! compares the stored checkpoint with its own cursor; if another projector went further, it
//! folds the events in between without writing, so no document is written twice or out of order.

use crate::store::{recorded, write_documents};
use crate::{DocKey, ReadModels};
use deadpool_postgres::Pool;
use fieldtrail_journal::checkpoint::{self, PROJECTOR};
use fieldtrail_journal::{Cursor, GlobalLog, JournalError};
use std::collections::BTreeSet;

/// Advisory lock key serializing projector batches across processes.
pub const PROJECTOR_LOCK: i64 = 7_461_002;

/// Events folded per batch.
pub const BATCH: i64 = 1000;

/// A running projection over one database.
pub struct Projector {
    pool: Pool,
    log: GlobalLog,
    models: ReadModels,
    cursor: Cursor,
}

impl Projector {
    /// Starts from the stored checkpoint, folding the events before it (without writing) so
    /// that the in-memory state matches the stored documents.
    ///
    /// # Errors
    /// When PostgreSQL fails, or an event before the checkpoint cannot be read.
    pub async fn start(pool: Pool) -> Result<Self, JournalError> {
        let mut projector = Self {
            log: GlobalLog::new(pool.clone()),
            pool,
            models: ReadModels::new(),
            cursor: Cursor::default(),
        };
        let stored = projector.stored_checkpoint().await?;
        projector.fold_until(stored).await?;
        Ok(projector)
    }

    /// The cursor of the last event folded.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The in-memory read models.
    pub fn models(&self) -> &ReadModels {
        &self.models
    }

    async fn stored_checkpoint(&self) -> Result<Cursor, JournalError> {
        let client = self.pool.get().await?;
        checkpoint::load(&client, PROJECTOR).await
    }

    /// Folds events after the cursor up to and including `target`, writing nothing. Returns
    /// how many events it folded.
    async fn fold_until(&mut self, target: Cursor) -> Result<usize, JournalError> {
        let mut folded = 0;
        if target < self.cursor {
            // The checkpoint went back (a replay reset it): start again from zero.
            self.models = ReadModels::new();
            self.cursor = Cursor::default();
        }
        while self.cursor < target {
            let events = self.log.read(self.cursor, BATCH).await?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                if Cursor::after(event) > target {
                    return Ok(folded);
                }
                self.models.apply(&recorded(event)?);
                self.cursor = Cursor::after(event);
                folded += 1;
            }
        }
        Ok(folded)
    }

    /// Folds and stores one batch. Returns how many events it applied (0: caught up).
    ///
    /// # Errors
    /// When PostgreSQL fails, or an event cannot be read (the error names its type and
    /// position; the checkpoint does not move past it).
    pub async fn run_once(&mut self) -> Result<usize, JournalError> {
        let events = self.log.read(self.cursor, BATCH).await?;
        if events.is_empty() {
            return Ok(0);
        }
        // Decode the whole batch first: an unreadable event stops the projector before it.
        let mut inputs = Vec::with_capacity(events.len());
        for event in &events {
            match recorded(event) {
                Ok(r) => inputs.push((Cursor::after(event), r)),
                Err(e) if inputs.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PROJECTOR_LOCK])
            .await?;
        let stored = checkpoint::load(&tx, PROJECTOR).await?;
        if stored != self.cursor {
            // Another projector moved the checkpoint: catch our state up without writing.
            tx.rollback().await?;
            let folded = self.fold_until(stored).await?;
            // Report progress even if the other projector went back (a replay): try again.
            return Ok(folded.max(1));
        }
        let mut next = self.models.clone();
        let mut touched = BTreeSet::<DocKey>::new();
        let mut cursor = self.cursor;
        for (after, input) in &inputs {
            touched.extend(next.apply(input));
            cursor = *after;
        }
        let touched: Vec<DocKey> = touched.into_iter().collect();
        let position = next.last_position().unwrap_or(0);
        write_documents(&tx, &next, &touched, position).await?;
        checkpoint::save(&tx, PROJECTOR, cursor).await?;
        tx.commit().await?;
        self.models = next;
        self.cursor = cursor;
        Ok(inputs.len())
    }

    /// Runs batches until nothing is left. Returns how many events were applied.
    ///
    /// # Errors
    /// As [`Projector::run_once`].
    pub async fn catch_up(&mut self) -> Result<usize, JournalError> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }
}

/// Rebuilds every read model from position zero in one transaction: the documents are
/// deleted, the whole journal is folded, every document and the checkpoint are written.
/// Readers see the old documents until it commits. Returns the number of events folded.
///
/// # Errors
/// When PostgreSQL fails or an event cannot be read (nothing is changed then).
pub async fn rebuild(pool: &Pool) -> Result<usize, JournalError> {
    let log = GlobalLog::new(pool.clone());
    let mut models = ReadModels::new();
    let mut cursor = Cursor::default();
    let mut count = 0;
    loop {
        let events = log.read(cursor, 10 * BATCH).await?;
        if events.is_empty() {
            break;
        }
        for event in &events {
            models.apply(&recorded(event)?);
            cursor = Cursor::after(event);
        }
        count += events.len();
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PROJECTOR_LOCK])
        .await?;
    let stored = checkpoint::load(&tx, PROJECTOR).await?;
    if stored > cursor {
        // A live projector went further while we folded: fold the rest under the lock.
        loop {
            let events = log.read(cursor, 10 * BATCH).await?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                models.apply(&recorded(event)?);
                cursor = Cursor::after(event);
            }
            count += events.len();
        }
    }
    tx.execute("DELETE FROM read_models", &[]).await?;
    let keys: Vec<DocKey> = models
        .documents()
        .into_iter()
        .filter_map(|(kind, key, _)| crate::DocKind::parse(kind).map(|kind| DocKey { kind, key }))
        .collect();
    write_documents(&tx, &models, &keys, models.last_position().unwrap_or(0)).await?;
    checkpoint::save(&tx, PROJECTOR, cursor).await?;
    tx.commit().await?;
    Ok(count)
}
