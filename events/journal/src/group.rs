//! The queue of a group commit, shared by both backends: concurrent appends wait in it; the
//! first to find it empty leads, takes everything queued by the time it can write, and
//! commits it in one transaction ([`crate::PgJournal::group_append`],
//! `sqlite::write::group_commit`), answering each append through its reply channel.

use crate::{CommandMetadata, JournalError, NewEvent};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Where a queued append's answer arrives: its positions, or its error.
pub(crate) type Answer = oneshot::Receiver<Result<Vec<i64>, JournalError>>;

/// One command's append waiting for a group commit.
pub(crate) struct PendingAppend {
    pub(crate) stream_type: String,
    pub(crate) stream_id: String,
    pub(crate) expected: i64,
    pub(crate) events: Vec<NewEvent>,
    pub(crate) metadata: CommandMetadata,
    pub(crate) reply: oneshot::Sender<Result<Vec<i64>, JournalError>>,
}

/// The waiting appends (cheap to clone: shared).
#[derive(Clone, Default)]
pub(crate) struct AppendQueue(Arc<Mutex<Vec<PendingAppend>>>);

impl AppendQueue {
    /// Queues an append; returns the channel of its answer and whether the caller leads (the
    /// queue was empty).
    ///
    /// # Errors
    /// [`JournalError::Other`] when the queue's lock is poisoned.
    pub(crate) fn push(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: i64,
        events: &[NewEvent],
        metadata: &CommandMetadata,
    ) -> Result<(Answer, bool), JournalError> {
        let (reply, answer) = oneshot::channel();
        let mut pending = self
            .0
            .lock()
            .map_err(|_| JournalError::Other("append queue poisoned".into()))?;
        pending.push(PendingAppend {
            stream_type: stream_type.to_owned(),
            stream_id: stream_id.to_owned(),
            expected,
            events: events.to_vec(),
            metadata: metadata.clone(),
            reply,
        });
        Ok((answer, pending.len() == 1))
    }

    /// Everything queued now (the leader's batch).
    pub(crate) fn take(&self) -> Vec<PendingAppend> {
        self.0
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

/// Waits for the answer of a queued append.
///
/// # Errors
/// The append's own error, or [`JournalError::Other`] when its leader stopped before answering.
pub(crate) async fn answer(answer: Answer) -> Result<Vec<i64>, JournalError> {
    answer
        .await
        .map_err(|_| JournalError::Other("the journal writer stopped before answering".into()))?
}
