//! Loaded aggregates kept between commands, so that deciding a command does not replay its
//! whole stream (quadratic in a long field study): [`AggregateCache`] keeps the last state of
//! recently used aggregates with the stream version it reflects, and a load reads from the
//! journal only the events after that version (one indexed query; another server may have
//! appended). [`CachedEventStore`] is the cqrs-es `EventStore` over it.
//!
//! The state is exactly what a full replay gives: the cache holds the fold of versions
//! 1..=v, and a load folds v+1.. on top (a property test compares both). A commit that fails
//! (version conflict: another writer went first) evicts the entry, so the retry reloads.

use crate::{Journal, JournalError, StoredEvent};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, EventStore};
use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Aggregates kept by default (each a few KiB: a cohort with its sessions and attendance).
pub const DEFAULT_CAPACITY: usize = 4096;

type Entry = (Arc<dyn Any + Send + Sync>, i64);

/// Recently loaded aggregates of every type, by `(stream type, stream id)`, bounded by count
/// (least recently used first out). Cheap to clone (shared).
#[derive(Clone)]
pub struct AggregateCache {
    journal: Journal,
    entries: Arc<Mutex<lru::LruCache<(String, String), Entry>>>,
}

impl std::fmt::Debug for AggregateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateCache").finish_non_exhaustive()
    }
}

/// Folds `events` (in stream-version order) into `aggregate`; returns the last version.
///
/// # Errors
/// [`JournalError::Other`] naming the row that this build cannot read as `A::Event`.
pub fn fold_into<A: Aggregate + 'static>(
    aggregate: &mut A,
    mut version: i64,
    events: &[StoredEvent],
) -> Result<i64, JournalError> {
    for stored in events {
        let event: A::Event = serde_json::from_value(stored.tagged_payload()).map_err(|e| {
            JournalError::Other(format!(
                "{}/{} v{}: {e}",
                stored.stream_type, stored.stream_id, stored.stream_version
            ))
        })?;
        fieldtrail_domain::apply_recorded(aggregate, event, stored.occurred_at);
        version = stored.stream_version;
    }
    Ok(version)
}

impl AggregateCache {
    /// A cache over `journal` holding at most `capacity` aggregates (at least 1).
    pub fn new(journal: Journal, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            journal,
            entries: Arc::new(Mutex::new(lru::LruCache::new(capacity))),
        }
    }

    /// The journal it reads.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The kept state of `A::TYPE/id` and its stream version, without reading the journal
    /// (another writer may have appended since: an append on it fails its version check).
    pub fn cached<A: Aggregate + Clone + 'static>(&self, id: &str) -> Option<(A, i64)> {
        let mut entries = self.entries.lock().ok()?;
        let (state, version) = entries.get(&(A::TYPE.to_owned(), id.to_owned()))?;
        let state = state.downcast_ref::<A>()?.clone();
        Some((state, *version))
    }

    /// Keeps `aggregate` as the state of `A::TYPE/id` at stream version `version` (an older
    /// version than the one kept is ignored).
    pub fn store<A: Aggregate + Clone + 'static>(&self, id: &str, aggregate: A, version: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            let key = (A::TYPE.to_owned(), id.to_owned());
            if entries.peek(&key).is_some_and(|(_, v)| *v > version) {
                return;
            }
            entries.put(key, (Arc::new(aggregate), version));
        }
    }

    /// Forgets `stream_type/id`.
    pub fn evict(&self, stream_type: &str, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.pop(&(stream_type.to_owned(), id.to_owned()));
        }
    }

    /// Number of aggregates kept.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of `A::TYPE/id` and its stream version (0 and the default state when the
    /// stream has no event): the cached state with the events after its version folded on.
    ///
    /// # Errors
    /// When the journal fails or an event cannot be read as `A::Event`.
    pub async fn load<A>(&self, id: &str) -> Result<(A, i64), JournalError>
    where
        A: Aggregate + Clone + 'static,
        A::Event: DomainEvent,
    {
        let (mut aggregate, version) = self.cached::<A>(id).unwrap_or_default();
        let newer = self.journal.stream(A::TYPE, id, version).await?;
        if newer.is_empty() {
            return Ok((aggregate, version));
        }
        let version = fold_into(&mut aggregate, version, &newer)?;
        self.store(id, aggregate.clone(), version);
        Ok((aggregate, version))
    }
}

/// The cqrs-es `EventStore` over an [`AggregateCache`]: loads through the cache, commits
/// through cqrs-es's `PersistedEventStore` on the [`Journal`] (expected version, ledger), then
/// keeps the new state; a failed commit evicts.
pub struct CachedEventStore<A: Aggregate> {
    cache: AggregateCache,
    inner: PersistedEventStore<Journal, A>,
}

impl<A: Aggregate> CachedEventStore<A> {
    /// A store over `cache`.
    pub fn new(cache: AggregateCache) -> Self {
        let inner = PersistedEventStore::new_event_store(cache.journal().clone());
        Self { cache, inner }
    }
}

fn aggregate_error<E: std::error::Error>(e: JournalError) -> AggregateError<E> {
    match e {
        JournalError::VersionConflict { .. } => AggregateError::AggregateConflict,
        e if e.is_unavailable() => AggregateError::DatabaseConnectionError(Box::new(e)),
        e => AggregateError::UnexpectedError(Box::new(e)),
    }
}

impl<A> EventStore<A> for CachedEventStore<A>
where
    A: Aggregate + Clone + 'static,
    A::Event: DomainEvent,
{
    type AC = cqrs_es::persist::EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.inner.load_events(aggregate_id).await
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Self::AC, AggregateError<A::Error>> {
        let (aggregate, version) = self
            .cache
            .load::<A>(aggregate_id)
            .await
            .map_err(aggregate_error)?;
        Ok(cqrs_es::persist::EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate,
            current_sequence: usize::try_from(version).unwrap_or(0),
            current_snapshot: None,
        })
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let id = context.aggregate_id.clone();
        // cqrs-es's `EventSink::write` has applied the new events to the context's aggregate
        // while the command was decided: it is already the state after them.
        let next = context.aggregate.clone();
        match self.inner.commit(events, context, metadata).await {
            Ok(committed) => {
                if let Some(last) = committed.last() {
                    let version = i64::try_from(last.sequence).unwrap_or(i64::MAX);
                    self.cache.store(&id, next, version);
                }
                Ok(committed)
            }
            Err(e) => {
                self.cache.evict(A::TYPE, &id);
                Err(e)
            }
        }
    }
}
