//! The field study's commands, and the rules of the commission, hypotheses, interventions, notes
//! and productions (the group's are in `members.rs`, the defences' in `defence.rs`). Each command
//! either yields its events or is refused with the code of FORMAT.md. Checks run in the order the
//! rules list them: existence (`not_found`, `already_exists`), then the data (`invalid`), then
//! the state (`conflict`); `record_defence` refuses an already recorded defence before looking at
//! the outcomes.

use super::FieldStudy;
use crate::command::{FieldStudyCommand, RecordReflexiveNote, Stamped};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::ids::Id;
use crate::lookups::Lookups;

impl FieldStudy {
    /// Decides `command` against the current state, fetching what it needs through `lookups`.
    pub(super) async fn decide(
        &self,
        command: Stamped<FieldStudyCommand>,
        lookups: &dyn Lookups,
    ) -> Result<Vec<FieldStudyEvent>, DecideError> {
        use FieldStudyCommand as C;
        use FieldStudyEvent as E;
        let Stamped { at, command } = command;
        let Some(field_study_id) = self.field_study_id.as_ref() else {
            return match command {
                C::FormFieldStudy(c) => Ok(vec![self.form(c, lookups).await?]),
                other => Err(Rejection::not_found(format!(
                    "data.field_study_id: field study {} does not exist",
                    other.field_study_id()
                ))
                .into()),
            };
        };
        let event = match command {
            C::FormFieldStudy(_) => {
                return Err(Rejection::already_exists(format!(
                    "data.field_study_id: field study {field_study_id} already exists"
                ))
                .into())
            }
            C::ChangeMembers(c) => self.change_members(c, lookups).await?,
            C::NegotiateCommission(c) => {
                if let Some(version) = self.commission_version() {
                    return Err(conflict(format!(
                        "a commission already exists (version {version}): renegotiate it instead"
                    )));
                }
                E::CommissionNegotiated {
                    field_study_id: c.field_study_id,
                    version: 1,
                    brief: c.brief,
                    deliverables: c.deliverables,
                    negotiated_with: c.negotiated_with,
                }
            }
            C::RenegotiateCommission(c) => {
                let latest = self
                    .commission_version()
                    .ok_or_else(|| no_commission("renegotiate"))?;
                E::CommissionRenegotiated {
                    field_study_id: c.field_study_id,
                    version: next_version(latest, "commission")?,
                    brief: c.brief,
                    deliverables: c.deliverables,
                    reason: c.reason,
                }
            }
            C::AgreeCommission(c) => {
                let latest = self
                    .commission_version()
                    .ok_or_else(|| no_commission("agree"))?;
                if c.version != latest {
                    return Err(conflict(format!(
                        "data.version: commission version {} is not the latest ({latest})",
                        c.version
                    )));
                }
                E::CommissionAgreed {
                    field_study_id: c.field_study_id,
                    version: c.version,
                }
            }
            C::StateHypothesis(c) => {
                if self.hypothesis(&c.hypothesis_id).is_some() {
                    return Err(Rejection::already_exists(format!(
                        "data.hypothesis_id: hypothesis {} already exists",
                        c.hypothesis_id
                    ))
                    .into());
                }
                E::HypothesisStated {
                    field_study_id: c.field_study_id,
                    hypothesis_id: c.hypothesis_id,
                    text: c.text,
                }
            }
            C::ReviseHypothesis(c) => {
                self.open_hypothesis(&c.hypothesis_id, "revised")?;
                E::HypothesisRevised {
                    field_study_id: c.field_study_id,
                    hypothesis_id: c.hypothesis_id,
                    text: c.text,
                    reason: c.reason,
                }
            }
            C::AbandonHypothesis(c) => {
                self.open_hypothesis(&c.hypothesis_id, "abandoned again")?;
                E::HypothesisAbandoned {
                    field_study_id: c.field_study_id,
                    hypothesis_id: c.hypothesis_id,
                    reason: c.reason,
                }
            }
            C::LogIntervention(c) => {
                if self.interventions.contains(&c.intervention_id) {
                    return Err(Rejection::already_exists(format!(
                        "data.intervention_id: intervention {} already exists",
                        c.intervention_id
                    ))
                    .into());
                }
                E::InterventionLogged {
                    field_study_id: c.field_study_id,
                    intervention_id: c.intervention_id,
                    kind: c.kind,
                    summary: c.summary,
                    participants: c.participants,
                }
            }
            C::RecordReflexiveNote(c) => self.note(c, lookups).await?,
            C::SubmitProduction(c) => {
                let latest = self
                    .commission_version()
                    .ok_or_else(|| no_commission("submit a production to"))?;
                if self.agreed_version != Some(latest) {
                    return Err(conflict(format!(
                        "commission version {latest} is not agreed: a production answers an agreed commission"
                    )));
                }
                E::ProductionSubmitted {
                    field_study_id: c.field_study_id,
                    version: next_version(self.production_version, "production")?,
                    title: c.title,
                    pages: c.pages,
                }
            }
            C::ScheduleDefence(c) => self.schedule_defence(c)?,
            C::RecordDefence(c) => return Ok(self.record_defence(c, at)?),
            C::RecuseJuryMember(c) => self.recuse_jury_member(c)?,
            C::AppointJuryMember(c) => self.appoint_jury_member(c)?,
            C::SplitFieldStudy(c) => self.split(c, lookups).await?,
            C::RectifyDefenceResult(c) => self.rectify(c, lookups).await?,
            C::CancelDefence(c) => self.cancel_defence(c)?,
        };
        Ok(vec![event])
    }

    async fn note(
        &self,
        c: RecordReflexiveNote,
        lookups: &dyn Lookups,
    ) -> Result<FieldStudyEvent, DecideError> {
        if self.notes.contains(&c.note_id) {
            return Err(Rejection::already_exists(format!(
                "data.note_id: note {} already exists",
                c.note_id
            ))
            .into());
        }
        if let Some(session_id) = &c.session_id {
            let cohort_id = self.cohort_id.as_ref().map_or("", Id::as_str);
            let known = lookups
                .cohort(cohort_id)
                .await?
                .is_some_and(|cohort| cohort.session(session_id.as_str()).is_some());
            if !known {
                return Err(Rejection::not_found(format!(
                    "data.session_id: session {session_id} does not exist in cohort {cohort_id}"
                ))
                .into());
            }
        }
        Ok(FieldStudyEvent::ReflexiveNoteRecorded {
            field_study_id: c.field_study_id,
            note_id: c.note_id,
            session_id: c.session_id,
            text: c.text,
        })
    }

    /// `not_found` for an unknown hypothesis, `conflict` for an abandoned one.
    fn open_hypothesis(&self, hypothesis_id: &Id, what: &str) -> Result<(), DecideError> {
        match self.hypothesis(hypothesis_id) {
            None => Err(Rejection::not_found(format!(
                "data.hypothesis_id: hypothesis {hypothesis_id} does not exist"
            ))
            .into()),
            Some(h) if h.abandoned => Err(conflict(format!(
                "hypothesis {hypothesis_id} is abandoned: it cannot be {what}"
            ))),
            Some(_) => Ok(()),
        }
    }
}

pub(super) fn conflict(message: String) -> DecideError {
    Rejection::conflict(message).into()
}

fn no_commission(what: &str) -> DecideError {
    conflict(format!(
        "there is no commission yet to {what}: negotiate one first"
    ))
}

/// `latest + 1`, or `conflict` in the (absurd) case that it does not fit.
fn next_version(latest: u32, what: &str) -> Result<u32, DecideError> {
    latest
        .checked_add(1)
        .ok_or_else(|| conflict(format!("the {what} has no version left after {latest}")))
}
