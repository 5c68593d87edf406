//! The import's batches in a pipeline: batch n+1 is decided while batch n's append runs.
//!
//! Deciding is work in this process, appending is work in the database: one after the other,
//! each waits for the other (`fieldtrail bench`, 2026-12-08: the importing process and
//! PostgreSQL each about half busy). Here batch n's append runs in its own task while batch
//! n+1 is decided against the same overlay, which holds batch n's states (each entry says
//! which batch decided it). Batch n+1 is appended only once batch n's append is done, so the
//! appends keep the order and the expected versions of the lines. When an append falls back
//! (another writer went first, a command id or a claim already taken), the overlay and the
//! cache entries of its aggregates are dropped, its lines are judged one by one, and the next
//! batch, decided on states that did not happen, is decided again the ordinary way. A line
//! that repeats a command id of the batch being appended, or an erasure (which reads the
//! journal), waits for that append the same way.

use super::{discard, settle, Batch, Overlay, Pending, Stop, BATCH_LINES};
use crate::cli::progress::Progress;
use crate::handler::{CommandHandler, HandleError, Outcome};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::ops::Range;
use tokio::task::JoinHandle;

/// A batch and what its append gave.
type Appended = (Pending, Result<Vec<Vec<i64>>, Stop>);

/// A batch whose append is under way.
struct InFlight {
    number: u64,
    lines: Range<usize>,
    ids: HashSet<String>,
    started: std::time::Instant,
    /// The server's clock when the batch was decided (its lines' `at` were checked against it).
    now: DateTime<Utc>,
    task: AbortOnDrop,
}

/// The append's task, stopped if the import is dropped before it lands (a dropped import
/// appends nothing more: the task's transaction rolls back, as the import's own would).
struct AbortOnDrop(JoinHandle<Appended>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why [`CommandHandler::handle_lines_with_progress`] stopped: the journal failed while the
/// lines `lines` (indices into the input, 0-based) were judged. What was appended before
/// them stays.
#[derive(Debug)]
pub struct BatchFailed {
    /// The lines of the batch that failed.
    pub lines: Range<usize>,
    /// What failed.
    pub error: HandleError,
}

impl CommandHandler {
    /// Judges `lines` (JSON envelopes, in order) in batches of [`BATCH_LINES`], as
    /// [`CommandHandler::handle_batch_with_progress`] judges each batch, with the next batch
    /// decided while the previous one is appended (see the module documentation): one
    /// outcome per line, in order, the same outcomes as one batch after the other. `clock`
    /// is the server's clock, read once per batch (a line's `at` is checked against it).
    ///
    /// # Errors
    /// [`BatchFailed`] when the journal cannot be used; the batches before the failing one
    /// are appended.
    pub async fn handle_lines_with_progress(
        &self,
        lines: &[&str],
        clock: &(dyn Fn() -> DateTime<Utc> + Sync),
        actor: Option<&str>,
        progress: &Progress,
    ) -> Result<Vec<Outcome>, BatchFailed> {
        let overlay: Overlay = std::sync::Arc::default();
        let mut outcomes = Vec::with_capacity(lines.len());
        let mut in_flight: Option<InFlight> = None;
        for (n, start) in (0..lines.len()).step_by(BATCH_LINES).enumerate() {
            let range = start..(start + BATCH_LINES).min(lines.len());
            let chunk = &lines[range.clone()];
            // Numbered from 1 (0: a batch judged alone).
            let number = n as u64 + 1;
            let started = std::time::Instant::now();
            let now = clock();
            let had_flight = in_flight.is_some();
            let mut counted = 0;
            let prepared = self
                .prepare_batch(
                    chunk,
                    now,
                    actor,
                    progress,
                    &mut counted,
                    Batch {
                        overlay: &overlay,
                        number,
                        after_pending: in_flight.is_some(),
                        pending_ids: in_flight.as_ref().map(|f| &f.ids),
                    },
                )
                .await;
            let mut previous_fell_back = false;
            if let Some(flight) = in_flight.take() {
                previous_fell_back = !self
                    .land(flight, lines, &overlay, actor, &mut outcomes)
                    .await?;
            }
            match prepared {
                Ok(mut pending) if !previous_fell_back => {
                    let journal = self.journal().clone();
                    in_flight = Some(InFlight {
                        number,
                        lines: range,
                        ids: std::mem::take(&mut pending.ids),
                        started,
                        now,
                        task: AbortOnDrop(tokio::spawn(async move {
                            let appended = super::append(&journal, &pending).await;
                            (pending, appended)
                        })),
                    });
                }
                Err(Stop::Failed(error)) if !previous_fell_back => {
                    discard(&overlay, self.cache());
                    return Err(BatchFailed {
                        lines: range,
                        error,
                    });
                }
                // Something the bulk path does not judge, with nothing else under way: line by
                // line (the ordinary batch would decide it again only to stop at it).
                Err(Stop::Fallback) if !had_flight => {
                    discard(&overlay, self.cache());
                    for line in chunk {
                        let outcome =
                            self.handle_json_as(line, now, actor)
                                .await
                                .map_err(|error| BatchFailed {
                                    lines: range.clone(),
                                    error,
                                })?;
                        outcomes.push(outcome);
                    }
                    progress.inc((chunk.len() - counted.min(chunk.len())) as u64);
                }
                // Decided on states that did not happen (the previous batch fell back), or
                // waiting for the batch that was under way: the ordinary way, now that nothing
                // else is under way.
                _ => {
                    discard(&overlay, self.cache());
                    let judged_now = self
                        .handle_batch_with_progress(chunk, now, actor, &Progress::hidden())
                        .await
                        .map_err(|error| BatchFailed {
                            lines: range.clone(),
                            error,
                        })?;
                    progress.inc((chunk.len() - counted.min(chunk.len())) as u64);
                    outcomes.extend(judged_now);
                }
            }
        }
        if let Some(flight) = in_flight.take() {
            self.land(flight, lines, &overlay, actor, &mut outcomes)
                .await?;
        }
        settle(&overlay, self.cache(), None);
        Ok(outcomes)
    }

    /// Waits for `flight`'s append and adds its lines' outcomes to `outcomes`. `true` when it
    /// appended (its states move to the cache); `false` when it fell back: the overlay is
    /// dropped and its lines were judged one by one.
    async fn land(
        &self,
        flight: InFlight,
        lines: &[&str],
        overlay: &Overlay,
        actor: Option<&str>,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<bool, BatchFailed> {
        let mut flight = flight;
        let failed = |error| BatchFailed {
            lines: flight.lines.clone(),
            error,
        };
        let (pending, appended) = (&mut flight.task.0).await.map_err(|e| {
            failed(HandleError::Internal(format!(
                "an import append stopped: {e}"
            )))
        })?;
        match appended {
            Ok(positions) => {
                settle(overlay, self.cache(), Some(flight.number));
                outcomes.extend(pending.answers(&positions));
                judged(outcomes, flight.started, flight.lines.len());
                Ok(true)
            }
            Err(Stop::Failed(error)) => {
                discard(overlay, self.cache());
                Err(failed(error))
            }
            Err(Stop::Fallback) => {
                discard(overlay, self.cache());
                drop(pending);
                for line in &lines[flight.lines.clone()] {
                    let outcome = self
                        .handle_json_as(line, flight.now, actor)
                        .await
                        .map_err(failed)?;
                    outcomes.push(outcome);
                }
                Ok(false)
            }
        }
    }
}

/// Counts the last `n` outcomes into the command metrics (source `import`).
fn judged(outcomes: &[Outcome], started: std::time::Instant, n: usize) {
    let each = started.elapsed() / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    for outcome in &outcomes[outcomes.len().saturating_sub(n)..] {
        let label = crate::http::metrics::outcome_label(&Ok(outcome.clone()));
        crate::http::metrics::command_judged("import", &label, each);
    }
}
