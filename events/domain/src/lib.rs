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
    AnyEvent, CohortEvent, DecodeError, FieldStudyEvent, ProgrammeEvent, StreamKind, SubjectEvent,
};
pub use field_study::FieldStudy;
pub use ids::Id;
pub use lookups::{LookupError, Lookups};
pub use programme::Programme;
pub use subject::DataSubject;
