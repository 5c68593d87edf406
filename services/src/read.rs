//! Reading stored read-model documents.

use deadpool_postgres::Pool;
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
/// When PostgreSQL cannot be read.
pub async fn document(pool: &Pool, kind: &str, key: &str) -> anyhow::Result<Option<Value>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT document FROM read_models WHERE kind = $1 AND key = $2",
            &[&kind, &key],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Every stored document, ordered by kind and key: `(kind, key, document)`.
///
/// # Errors
/// When PostgreSQL cannot be read.
pub async fn all_documents(pool: &Pool) -> anyhow::Result<Vec<(String, String, Value)>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT kind, key, document FROM read_models ORDER BY kind, key",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
