//! [`JournalLookups`]: the domain's look-ups across aggregates, answered from the journal
//! through the aggregate cache.

use crate::{AggregateCache, JournalError, StreamQuery};
use cqrs_es::{Aggregate, DomainEvent};
use fieldtrail_domain::{Cohort, FieldStudy, LookupError, Lookups, Programme};

/// Answers [`Lookups`] by loading aggregates through the [`AggregateCache`] (the stream's
/// events after the cached version are read from the journal).
#[derive(Clone)]
pub struct JournalLookups {
    cache: AggregateCache,
}

impl JournalLookups {
    /// Look-ups through `cache`.
    pub fn new(cache: AggregateCache) -> Self {
        Self { cache }
    }

    /// The state of `A::TYPE/id`; `None` when it has no events.
    async fn fold<A>(&self, id: &str) -> Result<Option<A>, JournalError>
    where
        A: Aggregate + Clone + 'static,
        A::Event: DomainEvent,
    {
        let (aggregate, version) = self.cache.load::<A>(id).await?;
        Ok((version > 0).then_some(aggregate))
    }
}

fn lookup_error(e: JournalError) -> LookupError {
    LookupError(e.to_string())
}

#[async_trait::async_trait]
impl Lookups for JournalLookups {
    async fn subject_known(&self, subject_id: &str) -> Result<bool, LookupError> {
        let rows = self
            .cache
            .journal()
            .subject_keys(&[subject_id.to_owned()])
            .await
            .map_err(lookup_error)?;
        Ok(!rows.is_empty())
    }

    async fn programme(&self, programme_id: &str) -> Result<Option<Programme>, LookupError> {
        self.fold(programme_id).await.map_err(lookup_error)
    }

    async fn cohort(&self, cohort_id: &str) -> Result<Option<Cohort>, LookupError> {
        self.fold(cohort_id).await.map_err(lookup_error)
    }

    async fn field_study(&self, field_study_id: &str) -> Result<Option<FieldStudy>, LookupError> {
        self.fold(field_study_id).await.map_err(lookup_error)
    }

    async fn field_studies_of_cohort(
        &self,
        cohort_id: &str,
    ) -> Result<Vec<FieldStudy>, LookupError> {
        let ids = self
            .cache
            .journal()
            .find_streams(StreamQuery::FieldStudiesOf { cohort_id })
            .await
            .map_err(lookup_error)?;
        let mut studies = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(study) = self.fold::<FieldStudy>(&id).await.map_err(lookup_error)? {
                studies.push(study);
            }
        }
        Ok(studies)
    }
}
