//! The programme aggregate (stream `programme/<programme_id>`): the modules and units of the
//! certificate with their budgets in half-days. Defined once, never changed.

use crate::command::{DefineProgramme, ModulePlan, ProgrammeCommand, Stamped};
use crate::error::{DecideError, Rejection};
use crate::event::ProgrammeEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// The programme aggregate: its id, title and modules once `programme_defined` is applied;
/// empty ([`Programme::exists`] is `false`) before.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Programme {
    programme_id: Option<Id>,
    title: String,
    modules: Vec<ModulePlan>,
}

impl Programme {
    /// Whether the programme has been defined.
    pub fn exists(&self) -> bool {
        self.programme_id.is_some()
    }

    /// The programme's id; `None` before it is defined.
    pub fn programme_id(&self) -> Option<&Id> {
        self.programme_id.as_ref()
    }

    /// The programme's title (empty before it is defined).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The modules in programme order, each with its budget and its units' budgets in half-days.
    pub fn modules(&self) -> &[ModulePlan] {
        &self.modules
    }

    /// The module `module_id`, if the programme has it.
    pub fn module(&self, module_id: &str) -> Option<&ModulePlan> {
        self.modules.iter().find(|m| m.module_id == *module_id)
    }

    fn define(&self, c: DefineProgramme) -> Result<ProgrammeEvent, Rejection> {
        if let Some(id) = &self.programme_id {
            return Err(Rejection::already_exists(format!(
                "data.programme_id: programme {id} already exists"
            )));
        }
        let mut module_ids = HashSet::new();
        let mut unit_ids = HashSet::new();
        for (i, module) in c.modules.iter().enumerate() {
            if !module_ids.insert(&module.module_id) {
                return Err(Rejection::invalid(format!(
                    "data.modules[{i}].module_id: module {} appears twice in the programme",
                    module.module_id
                )));
            }
            for (j, unit) in module.units.iter().enumerate() {
                if !unit_ids.insert(&unit.unit_id) {
                    return Err(Rejection::invalid(format!(
                        "data.modules[{i}].units[{j}].unit_id: unit {} appears twice in the programme",
                        unit.unit_id
                    )));
                }
            }
            let units: u64 = module.units.iter().map(|u| u64::from(u.half_days)).sum();
            if units > u64::from(module.half_days) {
                return Err(Rejection::invalid(format!(
                    "data.modules[{i}].units: the units of module {} add up to {units} half-days, more than the module's {}",
                    module.module_id, module.half_days
                )));
            }
        }
        Ok(ProgrammeEvent::ProgrammeDefined {
            programme_id: c.programme_id,
            title: c.title,
            modules: c.modules,
        })
    }
}

impl Aggregate for Programme {
    const TYPE: &'static str = "programme";
    type Command = Stamped<ProgrammeCommand>;
    type Event = ProgrammeEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    /// Decides `define_programme`.
    ///
    /// Errors: `already_exists` when the programme is defined; `invalid` when a module's units
    /// add up to more half-days than the module, or a module or unit id appears twice.
    async fn handle(
        &mut self,
        command: Self::Command,
        _lookups: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DecideError> {
        let event = match command.command {
            ProgrammeCommand::DefineProgramme(c) => self.define(c)?,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProgrammeEvent::ProgrammeDefined {
                programme_id,
                title,
                modules,
            } => {
                self.programme_id = Some(programme_id);
                self.title = title;
                self.modules = modules;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::UnitPlan;
    use crate::testing::{at, check, id, InMemoryLookups, Then};
    use crate::Code;

    fn unit(unit_id: &str, half_days: u32) -> UnitPlan {
        UnitPlan {
            unit_id: id(unit_id),
            title: unit_id.to_owned(),
            half_days,
        }
    }

    fn module(module_id: &str, half_days: u32, units: Vec<UnitPlan>) -> ModulePlan {
        ModulePlan {
            module_id: id(module_id),
            title: module_id.to_owned(),
            half_days,
            units,
        }
    }

    fn define(modules: Vec<ModulePlan>) -> DefineProgramme {
        DefineProgramme {
            programme_id: id("p"),
            title: "P".to_owned(),
            modules,
        }
    }

    fn defined(modules: Vec<ModulePlan>) -> ProgrammeEvent {
        ProgrammeEvent::ProgrammeDefined {
            programme_id: id("p"),
            title: "P".to_owned(),
            modules,
        }
    }

    async fn case(
        name: &str,
        given: Vec<ProgrammeEvent>,
        when: DefineProgramme,
        then: Then<ProgrammeEvent>,
    ) {
        let command = Stamped {
            at: at("2024-09-01T10:00:00+02:00"),
            command: ProgrammeCommand::DefineProgramme(when),
        };
        check::<Programme>(
            InMemoryLookups::default().services(),
            name,
            given,
            command,
            then,
        )
        .await;
    }

    #[tokio::test]
    async fn define_programme_rules() {
        let plan = || {
            vec![
                module("m1", 4, vec![unit("m1-1", 2), unit("m1-2", 2)]),
                module("m2", 4, vec![]),
            ]
        };
        case(
            "defines",
            vec![],
            define(plan()),
            Then::Events(vec![defined(plan())]),
        )
        .await;
        case(
            "exists",
            vec![defined(plan())],
            define(plan()),
            Then::Rejected(Code::AlreadyExists, "programme p already exists"),
        )
        .await;
        case(
            "units over budget",
            vec![],
            define(vec![module("m1", 2, vec![unit("u", 3)])]),
            Then::Rejected(
                Code::Invalid,
                "data.modules[0].units: the units of module m1 add up to 3 half-days",
            ),
        )
        .await;
        case(
            "module twice",
            vec![],
            define(vec![module("m1", 2, vec![]), module("m1", 2, vec![])]),
            Then::Rejected(
                Code::Invalid,
                "data.modules[1].module_id: module m1 appears twice",
            ),
        )
        .await;
        case(
            "unit twice",
            vec![],
            define(vec![
                module("m1", 2, vec![unit("u", 1)]),
                module("m2", 2, vec![unit("u", 1)]),
            ]),
            Then::Rejected(
                Code::Invalid,
                "data.modules[1].units[0].unit_id: unit u appears twice",
            ),
        )
        .await;
    }

    #[test]
    fn accessors_read_the_definition() {
        let mut p = Programme::default();
        assert!(!p.exists());
        p.apply(defined(vec![module("m1", 4, vec![unit("m1-1", 2)])]));
        assert!(p.exists());
        assert_eq!(p.programme_id().map(Id::as_str), Some("p"));
        assert_eq!(p.title(), "P");
        assert_eq!(p.modules().len(), 1);
        assert_eq!(p.module("m1").map(|m| m.half_days), Some(4));
        assert!(p.module("m9").is_none());
    }
}
