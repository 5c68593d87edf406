//! Test support: an in-memory [`Lookups`] and a given/when/then helper over cqrs-es's
//! `TestFramework`, so that each rule is one line of a table.

use crate::error::{Code, DecideError};
use crate::ids::{Id, Reason};
use crate::lookups::{LookupError, Lookups};
use crate::{Cohort, CohortEvent, FieldStudy, FieldStudyEvent, Programme, ProgrammeEvent};
use chrono::{DateTime, FixedOffset};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use std::fmt::Debug;
use std::sync::Arc;

/// An id from a literal known to be valid.
pub(crate) fn id(s: &str) -> Id {
    Id::parse(s).expect("test ids are valid")
}

/// A reason from a literal known to be non-empty.
pub(crate) fn reason(s: &str) -> Reason {
    Reason::try_from(s.to_owned()).expect("test reasons are not empty")
}

/// A time from an RFC 3339 literal.
pub(crate) fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("test times are RFC 3339")
}

/// Ids from literals.
pub(crate) fn ids(s: &[&str]) -> Vec<Id> {
    s.iter().map(|s| id(s)).collect()
}

fn fold<A: Aggregate>(events: Vec<A::Event>) -> A {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(event);
    }
    aggregate
}

/// Other aggregates' state, each folded from its events.
#[derive(Default)]
pub(crate) struct InMemoryLookups {
    programmes: Vec<Programme>,
    cohorts: Vec<Cohort>,
    field_studies: Vec<FieldStudy>,
}

impl InMemoryLookups {
    /// Adds the programme folded from `events`.
    pub(crate) fn programme(mut self, events: Vec<ProgrammeEvent>) -> Self {
        self.programmes.push(fold(events));
        self
    }

    /// Adds the cohort folded from `events`.
    pub(crate) fn cohort(mut self, events: Vec<CohortEvent>) -> Self {
        self.cohorts.push(fold(events));
        self
    }

    /// Adds the field study folded from `events`.
    pub(crate) fn field_study(mut self, events: Vec<FieldStudyEvent>) -> Self {
        self.field_studies.push(fold(events));
        self
    }

    /// As the aggregates' `Services`.
    pub(crate) fn services(self) -> Arc<dyn Lookups> {
        Arc::new(self)
    }
}

#[async_trait::async_trait]
impl Lookups for InMemoryLookups {
    async fn programme(&self, programme_id: &str) -> Result<Option<Programme>, LookupError> {
        Ok(self
            .programmes
            .iter()
            .find(|p| p.programme_id().is_some_and(|i| i == programme_id))
            .cloned())
    }

    async fn cohort(&self, cohort_id: &str) -> Result<Option<Cohort>, LookupError> {
        Ok(self
            .cohorts
            .iter()
            .find(|c| c.cohort_id().is_some_and(|i| i == cohort_id))
            .cloned())
    }

    async fn field_study(&self, field_study_id: &str) -> Result<Option<FieldStudy>, LookupError> {
        Ok(self
            .field_studies
            .iter()
            .find(|f| f.field_study_id().is_some_and(|i| i == field_study_id))
            .cloned())
    }

    async fn field_studies_of_cohort(
        &self,
        cohort_id: &str,
    ) -> Result<Vec<FieldStudy>, LookupError> {
        Ok(self
            .field_studies
            .iter()
            .filter(|f| f.cohort_id().is_some_and(|i| i == cohort_id))
            .cloned()
            .collect())
    }
}

/// What a case expects: these events, or a rejection with this code whose message contains
/// this text.
pub(crate) enum Then<E> {
    Events(Vec<E>),
    Rejected(Code, &'static str),
}

/// Given `given`, when `when`, then `then`; `name` identifies the case in a failure.
pub(crate) async fn check<A>(
    services: Arc<dyn Lookups>,
    name: &str,
    given: Vec<A::Event>,
    when: A::Command,
    then: Then<A::Event>,
) where
    A: Aggregate<Services = Arc<dyn Lookups>, Error = DecideError>,
    A::Event: PartialEq + Debug,
{
    let result = TestFramework::<A>::with(services)
        .given(given)
        .when_async(when)
        .await
        .inspect_result();
    match (result, then) {
        (Ok(events), Then::Events(expected)) => assert_eq!(events, expected, "case {name:?}"),
        (Err(DecideError::Rejected(r)), Then::Rejected(code, needle)) => {
            assert_eq!(r.code, code, "case {name:?}: {}", r.message);
            assert!(
                r.message.contains(needle),
                "case {name:?}: {:?} lacks {needle:?}",
                r.message
            );
        }
        (Ok(events), Then::Rejected(code, _)) => {
            panic!("case {name:?}: expected {code}, got events {events:?}")
        }
        (Err(e), Then::Events(_)) => panic!("case {name:?}: expected events, got {e}"),
        (Err(e), Then::Rejected(code, _)) => panic!("case {name:?}: expected {code}, got {e}"),
    }
}
