//! The cohort aggregate (stub, being written).

use crate::command::{CohortCommand, Stamped};
use crate::error::{DecideError, Rejection};
use crate::event::CohortEvent;
use crate::lookups::Lookups;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The cohort aggregate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    exists: bool,
}

impl Aggregate for Cohort {
    const TYPE: &'static str = "cohort";
    type Command = Stamped<CohortCommand>;
    type Event = CohortEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    async fn handle(&mut self, _command: Self::Command, _lookups: &Self::Services, _sink: &EventSink<Self>) -> Result<(), DecideError> {
        Err(Rejection::invalid("not written yet").into())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.exists = true;
    }
}
/// A learner as the cohort knows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnerRecord;
/// A session as the cohort knows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord;
/// Where a session stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStatus {
    /// Scheduled.
    #[default]
    Scheduled,
}
