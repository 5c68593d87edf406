//! fieldtrail's published language and write-side rules.
//!
//! This crate holds the commands (what staff, facilitators and juries ask for), the events (the
//! facts that are kept for ever), and the cqrs-es aggregates that decide one from the other:
//! [`Programme`], [`Cohort`] and [`FieldStudy`]. It does no I/O: look-ups across aggregates go
//! through the [`Lookups`] service that the journal crate implements.
//!
//! The contract is `shared/scenarios/FORMAT.md` (the command vocabulary, the rejection codes);
//! the rules come from the certificate programme (four modules, field study in groups of 3 to 4,
//! defence before a jury with a professional and a training-centre member).

pub mod claims;
pub mod command;
pub mod error;
pub mod event;
pub mod ids;
pub mod lookups;
pub mod personal;
pub mod schema;
pub mod upcast;

#[cfg(test)]
mod decoder_props;

mod cohort;
mod field_study;
mod programme;
mod subject;
#[cfg(test)]
mod testing;

pub use cohort::{Cohort, LearnerRecord, SessionRecord, SessionStatus};
pub use command::{Command, CommandEnvelope, Stamped, StreamType};
pub use error::{Code, DecideError, Rejection};
pub use event::{
    AnyEvent, CohortEvent, DecodeError, ErasedReasonCategory, FieldStudyEvent, ProgrammeEvent,
    StreamKind, SubjectEvent,
};
pub use field_study::FieldStudy;
pub use ids::Id;
pub use lookups::{LookupError, Lookups};
pub use programme::Programme;

/// Folds one event, which happened at `occurred_at` (its envelope's time, UTC), into
/// `aggregate` as a replay from the journal does: [`cqrs_es::Aggregate::apply`], and where a
/// rule needs the event's time, that too (a cohort keeps when each complaint was filed:
/// [`Cohort::apply_at`]). cqrs-es's `apply` sees the event alone.
pub fn apply_recorded<A>(
    aggregate: &mut A,
    event: A::Event,
    occurred_at: chrono::DateTime<chrono::Utc>,
) where
    A: cqrs_es::Aggregate + 'static,
    A::Event: 'static,
{
    use std::any::Any;
    let mut event = Some(event);
    if let Some(cohort) = (aggregate as &mut dyn Any).downcast_mut::<Cohort>() {
        if let Some(e) = (&mut event as &mut dyn Any)
            .downcast_mut::<Option<CohortEvent>>()
            .and_then(Option::take)
        {
            cohort.apply_at(e, occurred_at);
        }
        return;
    }
    if let Some(e) = event {
        aggregate.apply(e);
    }
}
pub use subject::DataSubject;
