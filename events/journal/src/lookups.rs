//! [`JournalLookups`]: the domain's look-ups across aggregates, answered from the journal.

use crate::{Journal, JournalError, StreamQuery};
use cqrs_es::{Aggregate, DomainEvent};
use fieldtrail_domain::{Cohort, FieldStudy, LookupError, Lookups, Programme};

/// Answers [`Lookups`] by loading and folding streams from the journal.
#[derive(Clone)]
pub struct JournalLookups {
    journal: Journal,
}

impl JournalLookups {
    /// Look-ups over `journal`.
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }

    /// Folds the stream `A::TYPE/id`; `None` when it has no events.
    async fn fold<A: Aggregate>(&self, id: &str) -> Result<Option<A>, JournalError>
    where
        A::Event: DomainEvent,
    {
        let events = self.journal.stream(A::TYPE, id, 0).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let mut aggregate = A::default();
        for stored in events {
            let event: A::Event = serde_json::from_value(stored.tagged_payload()).map_err(|e| {
                JournalError::Other(format!(
                    "{}/{} v{}: {e}",
                    stored.stream_type, stored.stream_id, stored.stream_version
                ))
            })?;
            aggregate.apply(event);
        }
        Ok(Some(aggregate))
    }
}

fn lookup_error(e: JournalError) -> LookupError {
    LookupError(e.to_string())
}

#[async_trait::async_trait]
impl Lookups for JournalLookups {
    async fn programme(&self, programme_id: &str) -> Result<Option<Programme>, LookupError> {
        self.fold(programme_id).await.map_err(lookup_error)
    }

    async fn cohort(&self, cohort_id: &str) -> Result<Option<Cohort>, LookupError> {
        self.fold(cohort_id).await.map_err(lookup_error)
    }

    async fn field_studies_of_cohort(
        &self,
        cohort_id: &str,
    ) -> Result<Vec<FieldStudy>, LookupError> {
        let ids = self
            .journal
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
