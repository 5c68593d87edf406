//! The defences: `schedule_defence` and `record_defence`. The first defence is due for every
//! current member; each later one only for those `deferred` at the one before.

use super::decide::conflict;
use super::FieldStudy;
use crate::command::{JuryRole, RecordDefence, ScheduleDefence};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::ids::Id;
use chrono::{DateTime, FixedOffset};
use std::collections::HashSet;

impl FieldStudy {
    /// `schedule_defence`: `conflict` for a defence id already scheduled and still without
    /// outcome (the defence exists and is not closed; re-sending the very same command, same
    /// command id, is an idempotent replay answered before this: `duplicate`);
    /// `already_exists` for the id of a defence already closed; `invalid` when the jury lacks a
    /// `professional` or a `training_centre`; `conflict` with no production, an earlier defence
    /// without outcome, or a previous defence that left nobody `deferred`.
    pub(super) fn schedule_defence(
        &self,
        c: ScheduleDefence,
    ) -> Result<FieldStudyEvent, DecideError> {
        if let Some((_, known)) = self.defence(&c.defence_id) {
            if !known.is_recorded() {
                return Err(conflict(format!(
                    "data.defence_id: defence {} is already scheduled and has no outcome yet",
                    c.defence_id
                )));
            }
            return Err(Rejection::already_exists(format!(
                "data.defence_id: defence {} already exists (it is closed)",
                c.defence_id
            ))
            .into());
        }
        for (role, name) in [
            (JuryRole::Professional, "professional"),
            (JuryRole::TrainingCentre, "training_centre"),
        ] {
            if !c.jury.iter().any(|m| m.role == role) {
                return Err(Rejection::invalid(format!(
                    "data.jury: a jury needs at least one {name} member"
                ))
                .into());
            }
        }
        if self.production_version == 0 {
            return Err(conflict(
                "no production has been submitted yet: there is nothing to defend".to_owned(),
            ));
        }
        if let Some(previous) = self.defences.last() {
            if !previous.is_recorded() {
                return Err(conflict(format!(
                    "defence {} is still without outcome",
                    previous.defence_id
                )));
            }
            if previous.deferred().next().is_none() {
                return Err(conflict(format!(
                    "defence {} left nobody deferred: no further defence is due",
                    previous.defence_id
                )));
            }
        }
        Ok(FieldStudyEvent::DefenceScheduled {
            field_study_id: c.field_study_id,
            defence_id: c.defence_id,
            at: c.at,
            jury: c.jury,
        })
    }

    /// `record_defence` (stamped `at`): `not_found` for an unknown defence; `conflict` when it is
    /// already recorded; `invalid` unless the outcomes name each learner due exactly once;
    /// `conflict` when `at` is before the defence's time. One event per outcome, in order.
    pub(super) fn record_defence(
        &self,
        c: RecordDefence,
        at: DateTime<FixedOffset>,
    ) -> Result<Vec<FieldStudyEvent>, Rejection> {
        let Some((index, defence)) = self.defence(&c.defence_id) else {
            return Err(Rejection::not_found(format!(
                "data.defence_id: defence {} does not exist in field study {}",
                c.defence_id, c.field_study_id
            )));
        };
        if defence.is_recorded() {
            return Err(Rejection::conflict(format!(
                "defence {} is already recorded",
                c.defence_id
            )));
        }
        let due: Vec<&Id> = match index.checked_sub(1).and_then(|i| self.defences.get(i)) {
            None => self.members.iter().collect(),
            Some(previous) => previous.deferred().collect(),
        };
        let mut named = HashSet::new();
        for (i, outcome) in c.outcomes.iter().enumerate() {
            let learner_id = &outcome.learner_id;
            if !named.insert(learner_id) {
                return Err(Rejection::invalid(format!(
                    "data.outcomes[{i}].learner_id: learner {learner_id} is named twice"
                )));
            }
            if !due.contains(&learner_id) {
                return Err(Rejection::invalid(format!(
                    "data.outcomes[{i}].learner_id: learner {learner_id} is not due at defence {}",
                    c.defence_id
                )));
            }
        }
        if let Some(missing) = due.iter().find(|l| !named.contains(*l)) {
            return Err(Rejection::invalid(format!(
                "data.outcomes: learner {missing} is due at defence {} but has no outcome",
                c.defence_id
            )));
        }
        if at < defence.at {
            return Err(Rejection::conflict(format!(
                "at: defence {} is scheduled for {}; its outcome cannot be recorded at {}",
                c.defence_id,
                defence.at.to_rfc3339(),
                at.to_rfc3339()
            )));
        }
        Ok(c.outcomes
            .into_iter()
            .map(|o| {
                use crate::command::DefenceResult as R;
                let (field_study_id, defence_id) = (c.field_study_id.clone(), c.defence_id.clone());
                let (learner_id, remarks) = (o.learner_id, o.remarks);
                match o.result {
                    R::Passed => FieldStudyEvent::DefencePassed {
                        field_study_id,
                        defence_id,
                        learner_id,
                        remarks,
                    },
                    R::Deferred => FieldStudyEvent::DefenceDeferred {
                        field_study_id,
                        defence_id,
                        learner_id,
                        remarks,
                    },
                    R::Failed => FieldStudyEvent::DefenceFailed {
                        field_study_id,
                        defence_id,
                        learner_id,
                        remarks,
                    },
                }
            })
            .collect())
    }
}
