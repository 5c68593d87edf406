//! The field_study aggregate (stub, being written).

use crate::command::{FieldStudyCommand, Stamped};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::lookups::Lookups;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The field_study aggregate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldStudy {
    exists: bool,
}

impl Aggregate for FieldStudy {
    const TYPE: &'static str = "field_study";
    type Command = Stamped<FieldStudyCommand>;
    type Event = FieldStudyEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    async fn handle(&mut self, _command: Self::Command, _lookups: &Self::Services, _sink: &EventSink<Self>) -> Result<(), DecideError> {
        Err(Rejection::invalid("not written yet").into())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.exists = true;
    }
}
