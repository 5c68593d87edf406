//! The bulk path of the import: a batch of lines decided in memory, appended in one
//! transaction ([`fieldtrail_journal::Backend::append_batch`]).
//!
//! Each line goes through the same checks and the same aggregates as
//! [`CommandHandler::handle_json_as`], in order, against an in-memory overlay: the state of
//! every aggregate the batch touched, after the batch's earlier lines (a look-up from one
//! aggregate into another sees it too). A rejected line appends nothing and changes nothing
//! in the overlay, so it costs the batch nothing. The accepted lines are appended together;
//! if that append fails because another writer went first (a version conflict) or a command
//! id reached the ledger meanwhile, the overlay is dropped and the batch's lines are judged
//! again one by one through the ordinary path, which answers each exactly as it would have.

use crate::cli::progress::Progress;
use crate::handler::{journal_error, prepare, CommandHandler, HandleError, Outcome, Prepared};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use fieldtrail_domain::{
    Cohort, Command, CommandEnvelope, DataSubject, DecideError, FieldStudy, LookupError, Lookups,
    Programme, Rejection, Stamped,
};
use fieldtrail_journal::{
    AggregateCache, AppendRequest, AppendedCommand, JournalError, JournalLookups, NewEvent,
    RejectedCommand,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Lines per batch of `fieldtrail import` (one transaction each).
pub const BATCH_LINES: usize = 1000;

/// An aggregate's state in the overlay.
#[derive(Clone)]
enum Loaded {
    Programme(Programme),
    Cohort(Cohort),
    FieldStudy(FieldStudy),
    DataSubject(DataSubject),
}

/// The aggregates the bulk path decides, as they sit in the overlay.
trait Overlaid: Aggregate<Services = Arc<dyn Lookups>, Error = DecideError> + Clone + 'static {
    fn wrap(self) -> Loaded;
    fn unwrap(loaded: &Loaded) -> Option<&Self>;
    fn take(loaded: Loaded) -> Option<Self>;
}

macro_rules! overlaid {
    ($type:ident) => {
        impl Overlaid for $type {
            fn wrap(self) -> Loaded {
                Loaded::$type(self)
            }
            fn unwrap(loaded: &Loaded) -> Option<&Self> {
                match loaded {
                    Loaded::$type(a) => Some(a),
                    _ => None,
                }
            }
            fn take(loaded: Loaded) -> Option<Self> {
                match loaded {
                    Loaded::$type(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}
overlaid!(Programme);
overlaid!(Cohort);
overlaid!(FieldStudy);
overlaid!(DataSubject);

mod pipeline;
pub use pipeline::BatchFailed;

/// State after the batch's accepted lines so far, by `(stream type, id)`, with its version
/// and the number of the batch that last decided on it (see [`pipeline`]).
type Overlay = Arc<Mutex<HashMap<(&'static str, String), (Loaded, i64, u64)>>>;

fn overlaid<A: Overlaid>(overlay: &Overlay, id: &str) -> Option<(A, i64)> {
    let entries = overlay.lock().ok()?;
    let (loaded, version, _) = entries.get(&(A::TYPE, id.to_owned()))?;
    A::unwrap(loaded).map(|a| (a.clone(), *version))
}

/// Moves into `cache` the overlay's states that batches up to `settled` decided (all when
/// `None`): their appends committed.
fn settle(overlay: &Overlay, cache: &AggregateCache, settled: Option<u64>) {
    if let Ok(mut entries) = overlay.lock() {
        let keys: Vec<(&'static str, String)> = entries
            .iter()
            .filter(|(_, (_, _, batch))| settled.is_none_or(|s| *batch <= s))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            if let Some((loaded, version, _)) = entries.remove(&key) {
                let id = key.1;
                match loaded {
                    Loaded::Programme(a) => cache.store(&id, a, version),
                    Loaded::Cohort(a) => cache.store(&id, a, version),
                    Loaded::FieldStudy(a) => cache.store(&id, a, version),
                    Loaded::DataSubject(a) => cache.store(&id, a, version),
                }
            }
        }
    }
}

/// Drops the overlay and whatever the cache holds of its aggregates (their states may rest
/// on appends that did not happen).
fn discard(overlay: &Overlay, cache: &AggregateCache) {
    if let Ok(mut entries) = overlay.lock() {
        for ((stream_type, id), _) in entries.drain() {
            cache.evict(stream_type, &id);
        }
    }
}

/// The domain's look-ups, answered from the overlay first, then from the journal.
struct OverlayLookups {
    overlay: Overlay,
    journal: JournalLookups,
}

#[async_trait::async_trait]
impl Lookups for OverlayLookups {
    async fn programme(&self, programme_id: &str) -> Result<Option<Programme>, LookupError> {
        match overlaid::<Programme>(&self.overlay, programme_id) {
            Some((p, _)) => Ok(Some(p)),
            None => self.journal.programme(programme_id).await,
        }
    }

    async fn cohort(&self, cohort_id: &str) -> Result<Option<Cohort>, LookupError> {
        match overlaid::<Cohort>(&self.overlay, cohort_id) {
            Some((c, _)) => Ok(Some(c)),
            None => self.journal.cohort(cohort_id).await,
        }
    }

    async fn field_study(&self, field_study_id: &str) -> Result<Option<FieldStudy>, LookupError> {
        match overlaid::<FieldStudy>(&self.overlay, field_study_id) {
            Some((f, _)) => Ok(Some(f)),
            None => self.journal.field_study(field_study_id).await,
        }
    }

    /// Passed to the journal's key table: the bulk path decides an erasure only when nothing
    /// but erasures precede it in the batch (whose subjects' keys are all stored).
    async fn subject_known(&self, subject_id: &str) -> Result<bool, LookupError> {
        self.journal.subject_known(subject_id).await
    }

    async fn field_studies_of_cohort(
        &self,
        cohort_id: &str,
    ) -> Result<Vec<FieldStudy>, LookupError> {
        let stored = self.journal.field_studies_of_cohort(cohort_id).await?;
        let pending: Vec<FieldStudy> = self
            .overlay
            .lock()
            .map(|entries| {
                entries
                    .values()
                    .filter_map(|(loaded, _, _)| FieldStudy::unwrap(loaded))
                    .filter(|f| f.cohort_id().map(|c| c.as_str()) == Some(cohort_id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let id = |f: &FieldStudy| f.field_study_id().map(|i| i.as_str().to_owned());
        let mut studies: Vec<FieldStudy> = stored
            .into_iter()
            .filter(|s| !pending.iter().any(|p| id(p) == id(s)))
            .collect();
        studies.extend(pending);
        Ok(studies)
    }
}

/// What deciding one line gave.
enum Decided {
    /// Its outcome is known now (rejected, or applied before the batch).
    Done(Outcome),
    /// Its events go into the batch's append, as request number `usize`.
    Appending(usize),
    /// The same command id as request number `usize` of this batch.
    DuplicateOf(usize),
}

/// Why a line stopped the in-memory path.
enum Stop {
    /// The journal failed: the import stops.
    Failed(HandleError),
    /// Something the bulk path does not judge itself: judge the batch line by line.
    Fallback,
}

impl From<HandleError> for Stop {
    fn from(e: HandleError) -> Self {
        Stop::Failed(e)
    }
}

impl CommandHandler {
    /// Judges `lines` (JSON envelopes, in order) as [`CommandHandler::handle_json_as`] would
    /// one after the other, appending every accepted line in one transaction: one outcome per
    /// line, in order.
    ///
    /// # Errors
    /// [`HandleError`] when the journal cannot be used (nothing of the batch is appended
    /// then, unless it failed in the line-by-line fallback, where what was appended stays).
    pub async fn handle_batch(
        &self,
        lines: &[&str],
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<Vec<Outcome>, HandleError> {
        self.handle_batch_with_progress(lines, now, actor, &Progress::hidden())
            .await
    }

    /// As [`CommandHandler::handle_batch`], advancing `progress` by one as each line is
    /// decided.
    ///
    /// # Errors
    /// As [`CommandHandler::handle_batch`].
    pub async fn handle_batch_with_progress(
        &self,
        lines: &[&str],
        now: DateTime<Utc>,
        actor: Option<&str>,
        progress: &Progress,
    ) -> Result<Vec<Outcome>, HandleError> {
        let started = std::time::Instant::now();
        let mut counted = 0;
        let outcomes = match self
            .decide_batch(lines, now, actor, progress, &mut counted)
            .await
        {
            Ok(outcomes) => outcomes,
            Err(Stop::Failed(e)) => return Err(e),
            Err(Stop::Fallback) => {
                // The lines the bulk pass did not reach advance the bar as they are judged.
                let mut outcomes = Vec::with_capacity(lines.len());
                for (n, line) in lines.iter().enumerate() {
                    outcomes.push(self.handle_json_as(line, now, actor).await?);
                    if n >= counted {
                        progress.inc(1);
                    }
                }
                return Ok(outcomes);
            }
        };
        let each = started.elapsed() / u32::try_from(lines.len().max(1)).unwrap_or(u32::MAX);
        for outcome in &outcomes {
            let label = crate::http::metrics::outcome_label(&Ok(outcome.clone()));
            crate::http::metrics::command_judged("import", &label, each);
        }
        Ok(outcomes)
    }

    async fn decide_batch(
        &self,
        lines: &[&str],
        now: DateTime<Utc>,
        actor: Option<&str>,
        progress: &Progress,
        counted: &mut usize,
    ) -> Result<Vec<Outcome>, Stop> {
        let overlay: Overlay = Arc::default();
        let batch = Batch {
            overlay: &overlay,
            number: 0,
            after_pending: false,
            pending_ids: None,
        };
        let pending = self
            .prepare_batch(lines, now, actor, progress, counted, batch)
            .await?;
        let positions = match append(self.journal(), &pending).await {
            Ok(positions) => positions,
            Err(stop) => {
                discard(&overlay, self.cache());
                return Err(stop);
            }
        };
        settle(&overlay, self.cache(), None);
        Ok(pending.answers(&positions))
    }

    /// Decides `lines` against `batch.overlay` (the states of `batch.number`'s lines go into
    /// it), without appending: the batch's requests, its refusals and each line's decision.
    async fn prepare_batch(
        &self,
        lines: &[&str],
        now: DateTime<Utc>,
        actor: Option<&str>,
        progress: &Progress,
        counted: &mut usize,
        batch: Batch<'_>,
    ) -> Result<Pending, Stop> {
        let overlay = batch.overlay;
        let envelopes: Vec<Result<CommandEnvelope, Outcome>> = lines
            .iter()
            .map(|line| {
                CommandEnvelope::parse_line(line).map_err(|r| {
                    let id = serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v.get("command_id")?.as_str().map(str::to_owned));
                    Outcome::rejected(id.as_deref(), r)
                })
            })
            .collect();
        let ids: Vec<String> = envelopes
            .iter()
            .filter_map(|e| e.as_ref().ok().map(|e| e.command_id.clone()))
            .collect();
        let known: HashMap<String, AppendedCommand> = self
            .journal()
            .applied_many(&ids)
            .await
            .map_err(journal_error)?
            .into_iter()
            .map(|a| (a.command_id.clone(), a))
            .collect();
        // Ids the rules refused before: spent, answered as the first time.
        let refused: HashMap<String, RejectedCommand> = self
            .journal()
            .rejected_many(&ids)
            .await
            .map_err(journal_error)?
            .into_iter()
            .map(|r| (r.command_id.clone(), r))
            .collect();
        // The refusals of this batch, remembered once its append commits.
        let mut refusals: Vec<RejectedCommand> = Vec::new();
        let lookups: Arc<dyn Lookups> = Arc::new(OverlayLookups {
            overlay: overlay.clone(),
            journal: JournalLookups::new(self.cache().clone()),
        });
        let mut requests: Vec<AppendRequest> = Vec::new();
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        let mut decided = Vec::with_capacity(lines.len());
        for envelope in envelopes {
            progress.inc(1);
            *counted += 1;
            let envelope = match envelope {
                Ok(e) => e,
                Err(outcome) => {
                    decided.push(Decided::Done(outcome));
                    continue;
                }
            };
            if batch
                .pending_ids
                .is_some_and(|ids| ids.contains(&envelope.command_id))
            {
                return Err(Stop::Fallback);
            }
            let id = Some(envelope.command_id.as_str());
            if let Err(r) = envelope.check().and_then(|()| envelope.check_texts()) {
                decided.push(Decided::Done(Outcome::rejected(id, r)));
                continue;
            }
            if let Some(done) = known.get(&envelope.command_id) {
                decided.push(Decided::Done(Outcome::from_ledger(done.clone(), false)));
                continue;
            }
            if let Some(first) = refused.get(&envelope.command_id) {
                decided.push(Decided::Done(Outcome::from_rejection(first.clone())));
                continue;
            }
            if let Some(&first) = in_batch.get(&envelope.command_id) {
                decided.push(Decided::DuplicateOf(first));
                continue;
            }
            if let Some(first) = refusals
                .iter()
                .find(|r| r.command_id == envelope.command_id)
            {
                decided.push(Decided::Done(Outcome::from_rejection(first.clone())));
                continue;
            }
            let prepared = match prepare(&envelope, now, actor) {
                Ok(p) => p,
                Err(r) => {
                    decided.push(Decided::Done(Outcome::rejected(id, r)));
                    continue;
                }
            };
            let at = (overlay, batch.number);
            let result = match &prepared.command {
                Command::Programme(c) => {
                    decide::<Programme, _>(self.cache(), at, &lookups, &envelope, c, &prepared)
                        .await
                }
                Command::Cohort(c) => {
                    decide::<Cohort, _>(self.cache(), at, &lookups, &envelope, c, &prepared).await
                }
                Command::FieldStudy(c) => {
                    decide::<FieldStudy, _>(self.cache(), at, &lookups, &envelope, c, &prepared)
                        .await
                }
                Command::Subject(c) => {
                    // An erasure keeps its subject's research reason categories, read from
                    // the journal: the events of this batch not yet appended are not there,
                    // so a batch with any before an erasure goes line by line.
                    if batch.after_pending
                        || requests.iter().any(|r| r.stream_type != DataSubject::TYPE)
                    {
                        return Err(Stop::Fallback);
                    }
                    let mut decided = decide::<DataSubject, _>(
                        self.cache(),
                        at,
                        &lookups,
                        &envelope,
                        c,
                        &prepared,
                    )
                    .await;
                    if let Ok(Ok(request)) = &mut decided {
                        crate::subjects::keep_reason_categories(
                            self.journal(),
                            &mut request.events,
                        )
                        .await
                        .map_err(|e| Stop::Failed(journal_error(e)))?;
                    }
                    decided
                }
            }?;
            match result {
                Err(r) => {
                    refusals.push(RejectedCommand {
                        command_id: envelope.command_id.clone(),
                        command: envelope.command.clone(),
                        stream: format!(
                            "{}/{}",
                            prepared.command.target().0.as_str(),
                            prepared.aggregate_id
                        ),
                        code: r.code.as_str().to_owned(),
                        // Kept without the personal values it may quote; the report shows
                        // the message in full.
                        message: fieldtrail_domain::personal::redact(
                            &envelope.command,
                            &envelope.data,
                            &r.message,
                        ),
                    });
                    decided.push(Decided::Done(Outcome::rejected(id, r)));
                }
                Ok(request) => {
                    in_batch.insert(envelope.command_id.clone(), requests.len());
                    decided.push(Decided::Appending(requests.len()));
                    requests.push(request);
                }
            }
        }
        Ok(Pending {
            ids: ids.into_iter().collect(),
            decided,
            requests,
            refusals,
        })
    }
}

/// Which batch [`CommandHandler::prepare_batch`] decides, on which overlay.
#[derive(Clone, Copy)]
struct Batch<'a> {
    overlay: &'a Overlay,
    /// Its number in the import (the overlay's entries say which batch decided them).
    number: u64,
    /// Whether an earlier batch's append is still under way (an erasure, which reads the
    /// journal, then waits for it: the batch goes the ordinary way).
    after_pending: bool,
    /// The command ids of the batch whose append is under way: a line repeating one goes the
    /// ordinary way, once that append is done.
    pending_ids: Option<&'a HashSet<String>>,
}

/// A decided batch, before its append.
struct Pending {
    ids: HashSet<String>,
    decided: Vec<Decided>,
    requests: Vec<AppendRequest>,
    refusals: Vec<RejectedCommand>,
}

impl Pending {
    /// Each line's outcome, the append having given `positions` (one list per request).
    fn answers(self, positions: &[Vec<i64>]) -> Vec<Outcome> {
        let requests = &self.requests;
        let answer = |n: usize, applied: bool| {
            let r = &requests[n];
            let p = &positions[n];
            Outcome::from_ledger(
                AppendedCommand {
                    command_id: r.metadata.command_id.clone(),
                    stream: format!("{}/{}", r.stream_type, r.stream_id),
                    first_position: p.first().copied().unwrap_or(0),
                    last_position: p.last().copied().unwrap_or(0),
                },
                applied,
            )
        };
        self.decided
            .into_iter()
            .map(|d| match d {
                Decided::Done(outcome) => outcome,
                Decided::Appending(n) => answer(n, true),
                Decided::DuplicateOf(n) => answer(n, false),
            })
            .collect()
    }
}

/// Appends a decided batch in one transaction, then records its refusals. A version
/// conflict, a known command id or a held claim is [`Stop::Fallback`].
async fn append(
    journal: &fieldtrail_journal::Journal,
    pending: &Pending,
) -> Result<Vec<Vec<i64>>, Stop> {
    let positions = match journal.append_batch(&pending.requests).await {
        Ok(p) => p,
        // Another writer went first, or a claim is held (a rule across aggregates): the
        // line-by-line path answers each line as it would have alone.
        Err(
            JournalError::VersionConflict { .. }
            | JournalError::DuplicateCommand(_)
            | JournalError::ClaimHeld { .. },
        ) => return Err(Stop::Fallback),
        Err(e) => return Err(Stop::Failed(journal_error(e))),
    };
    // After the append: a refusal may rest on a line of this batch (the overlay's state).
    journal
        .record_rejections(&pending.refusals)
        .await
        .map_err(|e| Stop::Failed(journal_error(e)))?;
    Ok(positions)
}

/// Decides `command` against the overlay's state of its aggregate (loaded through the cache
/// when the batch has not touched it yet). On success, the new state goes into the overlay
/// and the events come back as the batch's next request; a rejection changes nothing.
async fn decide<A, C>(
    cache: &AggregateCache,
    (overlay, batch): (&Overlay, u64),
    lookups: &Arc<dyn Lookups>,
    envelope: &CommandEnvelope,
    command: &C,
    prepared: &Prepared,
) -> Result<Result<AppendRequest, Rejection>, Stop>
where
    A: Overlaid<Command = Stamped<C>>,
    A::Event: DomainEvent,
    C: Clone,
{
    let id = prepared.aggregate_id.as_str();
    // Taken out of the overlay (not cloned: a cohort's state grows with the batch) and put
    // back below; deciding reads other aggregates only, and changes nothing when it refuses.
    let taken = overlay
        .lock()
        .ok()
        .and_then(|mut entries| entries.remove(&(A::TYPE, id.to_owned())))
        .and_then(|(loaded, version, _)| A::take(loaded).map(|a| (a, version)));
    let (mut state, expected) = match taken {
        Some(found) => found,
        None => cache.load::<A>(id).await.map_err(journal_error)?,
    };
    let decided = decide_events(&mut state, envelope, command.clone(), lookups).await;
    let appended = match &decided {
        Ok(Ok(rows)) => rows.len(),
        _ => 0,
    };
    let version = expected + i64::try_from(appended).unwrap_or(i64::MAX);
    if let Ok(mut entries) = overlay.lock() {
        entries.insert((A::TYPE, id.to_owned()), (state.wrap(), version, batch));
    }
    let rows = match decided? {
        Ok(rows) if rows.is_empty() => return Err(Stop::Fallback),
        // A split starts a stream beside its own (one ledger row over two streams): the
        // line-by-line path appends it ([`crate::companion`]).
        Ok(rows) if !crate::companion::companions(A::TYPE, &rows)?.is_empty() => {
            return Err(Stop::Fallback)
        }
        Ok(rows) => rows,
        Err(r) => return Ok(Err(r)),
    };
    Ok(Ok(AppendRequest {
        stream_type: A::TYPE.to_owned(),
        stream_id: id.to_owned(),
        expected,
        events: rows,
        metadata: prepared.metadata.clone(),
    }))
}

/// Decides `command` (stamped with the envelope's `at`) on `state` through cqrs-es's
/// `Aggregate::handle`: on success `state` is the state after the new events, which come back
/// as journal rows `(event_type, event_version, payload without tag)`; a rejection changes
/// nothing. Shared by the bulk path and [`CommandHandler::handle_as`].
///
/// # Errors
/// [`HandleError::Unavailable`] when a look-up could not read the journal;
/// [`HandleError::Internal`] when an event does not serialize.
pub(crate) async fn decide_events<A, C>(
    state: &mut A,
    envelope: &CommandEnvelope,
    command: C,
    lookups: &Arc<dyn Lookups>,
) -> Result<Result<Vec<NewEvent>, Rejection>, HandleError>
where
    A: Aggregate<Command = Stamped<C>, Error = DecideError, Services = Arc<dyn Lookups>>,
    A::Event: DomainEvent,
{
    let sink = EventSink::<A>::default();
    let stamped = Stamped {
        at: fieldtrail_domain::command::to_micros(envelope.at),
        command,
    };
    match state.handle(stamped, lookups, &sink).await {
        Ok(()) => {}
        Err(DecideError::Rejected(r)) => return Ok(Err(r)),
        Err(DecideError::Lookup(m)) => return Err(HandleError::Unavailable(m)),
    }
    sink.collect()
        .await
        .iter()
        .map(|e| {
            let payload = serde_json::to_value(e)
                .map_err(|e| HandleError::Internal(format!("an event did not serialize: {e}")))?;
            Ok((
                e.event_type(),
                e.event_version(),
                fieldtrail_domain::event::strip_tag(payload),
            ))
        })
        .collect::<Result<Vec<NewEvent>, HandleError>>()
        .map(Ok)
}
