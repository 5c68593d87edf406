//! `fieldtrail serve`: the HTTP API ([`crate::http`]) and the background workers
//! ([`crate::workers`]: projector, relay) in one process, and its graceful shutdown.

use crate::config::Settings;
use crate::handler::CommandHandler;
use crate::http::{self, AppState};
use crate::workers::leader::{Leadership, Roles, PROJECTOR_KEY, RELAY_CLASS};
use crate::workers::relay::{self, Relay};
use crate::workers::{project_forever, relay_forever};
use anyhow::Context as _;
use fieldtrail_journal::Journal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use crate::workers::POLL_INTERVAL;

/// Opens the journal (creating and migrating it) and connects to NATS when a bus is
/// configured, naming the URL that cannot be reached.
///
/// # Errors
/// A one-line error naming the URL.
pub async fn connect(settings: &Settings) -> anyhow::Result<(Journal, Option<async_nats::Client>)> {
    let journal = crate::open_journal(settings, settings.pool_size).await?;
    let nats = match settings.bus() {
        Some(url) => Some(relay::connect(url).await?),
        None => None,
    };
    Ok((journal, nats))
}

/// Runs the server on `listener` until `shutdown` is cancelled; then `/readyz` fails, the
/// listener closes, in-flight requests finish, the projector ends its batch and the relay its
/// publishes, and the journal closes, all within `settings.shutdown_timeout_secs` (what still
/// runs then is dropped: an unfinished transaction rolls back).
///
/// # Errors
/// When the journal or NATS cannot be reached at start, or the JetStream stream cannot be created.
pub async fn run(
    settings: Settings,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (journal, nats) = connect(&settings).await?;
    match &nats {
        Some(nats) => {
            let js = async_nats::jetstream::new(nats.clone());
            relay::ensure_stream(&js, &settings).await?;
        }
        None => tracing::info!(
            "no NATS (nats.url unset or nats.relay = false): events reach subscribers through GET /events/stream"
        ),
    }
    let ops = crate::http::health::Ops::new(&settings);
    let notify = journal.notifier();
    let listen_task = journal.listen();

    let roles = Arc::new(Roles::default());
    let projector_lead = Leadership::new(
        &settings.database_url,
        PROJECTOR_KEY.0,
        PROJECTOR_KEY.1,
        roles.clone(),
        |r| &r.projector,
    );
    let relay_lead = Leadership::new(
        &settings.database_url,
        RELAY_CLASS,
        &settings.nats_stream,
        roles.clone(),
        |r| &r.relay,
    );
    let projector = tokio::spawn(project_forever(
        journal.clone(),
        projector_lead,
        notify.clone(),
        shutdown.clone(),
    ));
    let relay_task = nats.clone().map(|nats| {
        tokio::spawn(relay_forever(
            Relay::new(journal.clone(), nats, &settings),
            relay_lead,
            notify.clone(),
            shutdown.clone(),
            settings.nats_stream.clone(),
        ))
    });

    // The keys directory's public keys, recorded in the journal so that they stay published
    // if the directory is lost (keys made before the journal kept them included).
    match crate::signing::published::record(&journal, &crate::signing::store(&settings)).await {
        Ok(union) => tracing::info!(keys = union.keys.len(), "signing keys published"),
        Err(e) => {
            tracing::warn!(error = %e, "signing: the keys directory's keys are not recorded in the journal")
        }
    }
    let digests = (settings.digest_interval_secs > 0).then(|| {
        tokio::spawn(crate::signing::digest::sign_periodically(
            journal.clone(),
            crate::signing::store(&settings),
            Duration::from_secs(settings.digest_interval_secs),
            shutdown.clone(),
        ))
    });
    let handler = Arc::new(CommandHandler::new(journal.clone()));
    let app = http::router(AppState {
        handler,
        journal: journal.clone(),
        nats,
        roles,
        body_limit: settings.max_body_bytes,
        request_timeout_secs: settings.request_timeout_secs,
        ops: ops.clone(),
        keys: crate::signing::store(&settings),
    });
    tracing::info!(address = %listener.local_addr()?, "serving");
    let token = shutdown.clone();
    let draining = ops.draining.clone();
    let began = Arc::new(std::sync::OnceLock::<tokio::time::Instant>::new());
    let began_at = began.clone();
    // Answers leave at once (TCP_NODELAY): Nagle's algorithm would hold a response's last
    // segment until the client's acknowledgement of the previous one.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        token.cancelled().await;
        began_at.get_or_init(tokio::time::Instant::now);
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!("shutting down: no new connections; finishing requests in flight");
    });
    let deadline = Duration::from_secs(settings.shutdown_timeout_secs);
    let stopping = async {
        shutdown.cancelled().await;
        tokio::time::sleep(deadline).await;
    };
    tokio::select! {
        served = server => served?,
        _ = stopping => tracing::warn!(?deadline, "requests still running at the shutdown deadline: their connections are closed"),
    }
    let http_done = tokio::time::Instant::now();
    // The HTTP drain used part of the deadline; the background loops get what is left.
    let remaining = deadline.saturating_sub(began.get().map_or(Duration::ZERO, |t| t.elapsed()));
    let mut background = vec![projector];
    background.extend(relay_task);
    background.extend(digests);
    let aborts: Vec<_> = background
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    if tokio::time::timeout(remaining, futures::future::join_all(background))
        .await
        .is_err()
    {
        tracing::warn!("projector or relay still busy at the shutdown deadline: stopped (an unfinished batch rolls back)");
        for abort in aborts {
            abort.abort();
        }
    }
    if let Some(task) = listen_task {
        task.abort();
    }
    journal.close();
    tracing::info!(
        shutdown_ms = began.get().map_or(0, |t| t.elapsed().as_millis() as u64),
        background_ms = http_done.elapsed().as_millis() as u64,
        "stopped: requests finished, projector and relay stopped, journal closed"
    );
    Ok(())
}

/// Binds `address` and runs until Ctrl-C or SIGTERM.
///
/// # Errors
/// As [`run`], or when the address cannot be bound.
pub async fn serve(settings: Settings, address: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down (a second signal stops at once)");
        token.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: stopping now, without waiting");
        std::process::exit(130);
    });
    run(settings, listener, shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
