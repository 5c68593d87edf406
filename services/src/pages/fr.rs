//! French wording: dates and times in Europe/Paris, and the labels of roles, session kinds,
//! statuses, event types and attendance flags. Pure functions.

use crate::auth::Role;
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Europe::Paris;

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `lundi`, `mardi`, ...
pub fn weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "lundi",
        Weekday::Tue => "mardi",
        Weekday::Wed => "mercredi",
        Weekday::Thu => "jeudi",
        Weekday::Fri => "vendredi",
        Weekday::Sat => "samedi",
        Weekday::Sun => "dimanche",
    }
}

/// `lundi 15 septembre 2025` (`1er` for the first of a month).
pub fn date_long(date: NaiveDate) -> String {
    let day = match date.day() {
        1 => "1er".to_owned(),
        d => d.to_string(),
    };
    format!(
        "{} {day} {} {}",
        weekday(date.weekday()),
        MONTHS[date.month0() as usize],
        date.year()
    )
}

/// `15/09/2025`.
pub fn date_short(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

/// An instant as Europe/Paris wall time: `lundi 15 septembre 2025 à 09:00`.
pub fn datetime(t: &DateTime<Utc>) -> String {
    let local = t.with_timezone(&Paris);
    format!(
        "{} à {}",
        date_long(local.date_naive()),
        local.format("%H:%M")
    )
}

/// An instant as Europe/Paris wall time, short: `15/09/2025 09:00:00`.
pub fn datetime_short(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Paris)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

/// `09:00`, Europe/Paris.
pub fn time(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Paris).format("%H:%M").to_string()
}

/// Parses an RFC 3339 instant from a document.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// [`datetime`] of an RFC 3339 text (the text itself when it does not parse).
pub fn datetime_text(text: &str) -> String {
    parse(text).map_or_else(|| text.to_owned(), |t| datetime(&t))
}

/// [`datetime_short`] of an RFC 3339 text (the text itself when it does not parse).
pub fn datetime_short_text(text: &str) -> String {
    parse(text).map_or_else(|| text.to_owned(), |t| datetime_short(&t))
}

/// The role's French name.
pub fn role(role: Role) -> &'static str {
    match role {
        Role::Staff => "équipe de formation",
        Role::Facilitator => "intervenant·e",
        Role::Jury => "jury",
        Role::Learner => "apprenant·e",
        Role::Auditor => "auditeur·rice",
        Role::Researcher => "chercheur·se",
        Role::Dashboard => "tableau de bord",
    }
}

/// A session kind (`course`, ...) in French.
pub fn session_kind(kind: &str) -> &str {
    match kind {
        "course" => "Cours",
        "reflexive_accompaniment" => "Accompagnement réflexif",
        "critical_debate" => "Débat critique",
        "field_work" => "Travail de terrain",
        "defence" => "Soutenance",
        other => other,
    }
}

/// A session status in French.
pub fn session_status(status: &str) -> &str {
    match status {
        "scheduled" => "programmée",
        "held" => "tenue",
        "cancelled" => "annulée",
        other => other,
    }
}

/// An attendance status in French.
pub fn attendance(status: &str) -> &str {
    match status {
        "present" => "présent·e",
        "excused" => "excusé·e",
        "absent" => "absent·e",
        other => other,
    }
}

/// A defence result in French.
pub fn result(result: &str) -> &str {
    match result {
        "passed" => "admis·e",
        "deferred" => "ajourné·e",
        "failed" => "non admis·e",
        other => other,
    }
}

/// A jury member's role in French.
pub fn jury_role(role: fieldtrail_domain::command::JuryRole) -> &'static str {
    match role {
        fieldtrail_domain::command::JuryRole::Professional => "professionnel·le",
        fieldtrail_domain::command::JuryRole::TrainingCentre => "centre de formation",
    }
}

/// An event type in French.
pub fn event(event_type: &str) -> &str {
    match event_type {
        "programme_defined" => "Programme défini",
        "cohort_opened" => "Cohorte ouverte",
        "learner_enrolled" => "Inscription",
        "learner_withdrew" => "Abandon",
        "session_scheduled" => "Séance programmée",
        "session_rescheduled" => "Séance déplacée",
        "session_cancelled" => "Séance annulée",
        "session_held" => "Séance tenue (présences)",
        "attendance_corrected" => "Présence corrigée",
        "cohort_closed" => "Cohorte close",
        "certificate_awarded" => "Certificat délivré",
        "deis_credit_recorded" => "Crédit DEIS enregistré",
        "certificate_revoked" => "Certificat retiré",
        "complaint_filed" => "Réclamation reçue",
        "complaint_answered" => "Réclamation traitée",
        "field_study_formed" => "Groupe formé",
        "members_changed" => "Composition modifiée",
        "commission_negotiated" => "Commande négociée",
        "commission_renegotiated" => "Commande renégociée",
        "commission_agreed" => "Commande validée",
        "hypothesis_stated" => "Hypothèse formulée",
        "hypothesis_revised" => "Hypothèse révisée",
        "hypothesis_abandoned" => "Hypothèse abandonnée",
        "intervention_logged" => "Intervention",
        "reflexive_note_recorded" => "Note réflexive",
        "production_submitted" => "Production déposée",
        "defence_scheduled" => "Soutenance programmée",
        "defence_passed" => "Soutenance : admis·e",
        "defence_deferred" => "Soutenance : ajourné·e",
        "defence_failed" => "Soutenance : non admis·e",
        "jury_member_recused" => "Membre du jury récusé",
        "jury_member_appointed" => "Membre du jury nommé",
        "field_study_split" => "Groupe scindé",
        "defence_result_rectified" => "Résultat rectifié",
        other => other,
    }
}

/// An attendance anomaly flag in French.
pub fn flag(flag: &str) -> &str {
    match flag {
        "public_holiday" => "jour férié",
        "sunday" => "dimanche",
        "late_attendance_record" => "émargement tardif (plus de 14 jours)",
        "late_correction" => "correction tardive (plus de 30 jours)",
        "correction_after_close" => "correction après clôture",
        "overlapping_presence" => "présences simultanées",
        "facilitator_is_learner" => "intervenant·e parmi les apprenant·es",
        other => other,
    }
}

/// A field-study event in one French sentence (a reflexive note's text is left out: the
/// notes section shows it to the roles allowed to read it).
pub fn field_study_summary(event: &fieldtrail_domain::FieldStudyEvent) -> String {
    use fieldtrail_domain::FieldStudyEvent as E;
    let ids = |v: &[fieldtrail_domain::Id]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match event {
        E::FieldStudyFormed {
            members,
            organisation,
            split_from,
            ..
        } => {
            let formed = format!(
                "groupe formé ({}) pour {} ({})",
                ids(members),
                organisation.name,
                organisation.sector
            );
            match split_from {
                Some(from) => format!("{formed}, issu de la scission du groupe {from}"),
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
            "groupe scindé : {} forment le groupe {new_field_study_id} pour {} ({}) ; restent : {} — motif : {}",
            ids(members),
            organisation.name,
            organisation.sector,
            ids(remaining),
            reason.as_str()
        ),
        E::JuryMemberRecused {
            defence_id,
            name,
            reason,
            ..
        } => format!(
            "soutenance {defence_id} : {name} se récuse — motif : {}",
            reason.as_str()
        ),
        E::JuryMemberAppointed {
            defence_id,
            name,
            role,
            ..
        } => format!(
            "soutenance {defence_id} : {name} nommé·e au jury ({})",
            jury_role(*role)
        ),
        E::DefenceResultRectified {
            defence_id,
            learner_id,
            previous_result,
            result: rectified,
            reason,
            ..
        } => format!(
            "soutenance {defence_id} : résultat de {learner_id} rectifié, {} devient {} — motif : {}",
            result(previous_result.as_str()),
            result(rectified.as_str()),
            reason.as_str()
        ),
        E::DefenceCancelled {
            defence_id, reason, ..
        } => format!("soutenance {defence_id} annulée — motif : {}", reason.as_str()),
        E::MembersChanged {
            join,
            leave,
            reason,
            ..
        } => format!(
            "arrivées : {} ; départs : {} — motif : {}",
            if join.is_empty() {
                "aucune".to_owned()
            } else {
                ids(join)
            },
            if leave.is_empty() {
                "aucun".to_owned()
            } else {
                ids(leave)
            },
            reason.as_str()
        ),
        E::CommissionNegotiated {
            version,
            negotiated_with,
            ..
        } => format!("commande version {version} négociée avec {negotiated_with}"),
        E::CommissionRenegotiated {
            version, reason, ..
        } => format!(
            "commande renégociée (version {version}) — motif : {}",
            reason.as_str()
        ),
        E::CommissionAgreed { version, .. } => format!("commande version {version} validée"),
        E::HypothesisStated {
            hypothesis_id,
            text,
            ..
        } => format!("hypothèse {hypothesis_id} formulée : « {text} »"),
        E::HypothesisRevised {
            hypothesis_id,
            reason,
            ..
        } => format!(
            "hypothèse {hypothesis_id} révisée — motif : {}",
            reason.as_str()
        ),
        E::HypothesisAbandoned {
            hypothesis_id,
            reason,
            ..
        } => format!(
            "hypothèse {hypothesis_id} abandonnée — motif : {}",
            reason.as_str()
        ),
        E::InterventionLogged {
            intervention_id,
            kind,
            participants,
            ..
        } => format!("intervention {intervention_id} : {kind}, {participants} participant·es"),
        E::ReflexiveNoteRecorded {
            note_id,
            session_id,
            ..
        } => match session_id {
            Some(s) => format!("note réflexive {note_id} (séance {s})"),
            None => format!("note réflexive {note_id}"),
        },
        E::ProductionSubmitted {
            version,
            title,
            pages,
            ..
        } => format!("production version {version} déposée : « {title} » ({pages} pages)"),
        E::DefenceScheduled {
            defence_id,
            at,
            jury,
            ..
        } => format!(
            "soutenance {defence_id} programmée le {} devant un jury de {} membres",
            datetime(&at.with_timezone(&Utc)),
            jury.len()
        ),
        E::DefencePassed {
            defence_id,
            learner_id,
            ..
        }
        | E::DefenceDeferred {
            defence_id,
            learner_id,
            ..
        }
        | E::DefenceFailed {
            defence_id,
            learner_id,
            ..
        } => format!(
            "soutenance {defence_id} : {learner_id} {}",
            event
                .defence_result()
                .map_or("", |(_, _, r)| result(r.as_str()))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_in_french_in_paris_time() {
        let cases = [
            ("2025-09-15T07:00:00Z", "lundi 15 septembre 2025 à 09:00"),
            ("2025-11-01T08:30:00Z", "samedi 1er novembre 2025 à 09:30"),
            ("2026-03-29T23:30:00Z", "lundi 30 mars 2026 à 01:30"),
        ];
        for (utc, french) in cases {
            assert_eq!(datetime_text(utc), french, "{utc}");
        }
        assert_eq!(datetime_text("not a time"), "not a time");
    }

    #[test]
    fn a_note_summary_leaves_its_text_out() {
        let note: fieldtrail_domain::FieldStudyEvent = serde_json::from_value(serde_json::json!({
            "type": "reflexive_note_recorded", "field_study_id": "fs-1", "note_id": "n1",
            "session_id": null, "text": "secret"
        }))
        .unwrap();
        assert_eq!(field_study_summary(&note), "note réflexive n1");
    }
}
