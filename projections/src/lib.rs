//! fieldtrail's read models, written as pure folds over the global log.
//!
//! [`ReadModels`] is the whole in-memory state of the projections. It changes only through
//! [`ReadModels::apply`], one [`RecordedEvent`] at a time, in global-log order; it does no I/O.
//! Every document is therefore a function of the events seen so far: a rebuild from position
//! zero gives the same documents as live processing, and an `as_of` answer is the fold of the
//! events up to that point ([`ReadModels::fold`]).
//!
//! Four documents come out of it, with the JSON shapes of `shared/scenarios/FORMAT.md`
//! ("Read models" and "Second vocabulary: the harder paths"):
//!
//! - [`Timetable`] of a cohort, keyed by the cohort id;
//! - [`Transcript`] of a learner in a cohort, keyed by `cohort_id/learner_id`;
//! - [`History`] of a field study (its evaluation history), keyed by the field study id;
//! - [`ComplaintsRegister`] of a cohort, keyed by the cohort id.
//!
//! Units and clocks: every budget and count is in **half-days**. Instants are shown in UTC as
//! RFC 3339 with the `Z` suffix and at most microsecond precision (`2025-09-15T07:00:00Z`);
//! the timetable also shows each start as Europe/Paris wall time without offset
//! (`2025-09-15T09:00:00`), and a certificate's date is its Europe/Paris calendar date.
//!
//! An event that refers to something the fold has not seen (an unknown cohort, session,
//! learner, field study or hypothesis) changes nothing; no input makes the fold panic.

mod cohort;
mod complaints;
mod history;
pub mod holidays;
mod models;
mod recorded;
mod resident;
mod summary;
mod time;
mod timetable;
mod transcript;

#[cfg(test)]
mod tests;

pub use complaints::{ComplaintEntry, ComplaintStatus, ComplaintsRegister};
pub use history::{
    Commission, CommissionVersion, History, HistoryEntry, HypothesisStatus, HypothesisTrail,
    Production, SplitInto,
};
pub use models::{DocKey, DocKind, Home, ReadModels};

pub mod asof;
pub mod attendance;
pub mod formats;
pub mod runner;
pub mod store;
pub mod trajectory;
pub use recorded::RecordedEvent;
pub use timetable::{PreviousSlot, SessionStatus, Timetable, TimetableModule, TimetableSession};
pub use transcript::{DefenceEntry, LearnerStatus, Transcript, TranscriptModule};
