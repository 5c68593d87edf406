//! The defences: `schedule_defence`, `record_defence` and `rectify_defence_result`. The first
//! defence is due for every current member; each later one only for the members `deferred` at
//! the one before (a rectified result counts as the result at its defence).

use super::decide::conflict;
use super::{Defence, FieldStudy};
use crate::command::{
    CancelDefence, DefenceResult, JuryRole, RecordDefence, RectifyDefenceResult, ScheduleDefence,
};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use chrono::{DateTime, FixedOffset};
use std::collections::HashSet;

impl FieldStudy {
    /// `schedule_defence`: `conflict` for a defence id already scheduled and still open (neither
    /// recorded nor cancelled) (the defence exists and is not closed; re-sending the very same command, same
    /// command id, is an idempotent replay answered before this: `duplicate`);
    /// `already_exists` for the id of a defence already closed; `invalid` when the jury lacks a
    /// `professional` or a `training_centre`; `conflict` with no production, an earlier defence
    /// without outcome, or a previous defence that left nobody `deferred`.
    pub(super) fn schedule_defence(
        &self,
        mut c: ScheduleDefence,
    ) -> Result<FieldStudyEvent, DecideError> {
        if let Some((_, known)) = self.defence(&c.defence_id) {
            if !known.is_closed() {
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
        let mut names = HashSet::new();
        for (i, member) in c.jury.iter_mut().enumerate() {
            member.name = jury_name(&member.name, &format!("data.jury[{i}].name"))?;
            if !names.insert(member.name.clone()) {
                return Err(Rejection::invalid(format!(
                    "data.jury[{i}].name: {:?} is listed twice",
                    member.name
                ))
                .into());
            }
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
        if let Some(open) = self.defences.iter().find(|d| !d.is_closed()) {
            return Err(conflict(format!(
                "defence {} is still without outcome (record or cancel it first)",
                open.defence_id
            )));
        }
        if let Some(previous) = self.defences.iter().rev().find(|d| d.is_recorded()) {
            if self.due_at(self.defences.len()).is_empty() {
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
    /// already recorded, cancelled, or nobody is due at it any more; `invalid` unless the outcomes name each learner due exactly once;
    /// `conflict` while the sitting jury (recused members left out) lacks a `professional` or a
    /// `training_centre` member, and when `at` is before the defence's time. One event per
    /// outcome, in order.
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
        if defence.cancelled {
            return Err(Rejection::conflict(format!(
                "defence {} was cancelled: it records no outcome",
                c.defence_id
            )));
        }
        let due = self.due_at(index);
        if due.is_empty() {
            return Err(Rejection::conflict(format!(
                "nobody is due at defence {} any more (the results deferred before it were rectified, or those learners left the study): cancel it with cancel_defence",
                c.defence_id
            )));
        }
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
        if let Some(role) = defence.missing_role() {
            return Err(Rejection::conflict(format!(
                "defence {}: the jury, recused members left out, has no {role} member: appoint one first",
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

impl FieldStudy {
    /// The learners due at the defence at `index`: every current member when no defence before
    /// it was recorded; else the current members whose latest result before it is `deferred`
    /// (FORMAT.md: "their latest defence result", rectified results counting as the result
    /// at their defence; cancelled defences count for nothing). A learner who left the study
    /// (a change of members, a split) is due at no further defence of it.
    fn due_at(&self, index: usize) -> Vec<&Id> {
        let before = &self.defences[..index];
        if !before.iter().any(Defence::is_recorded) {
            return self.members.iter().collect();
        }
        self.members
            .iter()
            .filter(|m| {
                before.iter().rev().find_map(|d| d.result_of(m.as_str()))
                    == Some(DefenceResult::Deferred)
            })
            .collect()
    }

    /// `cancel_defence`: `not_found` for an unknown defence; `conflict` when its outcome is
    /// recorded or it is already cancelled.
    pub(super) fn cancel_defence(&self, c: CancelDefence) -> Result<FieldStudyEvent, DecideError> {
        let defence = self.known_defence(&c.defence_id, &c.field_study_id)?;
        if defence.is_recorded() {
            return Err(conflict(format!(
                "defence {} is already recorded: it can no longer be cancelled",
                c.defence_id
            )));
        }
        if defence.cancelled {
            return Err(conflict(format!(
                "defence {} is already cancelled",
                c.defence_id
            )));
        }
        Ok(FieldStudyEvent::DefenceCancelled {
            field_study_id: c.field_study_id,
            defence_id: c.defence_id,
            reason: c.reason,
        })
    }

    /// `rectify_defence_result`: `not_found` for an unknown defence or a learner not enrolled in
    /// the cohort; `conflict` when the defence's outcome is not recorded; `invalid` when the
    /// learner has no outcome at that defence; `conflict` when `result` is the one in force, or
    /// when the learner holds a certificate in force and `result` is not `passed` (revoke it
    /// first: a certificate stands on a passed defence).
    pub(super) async fn rectify(
        &self,
        c: RectifyDefenceResult,
        lookups: &dyn Lookups,
    ) -> Result<FieldStudyEvent, DecideError> {
        let defence = self.known_defence(&c.defence_id, &c.field_study_id)?;
        let cohort_id = self.cohort_id.as_ref().map_or("", Id::as_str);
        let cohort = lookups.cohort(cohort_id).await?;
        let Some(learner) = cohort
            .as_ref()
            .and_then(|cohort| cohort.learner(c.learner_id.as_str()))
        else {
            return Err(Rejection::not_found(format!(
                "data.learner_id: learner {} is not enrolled in cohort {cohort_id}",
                c.learner_id
            ))
            .into());
        };
        if !defence.is_recorded() {
            return Err(conflict(format!(
                "defence {} has no outcome recorded yet: there is nothing to rectify",
                c.defence_id
            )));
        }
        let Some(previous_result) = defence.result_of(c.learner_id.as_str()) else {
            return Err(Rejection::invalid(format!(
                "data.learner_id: learner {} has no outcome at defence {}",
                c.learner_id, c.defence_id
            ))
            .into());
        };
        if previous_result == c.result {
            return Err(conflict(format!(
                "data.result: {} is already learner {}'s result at defence {}",
                c.result.as_str(),
                c.learner_id,
                c.defence_id
            )));
        }
        if learner.certificate_awarded() && c.result != DefenceResult::Passed {
            return Err(conflict(format!(
                "learner {} holds a certificate in force: a result other than passed needs the certificate revoked first",
                c.learner_id
            )));
        }
        Ok(FieldStudyEvent::DefenceResultRectified {
            field_study_id: c.field_study_id,
            defence_id: c.defence_id,
            learner_id: c.learner_id,
            previous_result,
            result: c.result,
            reason: c.reason,
        })
    }
}

/// A jury member's name as kept: without surrounding white space; `invalid` naming `field`
/// when nothing is left.
pub(super) fn jury_name(name: &str, field: &str) -> Result<String, Rejection> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Rejection::invalid(format!(
            "{field}: a jury member's name must not be empty"
        )));
    }
    Ok(name.to_owned())
}
