//! `fieldtrail bench --embedded`: the embedded (SQLite) backend measured against a raw
//! `rusqlite` loop on a file with the same settings (WAL, `synchronous = FULL`), in the same
//! run, in a scratch directory. No server is needed; `serve` runs as a child process on the
//! scratch file for the HTTP figures.

use super::load::{self, Copies, Server};
use super::product::{self, client_work, clients_label};
use super::{BenchArgs, Better, Report};
use crate::handler::CommandHandler;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A table shaped as the journal's `events` (columns, keys, global-order index), no triggers.
const TABLE: &str = "
CREATE TABLE raw_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    stream_type TEXT NOT NULL, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
    tx_id INTEGER NOT NULL, event_type TEXT NOT NULL, event_version TEXT NOT NULL,
    payload TEXT NOT NULL, occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL, command_id TEXT NOT NULL, correlation_id TEXT NOT NULL,
    causation_id TEXT NOT NULL, prev_hash BLOB, hash BLOB,
    UNIQUE (stream_type, stream_id, stream_version));
CREATE INDEX raw_events_global ON raw_events (tx_id, position);";

const INSERT: &str = "INSERT INTO raw_events (event_id, stream_type, stream_id, stream_version,
    tx_id, event_type, event_version, payload, occurred_at, recorded_at, actor, command_id,
    correlation_id, causation_id, prev_hash, hash)
    VALUES (?1, 'cohort', ?2, ?3, ?4, 'session_held', '1', ?5, 0, 0, 'staff:bench', ?6, ?6, ?6, ?7, ?7)";

fn open(path: &Path) -> anyhow::Result<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    Ok(c)
}

/// Raw inserts for `window`, `rows` per transaction (each its own `BEGIN IMMEDIATE ...
/// COMMIT`, fsync'd), one connection: rows per second.
fn raw_insert(path: &Path, rows: usize, window: Duration) -> anyhow::Result<f64> {
    let mut c = open(path)?;
    let payload = serde_json::to_string(&load::payload("raw", 1))?;
    let hash = [7u8; 32];
    let started = Instant::now();
    let mut written = 0u64;
    let mut tx_id = 0i64;
    let stream = format!("raw-{rows}");
    while started.elapsed() < window {
        tx_id += 1;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for _ in 0..rows {
                written += 1;
                insert.execute(params![
                    uuid::Uuid::now_v7().to_string(),
                    stream,
                    i64::try_from(written)?,
                    tx_id,
                    payload,
                    format!("raw-{written}"),
                    hash.as_slice()
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(written as f64 / started.elapsed().as_secs_f64())
}

/// A raw scan of the journal file's events in global-log order, reading every column:
/// (rows, rows per second).
fn raw_scan(path: &Path) -> anyhow::Result<(u64, f64)> {
    let c = open(path)?;
    let started = Instant::now();
    let mut statement = c.prepare(
        "SELECT position, event_id, stream_type, stream_id, stream_version, tx_id, event_type,
                event_version, payload, occurred_at, recorded_at, actor, command_id,
                correlation_id, causation_id, reported_actor, prev_hash, hash
         FROM events ORDER BY tx_id, position",
    )?;
    let mut rows = statement.query([])?;
    let mut n = 0u64;
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        let payload: String = row.get(8)?;
        bytes += payload.len();
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    std::hint::black_box(bytes);
    Ok((n, rate))
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs every embedded figure in a scratch directory.
///
/// # Errors
/// When the scratch file cannot be written or a step fails.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<Report> {
    let dir = ScratchDir(std::env::temp_dir().join(format!(
        "fieldtrail-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )));
    std::fs::create_dir_all(&dir.0)?;
    let journal_path = dir.0.join("journal.db");
    let raw_path = dir.0.join("raw.db");
    let mut report = Report::default();
    let window = args.window();

    eprintln!("bench (embedded): raw rusqlite inserts ({window:?} each)");
    let (raw_single, raw_batch) = {
        let raw_path = raw_path.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64)> {
            open(&raw_path)?.execute_batch(TABLE)?;
            Ok((
                raw_insert(&raw_path, 1, window)?,
                raw_insert(&raw_path, 100, window)?,
            ))
        })
        .await??
    };

    let url = format!("sqlite://{}", journal_path.display());
    let journal = fieldtrail_journal::open(&url, 4).await?;
    let events = args.events();
    eprintln!("bench (embedded): filling the journal with {events} events");
    let fill = load::fill(&journal, events, 8, 100).await?;
    report.push(
        "embedded journal append, 100 events/command, 8 writers (events/s; raw: 100-row transactions)",
        fill,
        Some(raw_batch),
        "/s",
        Better::Higher,
        "",
        None,
    );

    eprintln!("bench (embedded): import");
    let handler = Arc::new(CommandHandler::new(journal.clone()));
    let mut copies = Copies::new();
    for &c in &args.clients {
        let sent = product::import(&handler, product::import_work(&mut copies, args, c)).await?;
        report.push(
            format!(
                "embedded import commands/s, {}, {} generated cohorts (raw: 100-row transactions, rows/s)",
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
    }

    eprintln!("bench (embedded): scan and rebuild");
    let (scanned, scan_rate) = {
        let path = journal_path.clone();
        tokio::task::spawn_blocking(move || raw_scan(&path)).await??
    };
    let t = Instant::now();
    let rebuilt = fieldtrail_projections::runner::rebuild(&journal).await?;
    let rebuild_rate = rebuilt as f64 / t.elapsed().as_secs_f64();
    report.push(
        "embedded projection rebuild events/s (raw: SELECT in global order, every column)",
        rebuild_rate,
        Some(scan_rate),
        "/s",
        Better::Higher,
        "",
        None,
    );
    report
        .notes
        .push(format!("embedded journal at the rebuild: {scanned} events"));

    eprintln!("bench (embedded): serve");
    let binary = args
        .server_binary
        .clone()
        .map_or_else(std::env::current_exe, Ok)?;
    let token =
        crate::auth::tokens::create(&journal, "bench", crate::auth::Role::Staff, None, None)
            .await?;
    let mut settings = crate::Settings::new(&url, "", "FIELDTRAIL_BENCH", "ft_bench");
    settings.relay = false;
    let server = Server::start(&binary, &settings, &token, Duration::from_secs(600)).await?;
    for &c in &args.clients {
        let sent = product::http(&server.base, &token, client_work(&mut copies, args, c)).await?;
        report.push(
            format!(
                "embedded POST /commands/s, {} (raw: one-row transactions)",
                clients_label(c)
            ),
            sent.rate,
            Some(raw_single),
            "/s",
            Better::Higher,
            "",
            None,
        );
        report.notes.push(format!(
            "embedded HTTP, {}: {} commands, {} rejected by the rules, {} failed",
            clients_label(c),
            sent.commands,
            sent.rejected,
            sent.failed
        ));
    }
    drop(server);
    journal.close();
    Ok(report)
}
