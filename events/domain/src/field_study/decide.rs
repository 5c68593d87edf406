//! The field study's rules: each command either yields its events or is refused with the code
//! of FORMAT.md. Checks run in the order the rules list them: existence (`not_found`,
//! `already_exists`), then the data (`invalid`), then the state (`conflict`); `record_defence`
//! refuses an already recorded defence before looking at the outcomes.

use super::FieldStudy;
use crate::command::{
    ChangeMembers, FieldStudyCommand, FormFieldStudy, JuryRole, RecordDefence, RecordReflexiveNote,
    ScheduleDefence, Stamped,
};
use crate::error::{DecideError, Rejection};
use crate::event::FieldStudyEvent;
use crate::ids::Id;
use crate::lookups::Lookups;
use crate::Cohort;
use chrono::{DateTime, FixedOffset};
use std::collections::HashSet;

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
        };
        Ok(vec![event])
    }

    async fn form(
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
        })
    }

    async fn change_members(
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
        let mut leaving = HashSet::new();
        for (i, learner_id) in c.leave.iter().enumerate() {
            if !leaving.insert(learner_id) {
                return Err(Rejection::invalid(format!(
                    "data.leave[{i}]: learner {learner_id} is listed twice"
                ))
                .into());
            }
            if !self.is_member(learner_id.as_str()) {
                return Err(Rejection::invalid(format!(
                    "data.leave[{i}]: learner {learner_id} is not a member of field study {}",
                    c.field_study_id
                ))
                .into());
            }
        }
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

    fn schedule_defence(&self, c: ScheduleDefence) -> Result<FieldStudyEvent, DecideError> {
        if self.defence(&c.defence_id).is_some() {
            return Err(Rejection::already_exists(format!(
                "data.defence_id: defence {} already exists",
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

    fn record_defence(
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

fn conflict(message: String) -> DecideError {
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
