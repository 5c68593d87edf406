//! `fieldtrail retention --group-texts-years N`: the retention rule of personal data, applied when the operator
//! runs it, each erasure an `erase_subject` command (so logged as `subject_erased`).
//!
//! The rule: a field study's group texts (subject `field_study:<id>`: reflexive notes,
//! intervention summaries, with whom the commission was negotiated, why members left) are kept
//! `group_texts_years` years after the field study's cohort closed (`cohort_closed`'s
//! `occurred_at`), then erased. Each erasure's command id is `retention-<subject id>`, so
//! running the job again appends nothing (a duplicate), and a subject erased otherwise is
//! reported as such.

use crate::handler::{CommandHandler, Outcome};
use chrono::{DateTime, Months, Utc};
use fieldtrail_domain::{AnyEvent, CohortEvent, CommandEnvelope, FieldStudyEvent};
use fieldtrail_journal::{Cursor, Journal};
use std::collections::BTreeMap;

/// The actor of the retention's erasures.
pub const ACTOR: &str = "staff:retention";

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Subjects erased by this run.
    pub erased: Vec<String>,
    /// Subjects due that were erased already (by an earlier run or by hand).
    pub already: Vec<String>,
    /// Field studies of closed cohorts not due yet.
    pub kept: usize,
}

/// Applies the rule at `now` (see the module documentation).
///
/// # Errors
/// When the journal cannot be read or a command fails for a technical reason.
pub async fn apply(
    handler: &CommandHandler,
    journal: &Journal,
    group_texts_years: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<RetentionReport> {
    // One pass over the log: when each cohort closed, and each field study's cohort.
    let mut closed: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut studies: BTreeMap<String, String> = BTreeMap::new();
    let mut cursor = Cursor::default();
    loop {
        let page = journal.read(cursor, 4096).await?;
        let Some(last) = page.last() else { break };
        cursor = Cursor::after(last);
        for row in &page {
            match row.decode()? {
                AnyEvent::Cohort(CohortEvent::CohortClosed { cohort_id }) => {
                    closed.insert(cohort_id.to_string(), row.occurred_at);
                }
                AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed {
                    field_study_id,
                    cohort_id,
                    ..
                }) => {
                    studies.insert(field_study_id.to_string(), cohort_id.to_string());
                }
                _ => {}
            }
        }
    }
    let mut report = RetentionReport::default();
    for (study, cohort) in &studies {
        let Some(closed_at) = closed.get(cohort) else {
            continue;
        };
        let due = closed_at
            .checked_add_months(Months::new(group_texts_years.saturating_mul(12)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if due > now {
            report.kept += 1;
            continue;
        }
        let subject = format!("field_study:{study}");
        let line = serde_json::json!({
            "command_id": format!("retention-{}", subject.replace([':', '_'], "-")),
            "command": "erase_subject",
            "at": now.to_rfc3339(),
            "actor": ACTOR,
            "data": {
                "subject_id": subject,
                "reason": format!(
                    "retention: group texts kept {group_texts_years} years after cohort {cohort} closed ({})",
                    closed_at.date_naive()
                ),
            },
        });
        let envelope = CommandEnvelope::parse_line(&line.to_string())
            .map_err(|r| anyhow::anyhow!("retention command: {}", r.message))?;
        match handler.handle_as(&envelope, now, Some(ACTOR)).await? {
            Outcome::Applied { .. } => report.erased.push(subject),
            Outcome::Duplicate { .. } => report.already.push(subject),
            Outcome::Rejected {
                code: fieldtrail_domain::Code::Conflict,
                ..
            } => report.already.push(subject),
            Outcome::Rejected { message, .. } => {
                anyhow::bail!("retention: erasing {subject} was refused: {message}")
            }
        }
    }
    Ok(report)
}
