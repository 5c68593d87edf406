//! The product's figures, each next to its raw baseline: import and HTTP commands, projection
//! rebuild, relay rate and latency, serve's memory, aggregate load time.

use super::load::{self, Copies, Server};
use super::{raw, BenchArgs, Better, Report, Scratch};
use crate::handler::CommandHandler;
use crate::workers::relay::{self, Relay};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::EventStore as _;
use fieldtrail_domain::Cohort;
use fieldtrail_journal::{Cursor, GlobalLog, Journal, PgJournal};
use futures::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The actor of the benchmark's import commands.
const OPERATOR: &str = "staff:bench";

/// Commands answered by a set of clients.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    /// Commands sent.
    pub commands: u64,
    /// Answered as rejected (a rule, not a failure: the demo cohort has some on purpose).
    pub rejected: u64,
    /// Failed (5xx or transport error).
    pub failed: u64,
    /// Commands per second.
    pub rate: f64,
}

/// Imports each client's lines in order through `fieldtrail import`'s own path
/// ([`crate::cli::import::import_text`]: batches decided in memory, one transaction each),
/// the clients concurrently.
///
/// # Errors
/// When the journal cannot be used.
pub async fn import(handler: &Arc<CommandHandler>, work: Vec<Vec<String>>) -> anyhow::Result<Sent> {
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|lines| {
            let handler = handler.clone();
            tokio::spawn(async move {
                let text = lines.join("\n");
                let report =
                    crate::cli::import::import_text(&handler, &text, Some(OPERATOR)).await?;
                anyhow::Ok(Sent {
                    commands: report.lines.len() as u64,
                    rejected: report.rejected as u64,
                    ..Sent::default()
                })
            })
        })
        .collect();
    finish(started, tasks).await
}

async fn finish(
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Sent>>>,
) -> anyhow::Result<Sent> {
    let mut total = Sent::default();
    for t in tasks {
        let s = t.await??;
        total.commands += s.commands;
        total.rejected += s.rejected;
        total.failed += s.failed;
    }
    total.rate = total.commands as f64 / started.elapsed().as_secs_f64();
    Ok(total)
}

async fn post(http: &reqwest::Client, base: &str, token: &str, line: &str) -> (bool, bool) {
    match http
        .post(format!("{base}/commands"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(line.to_owned())
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => (true, false),
        Ok(r) if r.status().is_client_error() => (false, false),
        _ => (false, true),
    }
}

/// Sends each client's lines in order through `POST /commands`, the clients concurrently.
///
/// # Errors
/// Never for a refused command (counted); only when a task panics.
pub async fn http(base: &str, token: &str, work: Vec<Vec<String>>) -> anyhow::Result<Sent> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|lines| {
            let (client, base, token) = (client.clone(), base.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let mut sent = Sent::default();
                for line in &lines {
                    let (ok, failed) = post(&client, &base, &token, line).await;
                    sent.commands += 1;
                    sent.rejected += u64::from(!ok && !failed);
                    sent.failed += u64::from(failed);
                }
                anyhow::Ok(sent)
            })
        })
        .collect();
    finish(started, tasks).await
}

/// Latencies from sending a command to receiving its first event on a NATS subscriber of the
/// relay's subjects, at `rate` commands per second for `duration` (8 clients, each in order).
/// Returns (offered rate achieved, latencies in ms, commands sent).
///
/// # Errors
/// When NATS cannot be subscribed to.
pub async fn latency(
    nats: &async_nats::Client,
    prefix: &str,
    base: &str,
    token: &str,
    copies: &mut Copies,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<(f64, Vec<f64>, u64)> {
    const CLIENTS: usize = 8;
    let total = (f64::from(rate) * duration.as_secs_f64()).ceil() as usize;
    let per_client = total.div_ceil(CLIENTS).max(1);
    let period = Duration::from_secs_f64(CLIENTS as f64 / f64::from(rate.max(1)));
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut subscriber = nats.subscribe(format!("{prefix}.>")).await?;
    nats.flush().await?;
    let stop = CancellationToken::new();
    let collector = {
        let (sent_at, stop) = (sent_at.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut latencies = Vec::new();
            loop {
                tokio::select! {
                    message = subscriber.next() => {
                        let Some(message) = message else { break };
                        let now = Instant::now();
                        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&message.payload) else { continue };
                        let Some(id) = body.get("command_id").and_then(|v| v.as_str()) else { continue };
                        let at = sent_at.lock().map(|m| m.get(id).copied()).unwrap_or(None);
                        if let Some(at) = at {
                            if seen.insert(id.to_owned()) {
                                latencies.push(now.duration_since(at).as_secs_f64() * 1000.0);
                            }
                        }
                    }
                    () = stop.cancelled() => break,
                }
            }
            latencies
        })
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let mut lines = copies.take(per_client.div_ceil(203));
            lines.truncate(per_client);
            let (client, base, token, sent_at) = (
                client.clone(),
                base.to_owned(),
                token.to_owned(),
                sent_at.clone(),
            );
            tokio::spawn(async move {
                // Spread the clients' ticks over one period.
                let offset = period.mul_f64(c as f64 / CLIENTS as f64);
                let mut applied = 0u64;
                for (i, line) in lines.iter().enumerate() {
                    tokio::time::sleep_until((started + offset + period * i as u32).into()).await;
                    let id = serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| {
                            v.get("command_id")
                                .and_then(|v| v.as_str())
                                .map(str::to_owned)
                        })
                        .unwrap_or_default();
                    if let Ok(mut m) = sent_at.lock() {
                        m.insert(id, Instant::now());
                    }
                    let (ok, _) = post(&client, &base, &token, line).await;
                    applied += u64::from(ok);
                }
                applied
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        applied += t.await?;
    }
    let elapsed = started.elapsed();
    let offered = (per_client * CLIENTS) as f64 / elapsed.as_secs_f64();
    // Let the last events arrive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let latencies = collector.await?;
    Ok((offered, latencies, applied))
}

/// Median of `runs` durations of `f`, in milliseconds.
async fn median_ms<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(load::quantile(&mut samples, 0.5))
}

pub(crate) fn client_work(
    copies: &mut Copies,
    args: &BenchArgs,
    clients: usize,
) -> Vec<Vec<String>> {
    (0..clients)
        .map(|_| {
            let mut lines = copies.take(args.cohorts_per_client());
            lines.truncate(args.commands_per_client());
            lines
        })
        .collect()
}

/// The import figure's work: [`BenchArgs::import_cohorts`] fresh cohort copies dealt out
/// to `clients` clients in turn (one client: the whole file).
pub(crate) fn import_work(
    copies: &mut Copies,
    args: &BenchArgs,
    clients: usize,
) -> Vec<Vec<String>> {
    let mut work = vec![Vec::new(); clients.max(1)];
    for n in 0..args.import_cohorts() {
        work[n % clients.max(1)].extend(copies.take(1));
    }
    work
}

pub(crate) fn clients_label(c: usize) -> String {
    if c == 1 {
        "1 client".to_owned()
    } else {
        format!("{c} clients")
    }
}

/// Runs every figure on the scratch database and streams of `s`.
///
/// # Errors
/// When a server fails or a step cannot complete.
pub async fn measure(s: &Scratch, args: &BenchArgs) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let window = args.window();
    let events = args.events();
    let pool = &s.pool;
    eprintln!("bench: raw inserts ({:?} each)", window);
    raw::prepare(pool).await?;
    let mut raw_single = BTreeMap::new();
    for &c in &args.clients {
        raw_single.insert(c, raw::insert_single(pool, c, window).await?);
    }
    let raw_batch = raw::insert_batch(pool, 100, window).await?;

    eprintln!("bench: filling the journal with {events} events");
    let journal = Journal::new(PgJournal::new(pool.clone()));
    let fill = load::fill(&journal, events, 8, 100).await?;
    report.push(
        "journal append, 100 events/command, 8 writers (events/s; raw: 100-row INSERT)",
        fill,
        Some(raw_batch),
        "/s",
        Better::Higher,
        "",
        None,
    );

    eprintln!("bench: import");
    let handler = Arc::new(CommandHandler::new(journal.clone()));
    let mut copies = Copies::new();
    for &c in &args.clients {
        let work = import_work(&mut copies, args, c);
        let sent = import(&handler, work).await?;
        report.push(
            format!(
                "import commands/s, {}, {} generated cohorts (raw: 100-row INSERT rows/s)",
                clients_label(c),
                args.import_cohorts()
            ),
            sent.rate,
            Some(raw_batch),
            "/s",
            Better::Higher,
            ">= 10000 commands/s",
            Some(sent.rate >= 10_000.0),
        );
        report.notes.push(format!(
            "import, {}: {} commands, {} rejected by the rules",
            clients_label(c),
            sent.commands,
            sent.rejected
        ));
    }

    eprintln!("bench: scan and rebuild");
    // The rebuild reads the global log, which stops below the server's oldest running
    // transaction (any database's): measure it on the whole journal, as the raw scan.
    anyhow::ensure!(
        journal.wait_readable(Duration::from_secs(60)).await?,
        "a transaction on the PostgreSQL server has held the global log back for 60 s: the rebuild cannot be measured"
    );
    let (scanned, scan_rate) = raw::scan(pool).await?;
    let t = Instant::now();
    let rebuilt = fieldtrail_projections::runner::rebuild(&journal).await?;
    let rebuild_rate = rebuilt as f64 / t.elapsed().as_secs_f64();
    report.push(
        "projection rebuild events/s (raw: one-connection SELECT in global order)",
        rebuild_rate,
        Some(scan_rate),
        "/s",
        Better::Higher,
        ">= 50% of raw",
        Some(rebuild_rate >= 0.5 * scan_rate),
    );
    report.notes.push(format!(
        "journal at the rebuild: {scanned} events (rebuild folded {rebuilt})"
    ));

    eprintln!("bench: relay and raw publish");
    let js = async_nats::jetstream::new(s.nats.clone());
    relay::ensure_stream(&js, &s.settings).await?;
    let sample = GlobalLog::new(pool.clone())
        .read(Cursor::default(), 1000)
        .await?;
    let size = if sample.is_empty() {
        512
    } else {
        sample
            .iter()
            .map(|e| serde_json::to_vec(&relay::body(e)).map_or(0, |b| b.len()))
            .sum::<usize>()
            / sample.len()
    };
    let relayer = Relay::new(journal.clone(), s.nats.clone(), &s.settings);
    let t = Instant::now();
    let published = relayer.catch_up().await?;
    let relay_rate = published.events as f64 / t.elapsed().as_secs_f64();
    let raw_publish =
        raw::publish(&s.nats, &s.settings, size, relay::BATCH as usize, window).await?;
    report.push(
        "relay publish events/s (raw: async JetStream publish, 256 acks in flight)",
        relay_rate,
        Some(raw_publish),
        "/s",
        Better::Higher,
        ">= 80% of raw",
        Some(relay_rate >= 0.8 * raw_publish),
    );
    let max_payload = s.nats.server_info().max_payload;
    let raw_prefix = raw::raw_prefix(&s.settings);
    let mut messages = Vec::with_capacity(sample.len());
    for event in &sample {
        messages.push((
            relay::subject(&raw_prefix, event),
            relay::message(event, &s.settings.subject_prefix, max_payload)?,
        ));
    }
    if !messages.is_empty() {
        let raw_same = raw::publish_messages(
            &s.nats,
            &s.settings,
            &messages,
            relay::BATCH as usize,
            window,
        )
        .await?;
        report.push(
            "relay publish events/s (raw: the relay's own messages, headers included, async JetStream publish, 256 acks in flight)",
            relay_rate,
            Some(raw_same),
            "/s",
            Better::Higher,
            ">= 80% of raw",
            Some(relay_rate >= 0.8 * raw_same),
        );
    }
    report.notes.push(format!("relay published {} events; message body {size} bytes on average (raw messages the same size)", published.events));

    eprintln!("bench: aggregate load");
    let client = pool.get().await?;
    let largest = client
        .query_opt(
            "SELECT stream_id, count(*) FROM events WHERE stream_type = 'cohort' AND stream_id LIKE 'cohort-g%'
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
            &[],
        )
        .await?;
    drop(client);
    if let Some(row) = largest {
        let (stream, length): (String, i64) = (row.get(0), row.get(1));
        let store: PersistedEventStore<Journal, Cohort> =
            PersistedEventStore::new_event_store(journal.clone());
        let product = median_ms(21, || async {
            store
                .load_aggregate(&stream)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        })
        .await?;
        let raw = median_ms(21, || async {
            pool.get()
                .await?
                .query("SELECT * FROM events WHERE stream_type = 'cohort' AND stream_id = $1 ORDER BY stream_version", &[&stream])
                .await?;
            Ok(())
        })
        .await?;
        report.push(
            format!(
                "aggregate load, largest cohort stream ({length} events; raw: SELECT of its rows)"
            ),
            product,
            Some(raw),
            "ms",
            Better::Lower,
            "",
            None,
        );
    }

    eprintln!("bench: serve");
    let binary = args
        .server_binary
        .clone()
        .map_or_else(std::env::current_exe, Ok)?;
    let token =
        crate::auth::tokens::create(&journal, "bench", crate::auth::Role::Staff, None, None)
            .await?;
    let mut server = Server::start(&binary, &s.settings, &token, Duration::from_secs(600)).await?;
    let pid = server.pid().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = load::rss_mib(pid).unwrap_or(f64::NAN);
    let peak = Arc::new(Mutex::new(idle));
    let sampling = CancellationToken::new();
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while !sampling.is_cancelled() {
                if let (Some(v), Ok(mut p)) = (load::rss_mib(pid), peak.lock()) {
                    *p = p.max(v);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    for &c in &args.clients {
        let work = client_work(&mut copies, args, c);
        let sent = http(&server.base, &token, work).await?;
        let raw = raw_single.get(&c).copied();
        let met = raw.map(|r| sent.rate >= 0.6 * r);
        report.push(
            format!("HTTP POST /commands/s, {} (raw: 1-row INSERT + version check, 1 tx/event, {} conn)", clients_label(c), c),
            sent.rate,
            raw,
            "/s",
            Better::Higher,
            ">= 60% of raw",
            met,
        );
        report.notes.push(format!(
            "HTTP, {}: {} commands, {} rejected by the rules, {} failed",
            clients_label(c),
            sent.commands,
            sent.rejected,
            sent.failed
        ));
    }

    eprintln!("bench: latency at {} commands/s", args.offered_rate);
    let (offered, mut latencies, applied) = latency(
        &s.nats,
        &s.settings.subject_prefix,
        &server.base,
        &token,
        &mut copies,
        args.offered_rate,
        args.latency_window(),
    )
    .await?;
    let p50 = load::quantile(&mut latencies, 0.5);
    let p99 = load::quantile(&mut latencies, 0.99);
    report.push(
        format!("command -> subscriber latency p50 at {offered:.0} commands/s offered"),
        p50,
        None,
        "ms",
        Better::Lower,
        "< 5 ms",
        Some(p50 < 5.0),
    );
    report.push(
        format!("command -> subscriber latency p99 at {offered:.0} commands/s offered"),
        p99,
        None,
        "ms",
        Better::Lower,
        "< 20 ms",
        Some(p99 < 20.0),
    );
    report.notes.push(format!(
        "latency: {} commands applied, {} first events received",
        applied,
        latencies.len()
    ));
    sampling.cancel();
    let _ = sampler.await;
    let peak = peak.lock().map(|p| *p).unwrap_or(f64::NAN);
    report.push(
        format!("serve RSS idle ({} events in the journal)", scanned),
        idle,
        None,
        "MiB",
        Better::Lower,
        "< 150 MiB",
        Some(idle < 150.0),
    );
    report.push(
        "serve RSS under load (peak during HTTP and latency runs)",
        peak,
        None,
        "MiB",
        Better::Lower,
        "< 150 MiB",
        Some(peak < 150.0),
    );
    let _ = server.child.kill().await;
    Ok(report)
}
