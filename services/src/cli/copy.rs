//! `fieldtrail copy --from URL --to URL`: moves a journal between backends (embedded SQLite
//! and PostgreSQL, either way, or to a new database of the same kind).
//!
//! Every event is copied exactly as stored: global position, event id, stream version, times,
//! actors, command and correlation ids, payload and the hash chain columns, in the source's
//! global-log order (on PostgreSQL the rows get new transaction ids, in the same order; SQLite
//! keeps the source's); then the command ledger, the key table (the subjects' keys, wrapped by
//! the master key, which the target must share), the published signing keys with their
//! endorsements, and the signed digests under their own numbers. A digest names its cut by the
//! global position of the cut's last row (its transaction id is advisory), so a digest signed
//! on the source checks the copy's export too. The target must be empty. The reservations (the
//! claims of the rules across aggregates) and the read models are then rebuilt on the target
//! from the copied events, and the target's chain is verified:
//! the copy is refused (an error) if it does not verify.

use crate::cli::progress::Progress;
use fieldtrail_journal::{Cursor, Journal};
use fieldtrail_projections::runner;

/// Events read and written per batch.
pub const BATCH: i64 = 5000;

/// What a copy did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Events copied.
    pub events: u64,
    /// Command ledger rows copied.
    pub commands: u64,
    /// Events the target's read models were rebuilt from.
    pub folded: u64,
    /// Reservations the target holds, rebuilt from the copied events
    /// ([`fieldtrail_journal::reservations`]).
    pub reservations: u64,
    /// The target's head position after the copy (the source's at the time of the copy).
    pub head: i64,
    /// Published signing keys copied.
    pub signing_keys: u64,
    /// Signed digests copied.
    pub digests: u64,
}

/// Copies the journal `from` into the empty journal `to` (see the module documentation).
///
/// # Errors
/// When `to` is not empty, either journal fails, or the copy does not verify on the target.
pub async fn copy(from: &Journal, to: &Journal, progress: &Progress) -> anyhow::Result<CopyReport> {
    let target_head = to.head().await?;
    anyhow::ensure!(
        target_head == 0,
        "the target journal is not empty (head position {target_head}): copy into an empty one"
    );
    // What is carried besides the events is read first, so that a source the target would
    // refuse fails the copy before anything is written. A malformed key row (not one
    // fieldtrail wrote: nothing publishes it on the source either) is left behind, logged.
    let (signing_keys, malformed): (Vec<_>, Vec<_>) = from
        .published_keys()
        .await?
        .into_iter()
        .partition(fieldtrail_journal::signing_keys::PublishedKey::is_well_formed);
    for key in &malformed {
        tracing::warn!(kid = %key.kid, "a malformed signing key row of the source is not copied");
    }
    let digests = from.digests().await?;
    // The source's global log stops below its server's oldest running transaction: wait until
    // everything committed before the copy began is readable, or the copy would silently lack
    // the newest events (and still verify).
    crate::signing::digest::readable(from).await?;
    let mut cursor = Cursor::default();
    let mut events = 0u64;
    let mut commands = std::collections::HashSet::new();
    loop {
        let batch = from.export_events(cursor, BATCH).await?;
        let Some(last) = batch.last() else { break };
        cursor = Cursor {
            tx_id: last.tx_id,
            position: last.position,
        };
        commands.extend(batch.iter().map(|e| e.command_id.clone()));
        to.import_events(&batch, &[]).await?;
        events += batch.len() as u64;
        progress.inc(batch.len() as u64);
    }
    let head = to.head().await?;
    // The ledger rows of the commands whose events were copied, read after the events (the
    // ledger row commits with its events): a command committed after the events were read is
    // not copied at all.
    let copied: Vec<_> = from
        .export_ledger()
        .await?
        .into_iter()
        .filter(|l| commands.contains(&l.command_id))
        .collect();
    to.import_events(&[], &copied).await?;
    // The refusals the rules gave (spent command ids: re-sending one answers it again).
    to.record_rejections(&from.export_rejections().await?)
        .await?;
    // The key table, wrapped as it is (the target needs the same master key): without it the
    // copied personal fields could not be read.
    to.insert_subject_keys(&from.export_subject_keys().await?)
        .await?;
    // The published keys (endorsements included) and the signed digests (their numbers
    // kept), so that the copy publishes the same keys and checks against the same digests.
    to.publish_keys(&signing_keys).await?;
    for d in &digests {
        to.store_digest(d).await?;
    }
    // The reservations (rules across aggregates) are rebuilt from the copied events, so the
    // copy refuses what the source refuses.
    let reservations = to.rebuild_reservations().await?.held;
    // The rebuild reads the global log, which on PostgreSQL stops below the server's oldest
    // running transaction (any database's): wait until the copied rows are readable, or the
    // read models would miss them.
    anyhow::ensure!(
        to.wait_readable(std::time::Duration::from_secs(60)).await?,
        "a transaction on the target's PostgreSQL server has held the global log back for 60 s; the copied events are stored but the read models were not rebuilt: run `fieldtrail replay` on the target"
    );
    let folded = runner::rebuild(to).await? as u64;
    let report = to.verify(None).await?;
    anyhow::ensure!(
        report.intact(),
        "the copy does not verify on the target: {}",
        report
            .breaks
            .first()
            .map(fieldtrail_journal::audit::describe)
            .unwrap_or_default()
    );
    Ok(CopyReport {
        events,
        commands: copied.len() as u64,
        folded,
        reservations,
        head,
        signing_keys: signing_keys.len() as u64,
        digests: digests.len() as u64,
    })
}
