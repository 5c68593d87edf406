//! The complaints of a cohort (Qualiopi indicator 31: every complaint is answered, with an
//! action): `file_complaint` and `answer_complaint`.

use super::Cohort;
use crate::command::{AnswerComplaint, FileComplaint};
use crate::error::Rejection;
use crate::event::CohortEvent;
use chrono::{DateTime, Utc};

impl Cohort {
    /// `file_complaint`: `already_exists` for a complaint id already filed in the cohort;
    /// `invalid` when `from` is not `role:name` (a lower-case role, a name without surrounding
    /// white space) or `subject` or `text` is empty; `not_found` when `from` is
    /// `learner:<learner_id>` and that learner is not enrolled in the cohort.
    pub(super) fn file_complaint(&self, c: FileComplaint) -> Result<CohortEvent, Rejection> {
        if self
            .complaints
            .iter()
            .any(|k| k.complaint_id == c.complaint_id)
        {
            return Err(Rejection::already_exists(format!(
                "data.complaint_id: complaint {} already exists in cohort {}",
                c.complaint_id, c.cohort_id
            )));
        }
        let (role, name) = complainant(&c.from)?;
        if role == "learner" && self.learner(name).is_none() {
            return Err(Rejection::not_found(format!(
                "data.from: learner {name} is not enrolled in cohort {}",
                c.cohort_id
            )));
        }
        not_blank("data.subject", &c.subject)?;
        not_blank("data.text", &c.text)?;
        Ok(CohortEvent::ComplaintFiled {
            cohort_id: c.cohort_id,
            complaint_id: c.complaint_id,
            from: c.from,
            subject: c.subject,
            text: c.text,
        })
    }

    /// `answer_complaint` (dated `at`, UTC): `not_found` for an unknown complaint; `invalid`
    /// when `answer` or `action` is empty; `conflict` once answered, or when `at` is before the
    /// complaint was filed.
    pub(super) fn answer_complaint(
        &self,
        c: AnswerComplaint,
        at: DateTime<Utc>,
    ) -> Result<CohortEvent, Rejection> {
        let Some(complaint) = self
            .complaints
            .iter()
            .find(|k| k.complaint_id == c.complaint_id)
        else {
            return Err(Rejection::not_found(format!(
                "data.complaint_id: complaint {} does not exist in cohort {}",
                c.complaint_id, c.cohort_id
            )));
        };
        not_blank("data.answer", &c.answer)?;
        not_blank("data.action", &c.action)?;
        if complaint.answered {
            return Err(Rejection::conflict(format!(
                "complaint {} is already answered",
                c.complaint_id
            )));
        }
        if let Some(filed_at) = complaint.filed_at.filter(|filed_at| at < *filed_at) {
            return Err(Rejection::conflict(format!(
                "at: complaint {} was filed at {}; it cannot be answered at {}, before it was received",
                c.complaint_id,
                filed_at.to_rfc3339(),
                at.to_rfc3339()
            )));
        }
        Ok(CohortEvent::ComplaintAnswered {
            cohort_id: c.cohort_id,
            complaint_id: c.complaint_id,
            answer: c.answer,
            action: c.action,
        })
    }
}

/// `from` split into `(role, name)`, or `invalid`: the role is lower-case letters and `_`,
/// the name is not empty and has no surrounding white space.
fn complainant(from: &str) -> Result<(&str, &str), Rejection> {
    match from.split_once(':') {
        Some((role, name))
            if !role.is_empty()
                && role.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')
                && !name.trim().is_empty()
                && name.trim() == name =>
        {
            Ok((role, name))
        }
        _ => Err(Rejection::invalid(format!(
            "data.from: {from:?} is not of the form role:name (e.g. learner:<learner_id>, organisation:<name>)"
        ))),
    }
}

/// `invalid` naming `field` when `text` is empty or only white space.
fn not_blank(field: &str, text: &str) -> Result<(), Rejection> {
    if text.trim().is_empty() {
        return Err(Rejection::invalid(format!("{field}: must not be empty")));
    }
    Ok(())
}
