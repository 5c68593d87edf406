//! The complaints of a cohort (Qualiopi indicator 31: every complaint is answered, with an
//! action): `file_complaint` and `answer_complaint`.

use super::Cohort;
use crate::command::{AnswerComplaint, FileComplaint};
use crate::error::Rejection;
use crate::event::CohortEvent;

impl Cohort {
    /// `file_complaint`: `already_exists` for a complaint id already filed in the cohort.
    pub(super) fn file_complaint(&self, c: FileComplaint) -> Result<CohortEvent, Rejection> {
        if self.complaints.iter().any(|(id, _)| *id == c.complaint_id) {
            return Err(Rejection::already_exists(format!(
                "data.complaint_id: complaint {} already exists in cohort {}",
                c.complaint_id, c.cohort_id
            )));
        }
        Ok(CohortEvent::ComplaintFiled {
            cohort_id: c.cohort_id,
            complaint_id: c.complaint_id,
            from: c.from,
            subject: c.subject,
            text: c.text,
        })
    }

    /// `answer_complaint`: `not_found` for an unknown complaint; `conflict` once answered.
    pub(super) fn answer_complaint(&self, c: AnswerComplaint) -> Result<CohortEvent, Rejection> {
        match self.complaints.iter().find(|(id, _)| *id == c.complaint_id) {
            None => Err(Rejection::not_found(format!(
                "data.complaint_id: complaint {} does not exist in cohort {}",
                c.complaint_id, c.cohort_id
            ))),
            Some((_, true)) => Err(Rejection::conflict(format!(
                "complaint {} is already answered",
                c.complaint_id
            ))),
            Some(_) => Ok(CohortEvent::ComplaintAnswered {
                cohort_id: c.cohort_id,
                complaint_id: c.complaint_id,
                answer: c.answer,
                action: c.action,
            }),
        }
    }
}
