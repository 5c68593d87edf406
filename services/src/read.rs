//! Reading stored read-model documents.

use fieldtrail_journal::Journal;
use serde_json::Value;

/// Kind of the timetable documents (key: cohort id).
pub const TIMETABLE: &str = "timetable";
/// Kind of the transcript documents (key: [`transcript_key`]).
pub const TRANSCRIPT: &str = "transcript";
/// Kind of the evaluation history documents (key: field study id).
pub const HISTORY: &str = "history";

/// The key of a learner's transcript in a cohort: `cohort_id/learner_id`.
pub fn transcript_key(cohort_id: &str, learner_id: &str) -> String {
    format!("{cohort_id}/{learner_id}")
}

/// The stored document of `kind` under `key`, if any.
///
/// # Errors
/// When the journal cannot be read.
pub async fn document(journal: &Journal, kind: &str, key: &str) -> anyhow::Result<Option<Value>> {
    Ok(journal
        .document(kind, key)
        .await?
        .map(|(document, _)| document))
}

/// Every stored document, ordered by kind and key: `(kind, key, document)`.
///
/// # Errors
/// When the journal cannot be read.
pub async fn all_documents(journal: &Journal) -> anyhow::Result<Vec<(String, String, Value)>> {
    Ok(journal.documents().await?)
}
