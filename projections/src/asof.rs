//! `as_of` answers: the read models as they stood at a cut of the journal, by folding only the
//! events the cut keeps ([`fieldtrail_journal::audit::Cut`]: a global position, a recorded
//! time or an occurred time) in global-log order. Nothing is stored; the answer equals a
//! projection rebuilt from the journal cut at that point, since the read models are a pure fold.
//!
//! [`document_as_of`] folds only the streams the document depends on (in global-log order):
//! a timetable, its cohort and the cohort's programme; a transcript, those and the field
//! studies formed in the cohort (membership, defence results); an evaluation history, its field
//! study; a complaints register, its cohort. The fold of a stream never reads another stream's state beyond these links, so the
//! document is the same as in the fold of every stream ([`models_as_of`]), at the cost of the
//! document's own streams rather than of the whole journal.

use crate::store::recorded_owned;
use crate::{DocKey, DocKind, ReadModels};
use fieldtrail_journal::audit::{Cut, StreamSet};
use fieldtrail_journal::{Cursor, Journal, JournalError, StoredEvent, StreamQuery};
use serde_json::Value;

/// Events read per query.
const PAGE: i64 = 10 * crate::runner::BATCH;

/// The read models folded from every event `cut` keeps (the whole journal up to the cut).
///
/// # Errors
/// When the journal fails, or an event of the cut cannot be read (the error names it).
pub async fn models_as_of(journal: &Journal, cut: Cut) -> Result<ReadModels, JournalError> {
    fold(|after| journal.read_log(cut, None, after, PAGE)).await
}

/// The document named by `key` as it stood at `cut`, `None` when it did not exist then;
/// folds only the streams it depends on (see the module documentation).
///
/// # Errors
/// When the journal fails, or an event of the cut cannot be read (the error names it).
pub async fn document_as_of(
    journal: &Journal,
    key: &DocKey,
    cut: Cut,
) -> Result<Option<Value>, JournalError> {
    let mut streams = StreamSet::default();
    match key.kind {
        DocKind::History => streams.field_studies.push(key.key.clone()),
        DocKind::Complaints => streams.cohorts.push(key.key.clone()),
        DocKind::Timetable | DocKind::Transcript => {
            let cohort_id = key.key.split_once('/').map_or(key.key.as_str(), |(c, _)| c);
            let Some(programme_id) = journal
                .find_streams(StreamQuery::ProgrammeOf { cohort_id })
                .await?
                .into_iter()
                .next()
            else {
                return Ok(None);
            };
            streams.programmes.push(programme_id);
            streams.cohorts.push(cohort_id.to_owned());
            if key.kind == DocKind::Transcript {
                let mut ids = journal
                    .find_streams(StreamQuery::FieldStudiesOf { cohort_id })
                    .await?;
                ids.sort();
                ids.dedup();
                streams.field_studies = ids;
            }
        }
    }
    let models = fold(|after| journal.read_log(cut, Some(&streams), after, PAGE)).await?;
    Ok(models.document(key))
}

async fn fold<F, Fut>(mut page: F) -> Result<ReadModels, JournalError>
where
    F: FnMut(Cursor) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<StoredEvent>, JournalError>>,
{
    let mut models = ReadModels::new();
    let mut cursor = Cursor::default();
    loop {
        let events = page(cursor).await?;
        let Some(last) = events.last() else {
            return Ok(models);
        };
        cursor = Cursor::after(last);
        for event in events {
            models.apply(&recorded_owned(event)?);
        }
    }
}
