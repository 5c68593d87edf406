//! The complaints register of a cohort (FORMAT.md, "Second vocabulary: the harder paths"): what
//! a training centre shows for Qualiopi indicator 31 (every complaint received gets an answer
//! and an action).

use crate::time::utc;
use chrono::{DateTime, Utc};
use chrono_tz::Europe::Paris;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The complaints register of a cohort. Document kind `complaints`, keyed by the cohort id;
/// stored once the cohort has a complaint (a cohort without one has an empty register).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintsRegister {
    /// The cohort.
    pub cohort_id: String,
    /// Every complaint, sorted by `filed_at`, then `complaint_id`.
    pub complaints: Vec<ComplaintEntry>,
}

/// One complaint of the register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintEntry {
    /// The complaint.
    pub complaint_id: String,
    /// Who complained, `role:name` as filed (`learner:<learner_id>` for a learner).
    pub from: String,
    /// What it is about.
    pub subject: String,
    /// When it was filed (the `at` of `file_complaint`), RFC 3339 UTC.
    pub filed_at: String,
    /// When it was answered (the `at` of `answer_complaint`), RFC 3339 UTC; `null` while open.
    pub answered_at: Option<String>,
    /// `open` or `answered`.
    pub status: ComplaintStatus,
    /// Europe/Paris calendar days from the filing's date to the answer's (0: answered the
    /// same day); `null` while open.
    pub days_to_answer: Option<i64>,
    /// The answer given; `null` while open (beyond FORMAT.md's shape: what indicator 31 asks
    /// to show).
    pub answer: Option<String>,
    /// The action taken; `null` while open (likewise).
    pub action: Option<String>,
}

/// Whether a complaint has been answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    /// Filed, not answered yet.
    Open,
    /// Answered (with an action).
    Answered,
}

/// A complaint as the fold keeps it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ComplaintState {
    from: String,
    subject: String,
    filed_at: DateTime<Utc>,
    /// `(answered_at, answer, action)`.
    answered: Option<(DateTime<Utc>, String, String)>,
}

/// The complaints of a cohort as the fold keeps them, by complaint id.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Complaints(BTreeMap<String, ComplaintState>);

impl Complaints {
    /// Whether no complaint was filed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A complaint filed at `filed_at` (a second filing of the same id changes nothing).
    pub fn file(&mut self, complaint_id: &str, from: &str, subject: &str, filed_at: DateTime<Utc>) {
        self.0
            .entry(complaint_id.to_owned())
            .or_insert_with(|| ComplaintState {
                from: from.to_owned(),
                subject: subject.to_owned(),
                filed_at,
                answered: None,
            });
    }

    /// The answer to a filed complaint (the first one counts; unknown ids change nothing).
    pub fn answer(
        &mut self,
        complaint_id: &str,
        answered_at: DateTime<Utc>,
        answer: &str,
        action: &str,
    ) {
        if let Some(c) = self.0.get_mut(complaint_id) {
            c.answered
                .get_or_insert_with(|| (answered_at, answer.to_owned(), action.to_owned()));
        }
    }

    /// The register document.
    pub fn render(&self, cohort_id: &str) -> ComplaintsRegister {
        let mut complaints: Vec<(&DateTime<Utc>, ComplaintEntry)> = self
            .0
            .iter()
            .map(|(complaint_id, c)| {
                let answered = c.answered.as_ref();
                (
                    &c.filed_at,
                    ComplaintEntry {
                        complaint_id: complaint_id.clone(),
                        from: c.from.clone(),
                        subject: c.subject.clone(),
                        filed_at: utc(&c.filed_at),
                        answered_at: answered.map(|(at, _, _)| utc(at)),
                        status: if answered.is_some() {
                            ComplaintStatus::Answered
                        } else {
                            ComplaintStatus::Open
                        },
                        days_to_answer: answered.map(|(at, _, _)| paris_days(&c.filed_at, at)),
                        answer: answered.map(|(_, answer, _)| answer.clone()),
                        action: answered.map(|(_, _, action)| action.clone()),
                    },
                )
            })
            .collect();
        complaints
            .sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.complaint_id.cmp(&y.complaint_id)));
        ComplaintsRegister {
            cohort_id: cohort_id.to_owned(),
            complaints: complaints.into_iter().map(|(_, c)| c).collect(),
        }
    }
}

/// Europe/Paris calendar days from the date of `from` to the date of `to`.
fn paris_days(from: &DateTime<Utc>, to: &DateTime<Utc>) -> i64 {
    let day = |t: &DateTime<Utc>| t.with_timezone(&Paris).date_naive();
    (day(to) - day(from)).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn days_are_paris_calendar_days_and_the_register_is_sorted() {
        let mut c = Complaints::default();
        // Filed at 23:30 in Paris (21:30 UTC, summer), answered at 00:10 the next day in Paris
        // (22:10 UTC the same UTC day): one Paris calendar day.
        c.file("k2", "learner:l1", "salle", t("2025-10-01T21:30:00Z"));
        c.answer("k2", t("2025-10-01T22:10:00Z"), "désolés", "affichage");
        // k1 and k3 share a filing instant, half a second after k0: sorted by id.
        c.file("k3", "staff:x", "b", t("2025-09-30T08:00:00.500Z"));
        c.file("k1", "staff:x", "a", t("2025-09-30T08:00:00.500Z"));
        c.file("k0", "staff:x", "z", t("2025-09-30T08:00:00Z"));
        c.answer("k0", t("2025-10-31T16:00:00Z"), "r", "a");
        let register = c.render("c1");
        let ids: Vec<&str> = register
            .complaints
            .iter()
            .map(|c| c.complaint_id.as_str())
            .collect();
        assert_eq!(ids, ["k0", "k1", "k3", "k2"]);
        let days: Vec<Option<i64>> = register
            .complaints
            .iter()
            .map(|c| c.days_to_answer)
            .collect();
        assert_eq!(days, [Some(31), None, None, Some(1)]);
        assert_eq!(register.complaints[1].status, ComplaintStatus::Open);
        assert_eq!(
            register.complaints[3].answered_at.as_deref(),
            Some("2025-10-01T22:10:00Z")
        );
        assert_eq!(register.complaints[1].filed_at, "2025-09-30T08:00:00.500Z");
    }
}
