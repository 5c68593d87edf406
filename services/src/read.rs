//! Reading stored read-model documents.

use fieldtrail_journal::checkpoint::PROJECTOR;
use fieldtrail_journal::{Journal, JournalError};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Kind of the timetable documents (key: cohort id).
pub const TIMETABLE: &str = "timetable";
/// Kind of the transcript documents (key: [`transcript_key`]).
pub const TRANSCRIPT: &str = "transcript";
/// Kind of the evaluation history documents (key: field study id).
pub const HISTORY: &str = "history";

/// Kind of the complaints registers (key: cohort id; stored once the cohort has a complaint).
pub const COMPLAINTS: &str = "complaints";

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

/// The complaints register of a cohort: the stored one, or an empty register for an opened
/// cohort that has no complaint (none is stored then); `None` for an unknown cohort.
///
/// # Errors
/// When the journal cannot be read.
pub async fn complaints_register(
    journal: &Journal,
    cohort_id: &str,
) -> anyhow::Result<Option<Value>> {
    if let Some(register) = document(journal, COMPLAINTS, cohort_id).await? {
        return Ok(Some(register));
    }
    Ok(document(journal, TIMETABLE, cohort_id)
        .await?
        .map(|_| serde_json::json!({"cohort_id": cohort_id, "complaints": []})))
}

/// `register` narrowed to the complaints filed by `learner_id` (`from` is
/// `learner:<learner_id>`, or the bare id): what a learner may read of it.
pub fn own_complaints(mut register: Value, learner_id: &str) -> Value {
    let tagged = format!("learner:{learner_id}");
    if let Some(Value::Array(complaints)) = register.get_mut("complaints") {
        complaints.retain(|c| {
            c.get("from")
                .and_then(Value::as_str)
                .is_some_and(|from| from == tagged || from == learner_id)
        });
    }
    register
}

/// Every stored document, ordered by kind and key: `(kind, key, document)`.
///
/// # Errors
/// When the journal cannot be read.
pub async fn all_documents(journal: &Journal) -> anyhow::Result<Vec<(String, String, Value)>> {
    Ok(journal.documents().await?)
}

/// Whether the read models reached a minimum position ([`wait_for_position`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// They include the event at the minimum: the position they reflect (the projector
    /// checkpoint's).
    Yes(i64),
    /// Not within the bound: the position they reflect and the journal's head then.
    No {
        /// The position the read models reflect.
        reflected: i64,
        /// The journal's highest committed position.
        head: i64,
    },
}

/// Waits up to `limit` until the read models include the event at global position `min`:
/// the projector's checkpoint is at or past that event's global-log cursor
/// ([`fieldtrail_journal::Backend::cursor_at`]; on PostgreSQL the log is ordered by
/// transaction, so comparing positions alone would not do). Polls every 10 ms. What the HTTP
/// API's `min_position` and `fieldtrail import`/`demo`/`report --min-position` use.
///
/// # Errors
/// When the journal cannot be read.
pub async fn wait_for_position(
    journal: &Journal,
    min: i64,
    limit: Duration,
) -> Result<Reached, JournalError> {
    let deadline = Instant::now() + limit;
    // The cursor of the event at `min`, looked up once the journal holds it.
    let mut target = None;
    loop {
        let head = journal.head().await?;
        let checkpoint = journal.checkpoint(PROJECTOR).await?;
        if target.is_none() && min <= head {
            target = Some(journal.cursor_at(min).await?);
        }
        if target.is_some_and(|t| checkpoint >= t) {
            return Ok(Reached::Yes(checkpoint.position));
        }
        if Instant::now() >= deadline {
            return Ok(Reached::No {
                reflected: checkpoint.position,
                head,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
