//! A defence's jury after it was scheduled: `recuse_jury_member` (a member steps aside, e.g.
//! having supervised the group) and `appoint_jury_member` (a member joins, or a recused one
//! comes back). `record_defence` needs the sitting jury (recused members left out) to hold a
//! `professional` and a `training_centre` member (`defence.rs`).

use super::decide::conflict;
use super::defence::jury_name;
use super::{Defence, FieldStudy};
use crate::command::{AppointJuryMember, RecuseJuryMember};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::ids::Id;

impl FieldStudy {
    /// The defence `defence_id` of this study, or `not_found`.
    pub(super) fn known_defence(
        &self,
        defence_id: &Id,
        field_study_id: &Id,
    ) -> Result<&Defence, Rejection> {
        self.defence(defence_id).map(|(_, d)| d).ok_or_else(|| {
            Rejection::not_found(format!(
                "data.defence_id: defence {defence_id} does not exist in field study {field_study_id}"
            ))
        })
    }

    /// `recuse_jury_member`: `not_found` for an unknown defence; `invalid` when `name` (without
    /// surrounding white space) is empty, not on that defence's jury or already recused; `conflict` once the defence's outcome is recorded.
    pub(super) fn recuse_jury_member(
        &self,
        mut c: RecuseJuryMember,
    ) -> Result<FieldStudyEvent, DecideError> {
        let defence = self.known_defence(&c.defence_id, &c.field_study_id)?;
        c.name = jury_name(&c.name, "data.name")?;
        if !defence.jury.iter().any(|s| s.name == c.name) {
            return Err(Rejection::invalid(format!(
                "data.name: {:?} is not on the jury of defence {}",
                c.name, c.defence_id
            ))
            .into());
        }
        if !defence.sits(&c.name) {
            return Err(Rejection::invalid(format!(
                "data.name: {:?} is already recused from defence {}",
                c.name, c.defence_id
            ))
            .into());
        }
        unrecorded(defence)?;
        Ok(FieldStudyEvent::JuryMemberRecused {
            field_study_id: c.field_study_id,
            defence_id: c.defence_id,
            name: c.name,
            reason: c.reason,
        })
    }

    /// `appoint_jury_member`: `not_found` for an unknown defence; `invalid` for an empty `name`
    /// (kept without surrounding white space); `already_exists` when `name` is on the jury and
    /// not recused; `conflict` once the defence's outcome is recorded.
    pub(super) fn appoint_jury_member(
        &self,
        mut c: AppointJuryMember,
    ) -> Result<FieldStudyEvent, DecideError> {
        let defence = self.known_defence(&c.defence_id, &c.field_study_id)?;
        c.name = jury_name(&c.name, "data.name")?;
        if defence.sits(&c.name) {
            return Err(Rejection::already_exists(format!(
                "data.name: {:?} is already on the jury of defence {}",
                c.name, c.defence_id
            ))
            .into());
        }
        unrecorded(defence)?;
        Ok(FieldStudyEvent::JuryMemberAppointed {
            field_study_id: c.field_study_id,
            defence_id: c.defence_id,
            name: c.name,
            role: c.role,
        })
    }
}

/// `conflict` once the defence's outcome is recorded or it is cancelled: its jury is then
/// history.
fn unrecorded(defence: &Defence) -> Result<(), DecideError> {
    if defence.is_closed() {
        let what = if defence.cancelled {
            "cancelled"
        } else {
            "already recorded"
        };
        return Err(conflict(format!(
            "defence {} is {what}: its jury can no longer change",
            defence.defence_id
        )));
    }
    Ok(())
}
