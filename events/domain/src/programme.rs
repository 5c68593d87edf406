//! The programme aggregate (stub, being written).

use crate::command::{ProgrammeCommand, Stamped};
use crate::error::{DecideError, Rejection};
use crate::event::ProgrammeEvent;
use crate::lookups::Lookups;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The programme aggregate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Programme {
    exists: bool,
}

impl Aggregate for Programme {
    const TYPE: &'static str = "programme";
    type Command = Stamped<ProgrammeCommand>;
    type Event = ProgrammeEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    async fn handle(&mut self, _command: Self::Command, _lookups: &Self::Services, _sink: &EventSink<Self>) -> Result<(), DecideError> {
        Err(Rejection::invalid("not written yet").into())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.exists = true;
    }
}
