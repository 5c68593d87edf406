//! The projector: folds the global log into [`ReadModels`] and stores the documents.
//!
//! Each batch's documents and the checkpoint are written in one transaction, so a crash never
//! half-applies a batch. Several projectors may run on one journal (two `serve` processes, or
//! an `import` next to a server): each batch's write is serialized with the others (an advisory
//! lock on PostgreSQL, the write lock on SQLite) and compares the stored checkpoint with its own
//! cursor ([`fieldtrail_journal::Backend::commit_documents`]); if another projector went
//! further, it forgets what it holds and continues from the stored checkpoint (what it needs
//! is folded again from the journal), so no document is written twice or out of order. The same code runs on both backends. An erasure (`subject_erased`) makes the
//! projector rebuild every document, and every projector forget what it holds in memory, so that
//! no document or in-memory state keeps the erased data. A projector holds only some cohort
//! partitions in memory (see [`Projector`]).

use crate::resident::Resident;
use crate::store::{documents, recorded_owned};
use crate::{DocKey, Home, ReadModels, RecordedEvent};
use fieldtrail_journal::audit::{Cut, StreamSet};
use fieldtrail_journal::checkpoint::PROJECTOR;
use fieldtrail_journal::{
    CommitOutcome, Cursor, DocumentCommit, Journal, JournalError, StreamQuery,
};
use std::collections::{BTreeMap, BTreeSet};

pub use fieldtrail_journal::checkpoint::PROJECTOR_LOCK;

/// Whether `input` erases a data subject (the documents are rebuilt then).
fn erases(input: &RecordedEvent) -> bool {
    matches!(input.event, fieldtrail_domain::AnyEvent::Subject(_))
}

/// Events folded per batch.
pub const BATCH: i64 = 1000;

/// Batches [`Projector::run_once`] tries when another projector moved the checkpoint first.
const MOVED_RETRIES: usize = 8;

/// The events whose fold a projector keeps in memory by default ([`Limits::cached_events`]):
/// about 50 MiB of state for the benchmark's generated cohorts (400 events each).
pub const CACHED_EVENTS: u64 = 100_000;

/// How much a [`Projector`] folds at a time and keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events read and folded per batch (default [`BATCH`]).
    pub batch: i64,
    /// The cohort partitions kept in memory, counted by the events folded into them
    /// (default [`CACHED_EVENTS`]); past it, the partitions used least recently are
    /// forgotten after a batch (never those of the batch) and folded again from the
    /// journal when one of their events comes. 0 keeps only the current batch's.
    pub cached_events: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch: BATCH,
            cached_events: CACHED_EVENTS,
        }
    }
}

/// A running projection over one database.
///
/// It holds in memory only the cohort partitions ([`crate::models`], "partition") that recent
/// batches touched, within [`Limits::cached_events`]: a batch first folds, from the journal,
/// the partitions of its events that are not held (their streams' events up to the
/// projector's cursor, through the stream index), then folds the batch. So `serve` never
/// folds the whole journal, and its memory does not grow with it.
pub struct Projector {
    log: Journal,
    models: ReadModels,
    cursor: Cursor,
    limits: Limits,
    resident: Resident,
    loaded: u64,
}

impl Projector {
    /// Starts at the stored checkpoint, with the default [`Limits`]; nothing is folded
    /// before the first batch.
    ///
    /// # Errors
    /// When the checkpoint cannot be read.
    pub async fn start(journal: Journal) -> Result<Self, JournalError> {
        Self::start_with(journal, Limits::default()).await
    }

    /// As [`Projector::start`], with `limits`.
    ///
    /// # Errors
    /// When the checkpoint cannot be read.
    pub async fn start_with(journal: Journal, limits: Limits) -> Result<Self, JournalError> {
        let cursor = journal.checkpoint(PROJECTOR).await?;
        Ok(Self {
            log: journal,
            models: ReadModels::new(),
            cursor,
            limits: Limits {
                batch: limits.batch.max(1),
                ..limits
            },
            resident: Resident::default(),
            loaded: 0,
        })
    }

    /// The cursor of the last event folded.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The read models held in memory: the partitions of the cohorts recently touched, not
    /// every document.
    pub fn models(&self) -> &ReadModels {
        &self.models
    }

    /// How many events the held partitions were folded from (what [`Limits::cached_events`]
    /// bounds).
    pub fn cached_events(&self) -> u64 {
        self.resident.total()
    }

    /// How many cohort partitions were folded from the journal since the start (a partition
    /// forgotten and needed again counts again).
    pub fn partitions_loaded(&self) -> u64 {
        self.loaded
    }

    /// Forgets every partition and continues from the stored checkpoint (`None`: from the
    /// start of the log). The programmes stay (defined once, no personal data), and so does
    /// the last position folded, which the stored documents' `position` never goes below.
    fn reset(&mut self, stored: Option<Cursor>) {
        self.models.forget_cohorts();
        self.resident = Resident::default();
        self.cursor = stored.unwrap_or_default();
    }

    /// Folds and stores one batch. Returns how many events it applied (0: caught up). When
    /// another projector moved the checkpoint, it continues from there.
    ///
    /// # Errors
    /// When the journal fails, or an event cannot be read (the error names its type and
    /// position; the checkpoint does not move past it).
    pub async fn run_once(&mut self) -> Result<usize, JournalError> {
        for _ in 0..MOVED_RETRIES {
            match self.try_batch().await {
                Ok(Some(applied)) => return Ok(applied),
                Ok(None) => continue,
                Err(e) => {
                    // The state may be ahead of the stored checkpoint: forget it; the next
                    // batch starts from the stored checkpoint (best effort: from zero when
                    // it cannot be read either, which the checkpoint's comparison corrects).
                    let stored = self.log.checkpoint(PROJECTOR).await.ok();
                    self.reset(stored);
                    return Err(e);
                }
            }
        }
        // Another projector kept moving the checkpoint: report progress, the caller asks again.
        Ok(1)
    }

    /// One batch; `None` when another projector had moved the checkpoint (the cursor is now
    /// the stored one).
    async fn try_batch(&mut self) -> Result<Option<usize>, JournalError> {
        let events = self.log.read(self.cursor, self.limits.batch).await?;
        if events.is_empty() {
            return Ok(Some(0));
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
        self.hold_partitions(&inputs).await?;
        // Folded in place; if the commit does not happen, the state is forgotten below.
        let from = self.cursor;
        let mut touched = BTreeSet::<DocKey>::new();
        let mut cursor = self.cursor;
        let mut used = BTreeMap::<String, u64>::new();
        for (after, input) in &inputs {
            touched.extend(self.models.apply(input));
            if let Some(cohort) = self.partition_of(input) {
                *used.entry(cohort).or_default() += 1;
            }
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
        match self.log.commit_documents(commit).await? {
            CommitOutcome::Written if inputs.iter().any(|(_, i)| erases(i)) => {
                // An erasure: every document is rebuilt from the journal, whose erased
                // fields now read as the marker; what is held in memory is forgotten.
                rebuild(&self.log).await?;
                let stored = self.log.checkpoint(PROJECTOR).await?;
                self.reset(Some(stored));
                Ok(Some(inputs.len()))
            }
            CommitOutcome::Written => {
                for (cohort, events) in used {
                    self.resident.used(cohort, events);
                }
                for cohort in self.resident.over(self.limits.cached_events) {
                    self.models.forget_cohort(&cohort);
                }
                self.resident.next_batch();
                Ok(Some(inputs.len()))
            }
            CommitOutcome::Moved(stored) => {
                // Another projector moved the checkpoint (perhaps back, a replay): what is
                // held was folded along another path; continue from the stored checkpoint.
                self.reset(Some(stored));
                Ok(None)
            }
        }
    }

    /// The cohort whose partition `input` folded into, once folded.
    fn partition_of(&self, input: &RecordedEvent) -> Option<String> {
        match ReadModels::home(input) {
            Home::Everywhere => None,
            Home::Cohort { id, .. } => Some(id.to_owned()),
            Home::FieldStudy { id, cohort } => cohort
                .or_else(|| self.models.cohort_of_field_study(id))
                .map(str::to_owned),
        }
    }

    /// Folds from the journal, up to the cursor, the partitions the batch's events need and
    /// the projector does not hold: one query for the field studies whose cohort is not
    /// known, two look-ups per cohort (its programme, its field studies), then the events of
    /// their streams in global-log order.
    async fn hold_partitions(
        &mut self,
        inputs: &[(Cursor, RecordedEvent)],
    ) -> Result<(), JournalError> {
        let mut opened = BTreeSet::<&str>::new();
        let mut defined = BTreeSet::<&str>::new();
        let mut programmes = BTreeSet::<String>::new();
        let mut formed = BTreeMap::<&str, &str>::new();
        let mut wanted = BTreeSet::<String>::new();
        let mut unknown = BTreeSet::<&str>::new();
        for (_, input) in inputs {
            if let fieldtrail_domain::AnyEvent::Programme(
                fieldtrail_domain::ProgrammeEvent::ProgrammeDefined { programme_id, .. },
            ) = &input.event
            {
                defined.insert(programme_id.as_str());
            }
            let cohort = match ReadModels::home(input) {
                Home::Everywhere => continue,
                Home::Cohort {
                    id,
                    opened_on: Some(programme),
                } => {
                    opened.insert(id);
                    if !defined.contains(programme) && !self.models.holds_programme(programme) {
                        programmes.insert(programme.to_owned());
                    }
                    continue;
                }
                Home::Cohort { id, .. } => id,
                Home::FieldStudy {
                    id,
                    cohort: Some(cohort),
                } => {
                    formed.insert(id, cohort);
                    cohort
                }
                Home::FieldStudy { id, cohort: None } => {
                    match formed
                        .get(id)
                        .copied()
                        .or_else(|| self.models.cohort_of_field_study(id))
                    {
                        Some(cohort) => cohort,
                        None => {
                            unknown.insert(id);
                            continue;
                        }
                    }
                }
            };
            if !opened.contains(cohort) && !self.resident.holds(cohort) {
                wanted.insert(cohort.to_owned());
            }
        }
        for field_study_id in unknown {
            if let Some(cohort) = self.cohort_of_stored_study(field_study_id).await? {
                if !opened.contains(cohort.as_str()) && !self.resident.holds(&cohort) {
                    wanted.insert(cohort);
                }
            }
        }
        if wanted.is_empty() && programmes.is_empty() {
            return Ok(());
        }
        let (part, events) = fold_partitions(&self.log, &wanted, programmes, self.cursor).await?;
        self.models.absorb(part);
        self.loaded += wanted.len() as u64;
        for cohort in wanted {
            let count = events.get(&cohort).copied().unwrap_or(0);
            self.resident.used(cohort, count);
        }
        Ok(())
    }

    /// The cohort a stored field study was formed in (its first event), `None` when the
    /// journal has no such study.
    async fn cohort_of_stored_study(
        &self,
        field_study_id: &str,
    ) -> Result<Option<String>, JournalError> {
        let formation = self.log.event_at("field_study", field_study_id, 1).await?;
        Ok(formation.and_then(|e| {
            e.payload
                .get("cohort_id")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        }))
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

/// The fold of the partitions of `cohorts` and of the streams of `programmes` (their events
/// up to `until`, in global-log order) and how many events went into each cohort's partition.
async fn fold_partitions(
    journal: &Journal,
    cohorts: &BTreeSet<String>,
    programmes: BTreeSet<String>,
    until: Cursor,
) -> Result<(ReadModels, BTreeMap<String, u64>), JournalError> {
    let mut streams = StreamSet {
        programmes: programmes.into_iter().collect(),
        ..StreamSet::default()
    };
    for cohort_id in cohorts {
        let cohort_id = cohort_id.as_str();
        streams.programmes.extend(
            journal
                .find_streams(StreamQuery::ProgrammeOf { cohort_id })
                .await?,
        );
        streams.field_studies.extend(
            journal
                .find_streams(StreamQuery::FieldStudiesOf { cohort_id })
                .await?,
        );
        streams.cohorts.push(cohort_id.to_owned());
    }
    streams.programmes.sort();
    streams.programmes.dedup();
    streams.field_studies.sort();
    streams.field_studies.dedup();
    let mut part = ReadModels::new();
    let mut events = BTreeMap::<String, u64>::new();
    let mut after = Cursor::default();
    'pages: loop {
        let page = journal
            .read_log(Cut::Position(i64::MAX), Some(&streams), after, 10 * BATCH)
            .await?;
        if page.is_empty() {
            break;
        }
        for event in page {
            after = Cursor::after(&event);
            if after > until {
                break 'pages;
            }
            let input = recorded_owned(event)?;
            part.apply(&input);
            let cohort = match ReadModels::home(&input) {
                Home::Cohort { id, .. } => Some(id),
                Home::FieldStudy { id, .. } => part.cohort_of_field_study(id),
                Home::Everywhere => None,
            };
            if let Some(cohort) = cohort {
                *events.entry(cohort.to_owned()).or_default() += 1;
            }
        }
    }
    Ok((part, events))
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
