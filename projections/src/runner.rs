//! The projector: folds the global log into [`ReadModels`] and stores the documents.
//!
//! Each batch's documents and the checkpoint are written in one transaction, so a crash never
//! half-applies a batch. Several projectors may run on one journal (two `serve` processes, or
//! an `import` next to a server): each batch's write is serialized with the others (an advisory
//! lock on PostgreSQL, the write lock on SQLite) and compares the stored checkpoint with its own
//! cursor ([`fieldtrail_journal::Backend::commit_documents`]); if another projector went
//! further, it folds the events in between without writing, so no document is written twice or
//! out of order. The same code runs on both backends. An erasure (`subject_erased`) makes the
//! projector rebuild every document, and every projector fold again from zero, so that no
//! document or in-memory state keeps the erased data.

use crate::store::{documents, recorded_owned};
use crate::{DocKey, ReadModels};
use fieldtrail_journal::checkpoint::PROJECTOR;
use fieldtrail_journal::{CommitOutcome, Cursor, DocumentCommit, Journal, JournalError};
use std::collections::BTreeSet;

pub use fieldtrail_journal::checkpoint::PROJECTOR_LOCK;

/// Whether `input` erases a data subject (the documents are rebuilt then).
fn erases(input: &crate::RecordedEvent) -> bool {
    matches!(input.event, fieldtrail_domain::AnyEvent::Subject(_))
}

/// Events folded per batch.
pub const BATCH: i64 = 1000;

/// A running projection over one database.
pub struct Projector {
    log: Journal,
    models: ReadModels,
    cursor: Cursor,
}

impl Projector {
    /// Starts from the stored checkpoint, folding the events before it (without writing) so
    /// that the in-memory state matches the stored documents.
    ///
    /// # Errors
    /// When the journal fails, or an event before the checkpoint cannot be read.
    pub async fn start(journal: Journal) -> Result<Self, JournalError> {
        let mut projector = Self {
            log: journal,
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
        self.log.checkpoint(PROJECTOR).await
    }

    /// Folds events after the cursor up to and including `target`, writing nothing. Returns
    /// how many events it folded. When one of them is an erasure (`subject_erased`, perhaps
    /// another projector's), the state is folded again from zero: what was folded before it
    /// holds the erased data in clear, the journal now answers the marker.
    async fn fold_until(&mut self, target: Cursor) -> Result<usize, JournalError> {
        let (folded, erased) = self.fold_plain(target).await?;
        if erased {
            self.models = ReadModels::new();
            self.cursor = Cursor::default();
            self.fold_plain(target).await?;
        }
        Ok(folded)
    }

    async fn fold_plain(&mut self, target: Cursor) -> Result<(usize, bool), JournalError> {
        let mut folded = 0;
        let mut erased = false;
        if target < self.cursor {
            // The checkpoint went back (a replay reset it): start again from zero.
            self.models = ReadModels::new();
            self.cursor = Cursor::default();
        }
        let mut pages = self.log.read_ahead(self.cursor, 10 * BATCH, false);
        while self.cursor < target {
            let Some(events) = pages.recv().await.transpose()? else {
                break;
            };
            for event in events {
                let after = Cursor::after(&event);
                if after > target {
                    return Ok((folded, erased));
                }
                let input = recorded_owned(event)?;
                erased |= erases(&input);
                self.models.apply(&input);
                self.cursor = after;
                folded += 1;
            }
        }
        Ok((folded, erased))
    }

    /// Folds and stores one batch. Returns how many events it applied (0: caught up).
    ///
    /// # Errors
    /// When the journal fails, or an event cannot be read (the error names its type and
    /// position; the checkpoint does not move past it).
    pub async fn run_once(&mut self) -> Result<usize, JournalError> {
        let events = self.log.read(self.cursor, BATCH).await?;
        if events.is_empty() {
            return Ok(0);
        }
        // Decode the whole batch first: an unreadable event stops the projector before it.
        let mut inputs = Vec::with_capacity(events.len());
        for event in events {
            let after = Cursor::after(&event);
            match recorded_owned(event) {
                Ok(r) => inputs.push((after, r)),
                Err(e) if inputs.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        // Folded in place (a copy of every read model per batch would cost the whole state,
        // growing with the journal); if the commit does not happen, the state is rebuilt below.
        let from = self.cursor;
        let mut touched = BTreeSet::<DocKey>::new();
        let mut cursor = self.cursor;
        for (after, input) in &inputs {
            touched.extend(self.models.apply(input));
            cursor = *after;
        }
        self.cursor = cursor;
        let touched: Vec<DocKey> = touched.into_iter().collect();
        let commit = DocumentCommit {
            checkpoint: PROJECTOR.to_owned(),
            expected: Some(from),
            cursor,
            documents: documents(&self.models, &touched),
            position: self.models.last_position().unwrap_or(0),
        };
        match self.log.commit_documents(commit).await {
            Ok(CommitOutcome::Written) if inputs.iter().any(|(_, i)| erases(i)) => {
                // An erasure: every document is rebuilt from the journal, whose erased
                // fields now read as the marker; then the state is folded again to match.
                rebuild(&self.log).await?;
                self.models = ReadModels::new();
                self.cursor = Cursor::default();
                let stored = self.stored_checkpoint().await?;
                self.fold_plain(stored).await?;
                Ok(inputs.len())
            }
            Ok(CommitOutcome::Written) => Ok(inputs.len()),
            Ok(CommitOutcome::Moved(stored)) => {
                // Another projector moved the checkpoint: catch our state up without writing
                // (from zero when it is behind what was folded here).
                let folded = self.fold_until(stored).await?;
                // Report progress even if the other projector went back (a replay): try again.
                Ok(folded.max(1))
            }
            Err(e) => {
                // The state is ahead of the stored checkpoint: forget it; the next batch
                // folds again from the stored checkpoint.
                self.models = ReadModels::new();
                self.cursor = Cursor::default();
                if let Ok(stored) = self.stored_checkpoint().await {
                    // Best effort: if it fails too, the next batch starts from zero.
                    let _ = self.fold_until(stored).await;
                }
                Err(e)
            }
        }
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
/// When the journal fails or an event cannot be read (nothing is changed then).
pub async fn rebuild(journal: &Journal) -> Result<usize, JournalError> {
    let mut models = ReadModels::new();
    let mut cursor = Cursor::default();
    let mut count = 0;
    loop {
        // Fold to the end of the log, then try to write; a live projector that went further
        // meanwhile makes the write refuse ([`CommitOutcome::Moved`]): fold the rest and retry.
        let mut pages = journal.read_ahead(cursor, 10 * BATCH, false);
        while let Some(events) = pages.recv().await.transpose()? {
            count += events.len();
            for event in events {
                cursor = Cursor::after(&event);
                models.apply(&recorded_owned(event)?);
            }
        }
        let keys: Vec<DocKey> = models
            .documents()
            .into_iter()
            .filter_map(|(kind, key, _)| {
                crate::DocKind::parse(kind).map(|kind| DocKey { kind, key })
            })
            .collect();
        let commit = DocumentCommit {
            checkpoint: PROJECTOR.to_owned(),
            expected: None,
            cursor,
            documents: documents(&models, &keys),
            position: models.last_position().unwrap_or(0),
        };
        match journal.commit_documents(commit).await? {
            CommitOutcome::Written => return Ok(count),
            CommitOutcome::Moved(_) => continue,
        }
    }
}
