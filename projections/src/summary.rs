//! The one-sentence summaries of a field study's history entries.

use crate::time::utc;
use fieldtrail_domain::command::JuryRole;
use fieldtrail_domain::{FieldStudyEvent, Id};

fn list(ids: &[Id]) -> String {
    if ids.is_empty() {
        "nobody".to_owned()
    } else {
        ids.iter().map(Id::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// A short human sentence built from the event's payload (English, no personal data beyond
/// ids).
pub(crate) fn summary(event: &FieldStudyEvent) -> String {
    use FieldStudyEvent as E;
    match event {
        E::FieldStudyFormed {
            members,
            organisation,
            split_from,
            ..
        } => {
            let formed = format!(
                "field study formed with {} for {} ({})",
                list(members),
                organisation.name,
                organisation.sector
            );
            match split_from {
                Some(from) => format!("{formed}, split from field study {from}"),
                None => formed,
            }
        }
        E::FieldStudySplit {
            new_field_study_id,
            members,
            remaining,
            organisation,
            reason,
            ..
        } => format!(
            "field study split: {} left to form field study {new_field_study_id} for {} ({}); remaining: {}: {}",
            list(members),
            organisation.name,
            organisation.sector,
            list(remaining),
            reason.as_str()
        ),
        E::JuryMemberRecused {
            defence_id,
            name,
            reason,
            ..
        } => format!(
            "jury member {name} recused from defence {defence_id}: {}",
            reason.as_str()
        ),
        E::JuryMemberAppointed {
            defence_id,
            name,
            role,
            ..
        } => {
            let role = match role {
                JuryRole::Professional => "professional",
                JuryRole::TrainingCentre => "training_centre",
            };
            format!("jury member {name} ({role}) appointed to defence {defence_id}")
        }
        E::DefenceResultRectified {
            defence_id,
            learner_id,
            previous_result,
            result,
            reason,
            ..
        } => format!(
            "{learner_id}'s result at defence {defence_id} rectified from {} to {}: {}",
            previous_result.as_str(),
            result.as_str(),
            reason.as_str()
        ),
        E::DefenceCancelled {
            defence_id, reason, ..
        } => format!("defence {defence_id} cancelled: {}", reason.as_str()),
        E::MembersChanged {
            join,
            leave,
            reason,
            ..
        } => {
            format!(
                "members changed, joined: {}; left: {}: {}",
                list(join),
                list(leave),
                reason.as_str()
            )
        }
        E::CommissionNegotiated {
            version,
            negotiated_with,
            ..
        } => {
            format!("commission version {version} negotiated with {negotiated_with}")
        }
        E::CommissionRenegotiated {
            version, reason, ..
        } => {
            format!(
                "commission renegotiated to version {version}: {}",
                reason.as_str()
            )
        }
        E::CommissionAgreed { version, .. } => format!("commission version {version} agreed"),
        E::HypothesisStated {
            hypothesis_id,
            text,
            ..
        } => format!("hypothesis {hypothesis_id} stated: {text}"),
        E::HypothesisRevised {
            hypothesis_id,
            reason,
            ..
        } => {
            format!("hypothesis {hypothesis_id} revised: {}", reason.as_str())
        }
        E::HypothesisAbandoned {
            hypothesis_id,
            reason,
            ..
        } => {
            format!("hypothesis {hypothesis_id} abandoned: {}", reason.as_str())
        }
        E::InterventionLogged {
            intervention_id,
            kind,
            participants,
            ..
        } => {
            format!("intervention {intervention_id} logged: {kind}, {participants} participants")
        }
        E::ReflexiveNoteRecorded {
            note_id,
            session_id,
            ..
        } => match session_id {
            Some(session_id) => {
                format!("reflexive note {note_id} recorded for session {session_id}")
            }
            None => format!("reflexive note {note_id} recorded"),
        },
        E::ProductionSubmitted {
            version,
            title,
            pages,
            ..
        } => {
            format!("production version {version} submitted: \"{title}\" ({pages} pages)")
        }
        E::DefenceScheduled {
            defence_id,
            at,
            jury,
            ..
        } => {
            format!(
                "defence {defence_id} scheduled at {} before a jury of {}",
                utc(at),
                jury.len()
            )
        }
        E::DefencePassed {
            defence_id,
            learner_id,
            ..
        } => format!("{learner_id} passed defence {defence_id}"),
        E::DefenceDeferred {
            defence_id,
            learner_id,
            ..
        } => format!("{learner_id} deferred at defence {defence_id}"),
        E::DefenceFailed {
            defence_id,
            learner_id,
            ..
        } => format!("{learner_id} failed defence {defence_id}"),
    }
}
