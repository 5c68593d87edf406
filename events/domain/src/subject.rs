//! The data subject aggregate (stream `subject/<subject_id>`): what became of a person's
//! personal data. Today one fact: its erasure (`erase_subject`), once.

use crate::command::{Stamped, SubjectCommand};
use crate::error::{DecideError, Rejection};
use crate::event::SubjectEvent;
use crate::lookups::Lookups;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A data subject: erased or not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSubject {
    erased: bool,
}

impl DataSubject {
    /// Whether the subject was erased.
    pub fn erased(&self) -> bool {
        self.erased
    }
}

impl Aggregate for DataSubject {
    const TYPE: &'static str = "subject";
    type Command = Stamped<SubjectCommand>;
    type Event = SubjectEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    /// Decides `erase_subject`.
    ///
    /// Errors: `conflict` when the subject was erased already; `not_found` when no personal
    /// datum of the subject was ever stored ([`Lookups::subject_known`]: a mistyped id must
    /// not be answered `applied`, nor erase a future subject of that id in advance). The
    /// subject id's form is checked when the command is parsed.
    async fn handle(
        &mut self,
        command: Self::Command,
        lookups: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DecideError> {
        let event = match command.command {
            SubjectCommand::EraseSubject(c) => {
                if self.erased {
                    return Err(Rejection::conflict(format!(
                        "data.subject_id: {} was erased already",
                        c.subject_id
                    ))
                    .into());
                }
                if !lookups.subject_known(&c.subject_id).await? {
                    return Err(Rejection::not_found(format!(
                        "data.subject_id: no personal data of {} is stored: nothing to erase (is the id right?)",
                        c.subject_id
                    ))
                    .into());
                }
                SubjectEvent::SubjectErased {
                    subject_id: c.subject_id,
                    reason: c.reason,
                    reason_categories: Vec::new(),
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SubjectEvent::SubjectErased { .. } => self.erased = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::EraseSubject;
    use crate::ids::Reason;
    use crate::testing::{at, check, InMemoryLookups, Then};
    use crate::Code;

    fn erased() -> SubjectEvent {
        SubjectEvent::SubjectErased {
            subject_id: "learner:l1".to_owned(),
            reason: Reason::try_from("demande du 3 mars".to_owned()).unwrap(),
            reason_categories: Vec::new(),
        }
    }

    async fn case(name: &str, given: Vec<SubjectEvent>, then: Then<SubjectEvent>) {
        let command = Stamped {
            at: at("2026-03-03T10:00:00+01:00"),
            command: SubjectCommand::EraseSubject(EraseSubject {
                subject_id: "learner:l1".to_owned(),
                reason: Reason::try_from("demande du 3 mars".to_owned()).unwrap(),
            }),
        };
        check::<DataSubject>(
            InMemoryLookups::default().services(),
            name,
            given,
            command,
            then,
        )
        .await;
    }

    #[tokio::test]
    async fn erase_subject_rules() {
        case("erases", vec![], Then::Events(vec![erased()])).await;
        case(
            "once",
            vec![erased()],
            Then::Rejected(Code::Conflict, "erased already"),
        )
        .await;
    }
}
