//! The field study aggregate (stream `field_study/<field_study_id>`): a group of 3 to 4 learners
//! answering an organisation's commission, from the commission to the defence.
//!
//! `mod.rs` holds the state and how events fold into it; `decide.rs` dispatches the commands and
//! holds the rules of the commission, hypotheses, notes and productions; `members.rs` those of
//! the group (formation, changes, split), `defence.rs` those of the defences (and rectified
//! results), `jury.rs` those of a defence's jury (recusal, appointment).

mod decide;
mod defence;
mod jury;
mod members;
#[cfg(test)]
mod tests;

use crate::command::{
    DefenceResult, FieldStudyCommand, JuryMember, JuryRole, Organisation, Stamped,
};
use crate::error::DecideError;
use crate::event::FieldStudyEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use chrono::{DateTime, FixedOffset};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The field study aggregate: its cohort, members, commission versions, hypotheses, notes,
/// productions and defences. Empty ([`FieldStudy::exists`] is `false`) before
/// `field_study_formed`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldStudy {
    field_study_id: Option<Id>,
    cohort_id: Option<Id>,
    organisation: Option<Organisation>,
    /// The study it split from, if it came from a split.
    split_from: Option<Id>,
    members: Vec<Id>,
    ever_members: Vec<Id>,
    /// Latest commission version; 0 while there is none.
    commission_version: u32,
    agreed_version: Option<u32>,
    hypotheses: Vec<Hypothesis>,
    interventions: Vec<Id>,
    notes: Vec<Id>,
    /// Latest production version; 0 while there is none.
    production_version: u32,
    defences: Vec<Defence>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Hypothesis {
    hypothesis_id: Id,
    abandoned: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Defence {
    defence_id: Id,
    at: DateTime<FixedOffset>,
    /// The jury as scheduled, then appointed members appended; recused ones stay, marked.
    jury: Vec<JurySeat>,
    /// In the order recorded, each with the result in force (after rectifications); empty
    /// until the defence is recorded.
    outcomes: Vec<(Id, DefenceResult)>,
    /// Whether it was cancelled (`defence_cancelled`): it will record no outcome.
    #[serde(default)]
    cancelled: bool,
}

/// A member of a defence's jury.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct JurySeat {
    name: String,
    role: JuryRole,
    recused: bool,
}

impl Defence {
    fn is_recorded(&self) -> bool {
        !self.outcomes.is_empty()
    }

    /// Whether it is over: recorded or cancelled. A defence still open holds back a split and
    /// the next defence.
    fn is_closed(&self) -> bool {
        self.cancelled || self.is_recorded()
    }

    /// Whether `name` sits on the jury (is on it and not recused).
    fn sits(&self, name: &str) -> bool {
        self.jury.iter().any(|s| s.name == name && !s.recused)
    }

    /// The first role the sitting jury lacks (`professional`, then `training_centre`), if any.
    fn missing_role(&self) -> Option<&'static str> {
        [
            (JuryRole::Professional, "professional"),
            (JuryRole::TrainingCentre, "training_centre"),
        ]
        .into_iter()
        .find(|(role, _)| !self.jury.iter().any(|s| s.role == *role && !s.recused))
        .map(|(_, name)| name)
    }

    /// The result in force for `learner_id` at this defence, if it recorded one for them.
    fn result_of(&self, learner_id: &str) -> Option<DefenceResult> {
        self.outcomes
            .iter()
            .rev()
            .find(|(l, _)| *l == *learner_id)
            .map(|(_, r)| *r)
    }
}

impl FieldStudy {
    /// Whether the field study has been formed.
    pub fn exists(&self) -> bool {
        self.field_study_id.is_some()
    }

    /// The field study's id; `None` before it is formed.
    pub fn field_study_id(&self) -> Option<&Id> {
        self.field_study_id.as_ref()
    }

    /// The cohort its members belong to; `None` before it is formed.
    pub fn cohort_id(&self) -> Option<&Id> {
        self.cohort_id.as_ref()
    }

    /// The commissioning organisation; `None` before it is formed.
    pub fn organisation(&self) -> Option<&Organisation> {
        self.organisation.as_ref()
    }

    /// The field study this one split from, if it came from a split.
    pub fn split_from(&self) -> Option<&Id> {
        self.split_from.as_ref()
    }

    /// The current members: those it was formed with, minus leavers, plus joiners appended.
    pub fn members(&self) -> &[Id] {
        &self.members
    }

    /// Whether `learner_id` is a member now.
    pub fn is_member(&self, learner_id: &str) -> bool {
        self.members.iter().any(|m| *m == *learner_id)
    }

    /// Whether `learner_id` is or ever was a member.
    pub fn was_member(&self, learner_id: &str) -> bool {
        self.ever_members.iter().any(|m| *m == *learner_id)
    }

    /// The latest commission version (1, 2, ...); `None` while there is no commission.
    pub fn commission_version(&self) -> Option<u32> {
        (self.commission_version > 0).then_some(self.commission_version)
    }

    /// The latest commission version that was agreed, if any (it may be older than
    /// [`FieldStudy::commission_version`] after a renegotiation).
    pub fn agreed_commission_version(&self) -> Option<u32> {
        self.agreed_version
    }

    /// The latest version of the written production (1, 2, ...); `None` before the first.
    pub fn production_version(&self) -> Option<u32> {
        (self.production_version > 0).then_some(self.production_version)
    }

    /// The result of the last defence outcome recorded for `learner_id` in this study; `None`
    /// when none was recorded for them.
    pub fn latest_defence_result(&self, learner_id: &str) -> Option<DefenceResult> {
        self.latest_defence_outcome(learner_id)
            .map(|(_, result)| result)
    }

    /// A learner's latest defence result among the field studies of their cohort, as the
    /// certificate rule reads it: in the study the learner belongs to now, if any; otherwise in
    /// the studies they belonged to, the outcome of the latest-scheduled defence that recorded
    /// one for them. `None` when there is none.
    ///
    /// A study that came from a split (`split_from`) and has no result for the learner yet
    /// reads as the studies they belonged to before: the split does not erase an earlier result.
    /// Rectified results count as the result at their defence.
    pub fn latest_result_among(studies: &[FieldStudy], learner_id: &str) -> Option<DefenceResult> {
        if let Some(current) = studies.iter().find(|s| s.is_member(learner_id)) {
            let here = current.latest_defence_result(learner_id);
            if here.is_some() || current.split_from.is_none() {
                return here;
            }
        }
        studies
            .iter()
            .filter(|s| s.was_member(learner_id))
            .filter_map(|s| s.latest_defence_outcome(learner_id))
            .max_by_key(|(at, _)| *at)
            .map(|(_, result)| result)
    }

    /// The scheduled time and result of the last defence that recorded an outcome for `learner_id`.
    fn latest_defence_outcome(
        &self,
        learner_id: &str,
    ) -> Option<(DateTime<FixedOffset>, DefenceResult)> {
        self.defences.iter().rev().find_map(|d| {
            d.outcomes
                .iter()
                .rev()
                .find(|(l, _)| *l == *learner_id)
                .map(|(_, r)| (d.at, *r))
        })
    }

    fn hypothesis(&self, hypothesis_id: &Id) -> Option<&Hypothesis> {
        self.hypotheses
            .iter()
            .find(|h| h.hypothesis_id == *hypothesis_id)
    }

    fn defence(&self, defence_id: &Id) -> Option<(usize, &Defence)> {
        self.defences
            .iter()
            .enumerate()
            .find(|(_, d)| d.defence_id == *defence_id)
    }

    fn defence_mut(&mut self, defence_id: &Id) -> Option<&mut Defence> {
        self.defences
            .iter_mut()
            .find(|d| d.defence_id == *defence_id)
    }

    fn record_outcome(&mut self, defence_id: &Id, learner_id: Id, result: DefenceResult) {
        if let Some(d) = self.defence_mut(defence_id) {
            d.outcomes.push((learner_id, result));
        }
    }

    fn rectify_outcome(&mut self, defence_id: &Id, learner_id: &Id, result: DefenceResult) {
        if let Some(d) = self.defence_mut(defence_id) {
            if let Some(entry) = d.outcomes.iter_mut().find(|(l, _)| l == learner_id) {
                entry.1 = result;
            }
        }
    }

    fn seat(&mut self, defence_id: &Id, name: String, role: JuryRole) {
        if let Some(d) = self.defence_mut(defence_id) {
            match d.jury.iter_mut().find(|s| s.name == name && s.recused) {
                Some(seat) => {
                    seat.role = role;
                    seat.recused = false;
                }
                None => d.jury.push(JurySeat {
                    name,
                    role,
                    recused: false,
                }),
            }
        }
    }

    fn recuse(&mut self, defence_id: &Id, name: &str) {
        if let Some(d) = self.defence_mut(defence_id) {
            for seat in d.jury.iter_mut().filter(|s| s.name == name) {
                seat.recused = true;
            }
        }
    }

    fn remember_members(&mut self) {
        for m in &self.members {
            if !self.ever_members.contains(m) {
                self.ever_members.push(m.clone());
            }
        }
    }
}

impl Aggregate for FieldStudy {
    const TYPE: &'static str = "field_study";
    type Command = Stamped<FieldStudyCommand>;
    type Event = FieldStudyEvent;
    type Error = DecideError;
    type Services = Arc<dyn Lookups>;

    /// Decides a field study command (see `decide.rs`); emits nothing when it is refused, and one
    /// event per outcome for `record_defence`.
    ///
    /// Errors: [`DecideError::Rejected`] with the FORMAT.md code; [`DecideError::Lookup`] when the
    /// cohort or its field studies could not be read.
    async fn handle(
        &mut self,
        command: Self::Command,
        lookups: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), DecideError> {
        let events = self.decide(command, lookups.as_ref()).await?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use FieldStudyEvent as E;
        match event {
            E::FieldStudyFormed {
                field_study_id,
                cohort_id,
                members,
                organisation,
                split_from,
            } => {
                self.field_study_id = Some(field_study_id);
                self.cohort_id = Some(cohort_id);
                self.organisation = Some(organisation);
                self.split_from = split_from;
                self.members = members;
                self.remember_members();
            }
            E::MembersChanged { members, .. }
            | E::FieldStudySplit {
                remaining: members, ..
            } => {
                self.members = members;
                self.remember_members();
            }
            E::CommissionNegotiated { version, .. } | E::CommissionRenegotiated { version, .. } => {
                self.commission_version = version;
            }
            E::CommissionAgreed { version, .. } => self.agreed_version = Some(version),
            E::HypothesisStated { hypothesis_id, .. } => {
                self.hypotheses.push(Hypothesis {
                    hypothesis_id,
                    abandoned: false,
                });
            }
            E::HypothesisRevised { .. } => {}
            E::HypothesisAbandoned { hypothesis_id, .. } => {
                if let Some(h) = self
                    .hypotheses
                    .iter_mut()
                    .find(|h| h.hypothesis_id == hypothesis_id)
                {
                    h.abandoned = true;
                }
            }
            E::InterventionLogged {
                intervention_id, ..
            } => self.interventions.push(intervention_id),
            E::ReflexiveNoteRecorded { note_id, .. } => self.notes.push(note_id),
            E::ProductionSubmitted { version, .. } => self.production_version = version,
            E::DefenceScheduled {
                defence_id,
                at,
                jury,
                ..
            } => {
                let jury = jury
                    .into_iter()
                    .map(|JuryMember { name, role }| JurySeat {
                        name,
                        role,
                        recused: false,
                    })
                    .collect();
                self.defences.push(Defence {
                    defence_id,
                    at,
                    jury,
                    outcomes: Vec::new(),
                    cancelled: false,
                });
            }
            E::JuryMemberRecused {
                defence_id, name, ..
            } => self.recuse(&defence_id, &name),
            E::JuryMemberAppointed {
                defence_id,
                name,
                role,
                ..
            } => self.seat(&defence_id, name, role),
            E::DefenceResultRectified {
                defence_id,
                learner_id,
                result,
                ..
            } => self.rectify_outcome(&defence_id, &learner_id, result),
            E::DefenceCancelled { defence_id, .. } => {
                if let Some(d) = self.defence_mut(&defence_id) {
                    d.cancelled = true;
                }
            }
            E::DefencePassed {
                defence_id,
                learner_id,
                ..
            } => {
                self.record_outcome(&defence_id, learner_id, DefenceResult::Passed);
            }
            E::DefenceDeferred {
                defence_id,
                learner_id,
                ..
            } => {
                self.record_outcome(&defence_id, learner_id, DefenceResult::Deferred);
            }
            E::DefenceFailed {
                defence_id,
                learner_id,
                ..
            } => {
                self.record_outcome(&defence_id, learner_id, DefenceResult::Failed);
            }
        }
    }
}
