//! The one door from an aggregate to another: read-only look-ups, implemented by the journal.

use crate::{Cohort, FieldStudy, Programme};

/// A technical failure of a look-up (the journal could not be read). Not a rejection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Read-only access to other aggregates' current state, as cqrs-es `Services`.
///
/// The journal crate implements it by loading the streams from Postgres; tests implement it in
/// memory. Each method returns `Ok(None)` / an empty list when nothing exists.
#[async_trait::async_trait]
pub trait Lookups: Send + Sync {
    /// The programme `programme_id`, as folded from its stream.
    async fn programme(&self, programme_id: &str) -> Result<Option<Programme>, LookupError>;
    /// The cohort `cohort_id`, as folded from its stream.
    async fn cohort(&self, cohort_id: &str) -> Result<Option<Cohort>, LookupError>;
    /// The field study `field_study_id` (of any cohort), as folded from its stream.
    async fn field_study(&self, field_study_id: &str) -> Result<Option<FieldStudy>, LookupError>;
    /// Every field study formed in `cohort_id`, as folded from their streams.
    async fn field_studies_of_cohort(
        &self,
        cohort_id: &str,
    ) -> Result<Vec<FieldStudy>, LookupError>;
    /// Whether personal data of `subject_id` (`learner:<id>`, `field_study:<id>`, ...) was
    /// ever stored: the key table has a row for it (erased or not). The default (in-memory
    /// look-ups) knows every subject.
    async fn subject_known(&self, subject_id: &str) -> Result<bool, LookupError> {
        let _ = subject_id;
        Ok(true)
    }
}
