//! Who is in the group: `form_field_study`, `change_members` and `split_field_study`. A member
//! must be active in the cohort (`invalid` otherwise) and in no other field study of the cohort
//! (`conflict`).

use super::FieldStudy;
use crate::command::{ChangeMembers, FormFieldStudy, SplitFieldStudy};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use crate::Cohort;
use std::collections::HashSet;

impl FieldStudy {
    /// `form_field_study` on a study that does not exist yet: `not_found` for an unknown cohort;
    /// `invalid` unless 3 or 4 distinct active learners; `conflict` when one is in another study.
    pub(super) async fn form(
        &self,
        c: FormFieldStudy,
        lookups: &dyn Lookups,
    ) -> Result<FieldStudyEvent, DecideError> {
        let cohort = active_cohort(lookups, c.cohort_id.as_str()).await?;
        if !(3..=4).contains(&c.members.len()) {
            return Err(Rejection::invalid(format!(
                "data.members: a field study has 3 or 4 members, got {}",
                c.members.len()
            ))
            .into());
        }
        let mut seen = HashSet::new();
        for (i, learner_id) in c.members.iter().enumerate() {
            if !seen.insert(learner_id) {
                return Err(Rejection::invalid(format!(
                    "data.members[{i}]: learner {learner_id} is listed twice"
                ))
                .into());
            }
            check_active(&cohort, learner_id, &format!("data.members[{i}]"))?;
        }
        let studies = lookups
            .field_studies_of_cohort(c.cohort_id.as_str())
            .await?;
        for (i, learner_id) in c.members.iter().enumerate() {
            check_not_elsewhere(
                &studies,
                &c.field_study_id,
                learner_id,
                &format!("data.members[{i}]"),
            )?;
        }
        Ok(FieldStudyEvent::FieldStudyFormed {
            field_study_id: c.field_study_id,
            cohort_id: c.cohort_id,
            members: c.members,
            organisation: c.organisation,
            split_from: None,
        })
    }

    /// `split_field_study`: `already_exists` when the new id names a field study (this one
    /// included); `invalid` for a listed learner who is not a member, is listed twice or has
    /// withdrawn from the cohort, or when either group would have fewer than 2 or more than 4
    /// members; `conflict` while the study has a defence neither recorded nor cancelled. The event is the old study's; the new study's
    /// `field_study_formed` (with `split_from`) is [`FieldStudyEvent::split_companion`].
    pub(super) async fn split(
        &self,
        c: SplitFieldStudy,
        lookups: &dyn Lookups,
    ) -> Result<FieldStudyEvent, DecideError> {
        let Some(cohort_id) = self.cohort_id.clone() else {
            return Err(Rejection::not_found(format!(
                "data.field_study_id: field study {} does not exist",
                c.field_study_id
            ))
            .into());
        };
        let taken = c.new_field_study_id == c.field_study_id
            || lookups
                .field_study(c.new_field_study_id.as_str())
                .await?
                .is_some_and(|s| s.exists());
        if taken {
            return Err(Rejection::already_exists(format!(
                "data.new_field_study_id: field study {} already exists",
                c.new_field_study_id
            ))
            .into());
        }
        let leaving = self.leavers(&c.members, "data.members")?;
        // Those who leave form a new study: like `form_field_study`, they must be active.
        let cohort = active_cohort(lookups, cohort_id.as_str()).await?;
        for (i, learner_id) in c.members.iter().enumerate() {
            check_active(&cohort, learner_id, &format!("data.members[{i}]"))?;
        }
        let remaining: Vec<Id> = self
            .members
            .iter()
            .filter(|m| !leaving.contains(m))
            .cloned()
            .collect();
        for (group, n) in [
            (c.new_field_study_id.as_str(), c.members.len()),
            (c.field_study_id.as_str(), remaining.len()),
        ] {
            if !(2..=4).contains(&n) {
                let noun = if n == 1 { "member" } else { "members" };
                return Err(Rejection::invalid(format!(
                    "data.members: field study {group} would have {n} {noun}; each group of a split keeps 2 to 4 members"
                ))
                .into());
            }
        }
        if let Some(pending) = self.defences.iter().find(|d| !d.is_closed()) {
            return Err(Rejection::conflict(format!(
                "defence {} is still without outcome: record or cancel it before the group splits",
                pending.defence_id
            ))
            .into());
        }
        Ok(FieldStudyEvent::FieldStudySplit {
            field_study_id: c.field_study_id,
            cohort_id,
            new_field_study_id: c.new_field_study_id,
            members: c.members,
            remaining,
            organisation: c.organisation,
            reason: c.reason,
        })
    }

    /// `change_members`: `invalid` for a joiner not active, listed twice or already a member, a
    /// leaver not a member, or a result outside 2 to 4 members; `conflict` when a joiner is in
    /// another study. The new member list keeps the order, drops leavers, appends joiners.
    pub(super) async fn change_members(
        &self,
        c: ChangeMembers,
        lookups: &dyn Lookups,
    ) -> Result<FieldStudyEvent, DecideError> {
        let cohort_id = self.cohort_id.as_ref().map_or("", Id::as_str);
        let cohort = active_cohort(lookups, cohort_id).await?;
        let mut seen = HashSet::new();
        for (i, learner_id) in c.join.iter().enumerate() {
            let field = format!("data.join[{i}]");
            if !seen.insert(learner_id) {
                return Err(Rejection::invalid(format!(
                    "{field}: learner {learner_id} is listed twice"
                ))
                .into());
            }
            check_active(&cohort, learner_id, &field)?;
            if self.is_member(learner_id.as_str()) {
                return Err(Rejection::invalid(format!(
                    "{field}: learner {learner_id} is already a member of field study {}",
                    c.field_study_id
                ))
                .into());
            }
        }
        let leaving = self.leavers(&c.leave, "data.leave")?;
        let members: Vec<Id> = self
            .members
            .iter()
            .filter(|m| !leaving.contains(m))
            .chain(c.join.iter())
            .cloned()
            .collect();
        if !(2..=4).contains(&members.len()) {
            let n = members.len();
            let noun = if n == 1 { "member" } else { "members" };
            return Err(Rejection::invalid(format!(
                "data: the field study would have {n} {noun}; a field study keeps 2 to 4 members"
            ))
            .into());
        }
        let studies = lookups.field_studies_of_cohort(cohort_id).await?;
        for (i, learner_id) in c.join.iter().enumerate() {
            check_not_elsewhere(
                &studies,
                &c.field_study_id,
                learner_id,
                &format!("data.join[{i}]"),
            )?;
        }
        Ok(FieldStudyEvent::MembersChanged {
            field_study_id: c.field_study_id,
            join: c.join,
            leave: c.leave,
            reason: c.reason,
            members,
        })
    }
}

impl FieldStudy {
    /// The learners of `list` (the field `field`) as a set: `invalid` for one listed twice or
    /// not a member of this study.
    fn leavers<'a>(&self, list: &'a [Id], field: &str) -> Result<HashSet<&'a Id>, Rejection> {
        let mut leaving = HashSet::new();
        for (i, learner_id) in list.iter().enumerate() {
            if !leaving.insert(learner_id) {
                return Err(Rejection::invalid(format!(
                    "{field}[{i}]: learner {learner_id} is listed twice"
                )));
            }
            if !self.is_member(learner_id.as_str()) {
                return Err(Rejection::invalid(format!(
                    "{field}[{i}]: learner {learner_id} is not a member of field study {}",
                    self.field_study_id.as_ref().map_or("", Id::as_str)
                )));
            }
        }
        Ok(leaving)
    }
}

/// The cohort `cohort_id`, or `not_found`.
async fn active_cohort(lookups: &dyn Lookups, cohort_id: &str) -> Result<Cohort, DecideError> {
    match lookups.cohort(cohort_id).await? {
        Some(cohort) if cohort.exists() => Ok(cohort),
        _ => Err(Rejection::not_found(format!(
            "data.cohort_id: cohort {cohort_id} does not exist"
        ))
        .into()),
    }
}

/// `invalid` unless `learner_id` is active in `cohort` (enrolled, not withdrawn).
fn check_active(cohort: &Cohort, learner_id: &Id, field: &str) -> Result<(), Rejection> {
    let cohort_id = cohort.cohort_id().map_or("", Id::as_str);
    match cohort.learner(learner_id.as_str()) {
        None => Err(Rejection::invalid(format!(
            "{field}: learner {learner_id} is not enrolled in cohort {cohort_id}"
        ))),
        Some(l) if l.is_withdrawn() => Err(Rejection::invalid(format!(
            "{field}: learner {learner_id} has withdrawn from cohort {cohort_id}"
        ))),
        Some(_) => Ok(()),
    }
}

/// `conflict` when `learner_id` is a member of a field study of the cohort other than `this`.
fn check_not_elsewhere(
    studies: &[FieldStudy],
    this: &Id,
    learner_id: &Id,
    field: &str,
) -> Result<(), Rejection> {
    let elsewhere = studies
        .iter()
        .find(|s| s.field_study_id() != Some(this) && s.is_member(learner_id.as_str()));
    match elsewhere.and_then(FieldStudy::field_study_id) {
        Some(other) => Err(Rejection::conflict(format!(
            "{field}: learner {learner_id} is already in field study {other}"
        ))),
        None => Ok(()),
    }
}
