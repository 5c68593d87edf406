//! [`JournalLookups`]: the domain's look-ups across aggregates, answered from the journal.

use crate::{JournalError, PgJournal};
use cqrs_es::{Aggregate, DomainEvent};
use fieldtrail_domain::{Cohort, FieldStudy, LookupError, Lookups, Programme};

/// Answers [`Lookups`] by loading and folding streams from the journal.
#[derive(Clone)]
pub struct JournalLookups {
    journal: PgJournal,
}

impl JournalLookups {
    /// Look-ups over `journal`.
    pub fn new(journal: PgJournal) -> Self {
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
        let ids: Vec<String> = {
            let client = self
                .journal
                .pool()
                .get()
                .await
                .map_err(|e| lookup_error(e.into()))?;
            client
                .query(
                    "SELECT stream_id FROM events
                     WHERE stream_type = 'field_study' AND event_type = 'field_study_formed'
                       AND payload ->> 'cohort_id' = $1
                     ORDER BY position",
                    &[&cohort_id],
                )
                .await
                .map_err(|e| lookup_error(e.into()))?
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        let mut studies = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(study) = self.fold::<FieldStudy>(&id).await.map_err(lookup_error)? {
                studies.push(study);
            }
        }
        Ok(studies)
    }
}
