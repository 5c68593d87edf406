//! What runs in the background of `fieldtrail serve`: the projector loop, the NATS relay and
//! the leader election that makes one process run each of them on PostgreSQL.

pub mod leader;
pub mod relay;

use crate::handler::FROZEN;
use fieldtrail_journal::Journal;
use fieldtrail_projections::runner::Projector;
use leader::Leadership;
use relay::Relay;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the projector and relay look for new events when no notification came.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long the projector lets commits gather after a notification before it reads them, so
/// that one read-model write serves the commands of that interval instead of one each (a
/// read-your-writes read, `min_position`, waits at most this much longer).
pub const PROJECTOR_DEBOUNCE: Duration = Duration::from_millis(20);

/// Waits for `notified` (armed before the work it follows, so that a commit made during that
/// work is not missed: [`Notify::notify_waiters`] stores no permit), `pause`, or `shutdown`;
/// then waits `debounce` more after a notification; false when shutting down.
async fn wait(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    shutdown: &CancellationToken,
    pause: Duration,
    debounce: Duration,
) -> bool {
    tokio::select! {
        () = notified => {
            if !debounce.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(debounce) => {}
                    () = shutdown.cancelled() => return false,
                }
            }
            true
        }
        _ = tokio::time::sleep(pause) => true,
        _ = shutdown.cancelled() => false,
    }
}

fn frozen() -> bool {
    FROZEN.load(std::sync::atomic::Ordering::SeqCst)
}

/// The projector loop: while this process leads the projector (always on the embedded
/// journal), folds new events into the read models, woken by `notify` (then
/// [`PROJECTOR_DEBOUNCE`] later) or every [`POLL_INTERVAL`]; ends when `shutdown` is cancelled (the batch under way finishes).
pub async fn project_forever(
    journal: Journal,
    mut lead: Leadership,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut projector: Option<Projector> = None;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut pause = POLL_INTERVAL;
        if frozen() {
            // A failpoint is killing the process: touch nothing.
        } else if !lead.hold().await {
            // Another process runs the projector; our in-memory state would go stale.
            projector = None;
        } else {
            match projector.as_mut() {
                None => match Projector::start(journal.clone()).await {
                    Ok(p) => {
                        projector = Some(p);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "projector cannot start; retrying");
                        pause = Duration::from_secs(1);
                    }
                },
                Some(p) => {
                    if let Err(e) = project_batches(p, &shutdown).await {
                        crate::http::metrics::projector_error();
                        tracing::error!(error = %e, "projector stopped; retrying");
                        pause = Duration::from_secs(1);
                    }
                }
            }
        }
        if !wait(notified, &shutdown, pause, PROJECTOR_DEBOUNCE).await {
            lead.release();
            return;
        }
    }
}

/// The relay loop: while this process leads the relay of `stream`, publishes new events to
/// JetStream, woken by `notify` or every [`POLL_INTERVAL`]; ends when `shutdown` is cancelled.
pub async fn relay_forever(
    relay: Relay,
    mut lead: Leadership,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
    stream: String,
) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut pause = POLL_INTERVAL;
        if !frozen() && lead.hold().await {
            if let Err(e) = relay_batches(&relay, &shutdown, &stream).await {
                crate::http::metrics::relay_error(&stream);
                tracing::warn!(error = %e, "relay could not publish; retrying");
                pause = Duration::from_secs(1);
            }
        } else {
            // Another process may lead: start again from the stored checkpoint.
            relay.forget();
        }
        if !wait(notified, &shutdown, pause, Duration::ZERO).await {
            if !frozen() {
                if let Err(e) = relay.flush().await {
                    tracing::warn!(error = %e, "relay checkpoint not written at shutdown");
                }
            }
            lead.release();
            return;
        }
    }
}

/// Projector batches until caught up or a shutdown begins (the batch under way finishes:
/// its documents and checkpoint commit together).
async fn project_batches(
    projector: &mut Projector,
    shutdown: &CancellationToken,
) -> Result<(), fieldtrail_journal::JournalError> {
    while !shutdown.is_cancelled() && !frozen() {
        let applied = projector.run_once().await?;
        crate::http::metrics::projector_batch(applied);
        // A batch shorter than a full page read the log to its readable end: caught up. (A
        // commit made meanwhile notified the loop, which armed its wait before this work.)
        if applied < fieldtrail_projections::runner::BATCH as usize {
            break;
        }
    }
    Ok(())
}

/// One relay run: [`Relay::run_once`] reads the log page by page to its readable end (the
/// run under way finishes on a shutdown: every publish acknowledged, then the checkpoint). A
/// commit made meanwhile notified the loop, which armed its wait before this work: a second
/// run here would only read an empty page.
async fn relay_batches(
    relay: &Relay,
    shutdown: &CancellationToken,
    stream: &str,
) -> anyhow::Result<()> {
    if !shutdown.is_cancelled() && !frozen() {
        let published = relay.run_once().await?;
        crate::http::metrics::relay_batch(stream, published);
    }
    Ok(())
}
