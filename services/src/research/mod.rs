//! Research exports: cohort trajectories, pseudonymised, in the formats researchers' tools
//! read. `fieldtrail export trajectories ...` and `GET /research/trajectories`.
//!
//! An export reads the journal's global log twice ([`GlobalLog::read`], batches of
//! [`BATCH`] events):
//!
//! 1. [`prepare`]: the [`LogIndex`] (each cohort's last event, size and event count, and
//!    the reason categories that erasures kept, so that an erased reason exports the
//!    category it had before: README "Personal data"), the
//!    choice of cohorts, and the minimum cohort size check, before anything is written. The
//!    export covers the log as it stood at the end of this pass (what the global log shows:
//!    events of transactions still open, or behind a long transaction elsewhere on the
//!    server, are left for a later export).
//! 2. [`write`]: the [`TrajectoryFold`]; each cohort, once its last event is applied, becomes
//!    rows ([`shape::Shaper`]), is written ([`writer::RowWriter`]) and sent on (file or HTTP
//!    body) before the next is read. Memory: the cohorts open at the current point of the log
//!    (one at a time for cohorts recorded one after the other), a Parquet row group, and a few
//!    dozen bytes per cohort for the index; it does not grow with the number of cohorts
//!    otherwise. Cohorts come out in the order of their last events.
//!
//! Pseudonymisation: [`pseudonym`]; columns and what is left out: [`shape`]; formats:
//! [`writer`]. No export without a key; a cohort under the minimum size
//! ([`DEFAULT_MIN_COHORT_SIZE`] learners unless `--min-cohort-size`) is refused unless
//! `--force` (CLI only: over HTTP the minimum is the default and cannot be forced).
//!
//! HTTP (for the `researcher` role; the key comes from the server's environment
//! `FIELDTRAIL_PSEUDONYM_KEY`):
//!
//! | route | answer |
//! |---|---|
//! | `GET /research/trajectories?format=csv\|parquet\|jsonl&shape=long\|wide\|summary&dates=exact\|shifted\|week&cohort=ID` | the export, streamed (`cohort` repeatable or comma-separated, a raw id or a `C-` pseudonym; all cohorts without it; `shape` defaults to `long`, `dates` to `exact`) |
//! | `GET /research/trajectories/dictionary?shape=...&dates=...` | the data dictionary (CSV) |
//!
//! Errors: no key configured 503; a cohort under the minimum size 409 (named by pseudonym);
//! unknown cohort 404; bad parameter 422; PostgreSQL away 503. An error after the answer has
//! begun (the journal going away mid-export) cuts the body short.

pub mod pseudonym;
pub mod shape;
pub mod writer;

use crate::http::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;

use fieldtrail_journal::{Cursor, Journal, JournalError};
use fieldtrail_projections::store::recorded_owned;
use fieldtrail_projections::trajectory::{LogIndex, TrajectoryFold};
use indicatif::{ProgressBar, ProgressStyle};
use pseudonym::{KeyError, PseudonymKey, Pseudonymiser};
use serde_json::json;
use shape::{DateMode, Shape, Shaper};
use std::collections::BTreeSet;
use std::future::Future;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use writer::{Format, RowWriter, SharedBuffer};

/// Cohorts with fewer learners than this are refused unless forced.
pub const DEFAULT_MIN_COHORT_SIZE: u32 = 5;
/// Events per read of the global log.
pub const BATCH: i64 = 2000;
/// Chunks (about one cohort each) buffered between the exporter and a slow HTTP client.
const HTTP_CHUNKS_IN_FLIGHT: usize = 4;

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRequest {
    /// Cohort ids or `C-` pseudonyms; every cohort when empty.
    pub cohorts: Vec<String>,
    /// File format.
    pub format: Format,
    /// Long, wide or summary.
    pub shape: Shape,
    /// Exact, shifted or week.
    pub dates: DateMode,
    /// Fewest learners a cohort may have.
    pub min_cohort_size: u32,
    /// Export cohorts under the minimum size anyway.
    pub force: bool,
}

/// A cohort under the minimum size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmallCohort {
    /// Its id.
    pub cohort_id: String,
    /// Its pseudonym.
    pub pseudonym: String,
    /// Its learners.
    pub learners: u32,
}

/// Why an export was not made.
#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    /// No usable key (HTTP 503).
    #[error(transparent)]
    NoKey(#[from] KeyError),
    /// A requested cohort does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Cohorts under the minimum size, not forced (HTTP 409).
    #[error("{}", too_small_message(.cohorts, *.minimum, true))]
    TooSmall {
        /// The cohorts.
        cohorts: Vec<SmallCohort>,
        /// The minimum.
        minimum: u32,
    },
    /// A bad parameter (HTTP 422).
    #[error("{0}")]
    Invalid(String),
    /// PostgreSQL away (HTTP 503).
    #[error("PostgreSQL unavailable: {0}")]
    Unavailable(String),
    /// The journal holds what this build cannot read, or the output failed (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

fn too_small_message(cohorts: &[SmallCohort], minimum: u32, raw_ids: bool) -> String {
    let list: Vec<String> = cohorts
        .iter()
        .map(|c| {
            if raw_ids {
                format!(
                    "{:?} ({}): {} learners",
                    c.cohort_id, c.pseudonym, c.learners
                )
            } else {
                format!("{}: {} learners", c.pseudonym, c.learners)
            }
        })
        .collect();
    format!(
        "refused: cohorts under the minimum size of {minimum} learners, whose learners could be re-identified from their trajectories: {}; leave them out (--cohort) or, as the operator, export them with --force",
        list.join(", ")
    )
}

impl From<JournalError> for ResearchError {
    fn from(e: JournalError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<writer::WriteError> for ResearchError {
    fn from(e: writer::WriteError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The first pass's result: what [`write`] exports.
#[derive(Debug)]
pub struct Prepared {
    index: LogIndex,
    end: Option<Cursor>,
    selected: BTreeSet<String>,
    /// Cohorts under the minimum size exported because of `force`.
    pub forced: Vec<SmallCohort>,
}

impl Prepared {
    /// The cohorts to export.
    pub fn cohorts(&self) -> usize {
        self.selected.len()
    }

    /// The ids of the cohorts to export (raw ids: for the server's own use, never shown).
    pub fn cohort_ids(&self) -> BTreeSet<String> {
        self.selected.clone()
    }

    /// Events in the log up to the export's end.
    pub fn events(&self) -> u64 {
        self.index.events()
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// Cohorts written.
    pub cohorts: u64,
    /// Rows written.
    pub rows: u64,
    /// Events read in the second pass.
    pub events: u64,
    /// The most cohorts held in memory at once.
    pub peak_open_cohorts: usize,
    /// The key's id ([`Pseudonymiser::key_id`]).
    pub key_id: String,
}

/// The first pass: index the log, choose the cohorts, check their sizes.
///
/// # Errors
/// [`ResearchError::NotFound`] for a requested cohort that does not exist,
/// [`ResearchError::TooSmall`] unless forced, [`ResearchError::Unavailable`] /
/// [`ResearchError::Internal`] from the journal, or when a transaction elsewhere holds the
/// global log back longer than the readable wait (`FIELDTRAIL_READABLE_WAIT_SECS`).
pub async fn prepare(
    journal: &Journal,
    request: &ExportRequest,
    pseudonyms: &Pseudonymiser,
    progress: &ProgressBar,
) -> Result<Prepared, ResearchError> {
    // Every event committed before the export began is in it: an erasure committed a moment
    // ago has destroyed its key already (its fields read as the marker), and the categories
    // it keeps must be read with it, not left behind a transaction elsewhere on the server.
    // Held back: 503, as when PostgreSQL is away (the export can be asked again).
    crate::signing::digest::readable(journal)
        .await
        .map_err(|e| ResearchError::Unavailable(e.to_string()))?;
    let log = journal;
    let mut index = LogIndex::new();
    let mut cursor = Cursor::default();
    let mut end = None;
    progress.set_message("indexing the journal");
    progress.set_length(u64::try_from(log.count().await?).unwrap_or(0));
    loop {
        let batch = log.read(cursor, BATCH).await?;
        let read = batch.len();
        for stored in batch {
            cursor = Cursor::after(&stored);
            end = Some(cursor);
            index.apply(&recorded_owned(stored)?);
        }
        progress.inc(u64::try_from(read).unwrap_or(u64::MAX));
        if i64::try_from(read).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    let mut selected = BTreeSet::new();
    if request.cohorts.is_empty() {
        selected.extend(index.cohorts().keys().cloned());
    } else {
        let mut unknown = Vec::new();
        for wanted in &request.cohorts {
            if index.cohorts().contains_key(wanted) {
                selected.insert(wanted.clone());
            } else if let Some(id) = index
                .cohorts()
                .keys()
                .find(|id| pseudonyms.cohort(id) == *wanted)
            {
                selected.insert(id.clone());
            } else {
                unknown.push(format!("{wanted:?}"));
            }
        }
        if !unknown.is_empty() {
            return Err(ResearchError::NotFound(format!(
                "no cohort {}",
                unknown.join(", ")
            )));
        }
    }
    let small: Vec<SmallCohort> = selected
        .iter()
        .filter_map(|id| {
            let learners = index.cohorts().get(id)?.learners;
            (learners < request.min_cohort_size).then(|| SmallCohort {
                cohort_id: id.clone(),
                pseudonym: pseudonyms.cohort(id),
                learners,
            })
        })
        .collect();
    if !small.is_empty() && !request.force {
        return Err(ResearchError::TooSmall {
            cohorts: small,
            minimum: request.min_cohort_size,
        });
    }
    Ok(Prepared {
        index,
        end,
        selected,
        forced: small,
    })
}

/// Where an export's bytes go, a chunk (about a cohort) at a time.
pub trait ChunkSink {
    /// Sends one chunk on.
    fn send(&mut self, chunk: Vec<u8>) -> impl Future<Output = Result<(), ResearchError>> + Send;
}

/// A file.
#[derive(Debug)]
pub struct FileSink(pub std::fs::File);

impl ChunkSink for FileSink {
    fn send(&mut self, chunk: Vec<u8>) -> impl Future<Output = Result<(), ResearchError>> + Send {
        let result = self
            .0
            .write_all(&chunk)
            .map_err(|e| ResearchError::Internal(format!("cannot write the export: {e}")));
        std::future::ready(result)
    }
}

/// An HTTP body's channel.
#[derive(Debug)]
pub struct ChannelSink(pub tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl ChunkSink for ChannelSink {
    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), ResearchError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.0
            .send(Ok(Bytes::from(chunk)))
            .await
            .map_err(|_| ResearchError::Internal("the client went away".to_owned()))
    }
}

/// The Parquet footer's key-value metadata of an export.
fn metadata(request: &ExportRequest, pseudonyms: &Pseudonymiser) -> Vec<(String, String)> {
    vec![
        (
            "fieldtrail.shape".to_owned(),
            request.shape.as_str().to_owned(),
        ),
        (
            "fieldtrail.dates".to_owned(),
            request.dates.as_str().to_owned(),
        ),
        ("fieldtrail.key_id".to_owned(), pseudonyms.key_id()),
    ]
}

/// The second pass: fold, shape, write and send each cohort as soon as it is complete.
///
/// # Errors
/// [`ResearchError::Unavailable`] / [`ResearchError::Internal`] from the journal, the
/// writer or the sink.
pub async fn write<S: ChunkSink>(
    journal: &Journal,
    prepared: Prepared,
    request: &ExportRequest,
    pseudonyms: &Pseudonymiser,
    sink: &mut S,
    progress: &ProgressBar,
) -> Result<ExportReport, ResearchError> {
    let shaper = Shaper::new(request.shape, request.dates, pseudonyms);
    let buffer = SharedBuffer::new();
    let mut rows = RowWriter::new(
        request.format,
        shaper.columns(),
        buffer.clone(),
        metadata(request, pseudonyms),
    )?;
    let total = prepared.selected.len();
    let mut fold = TrajectoryFold::with_index(&prepared.index, Some(prepared.selected));
    let log = journal;
    let mut cursor = Cursor::default();
    let mut cohorts = 0u64;
    let mut events = 0u64;
    progress.set_position(0);
    progress.set_length(prepared.index.events());
    progress.set_message(format!("cohorts written 0/{total}"));
    'read: while let Some(end) = prepared.end {
        if usize::try_from(cohorts).unwrap_or(usize::MAX) >= total {
            break;
        }
        let batch = log.read(cursor, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for stored in batch {
            cursor = Cursor::after(&stored);
            if cursor > end {
                break 'read;
            }
            events += 1;
            progress.inc(1);
            if let Some(done) = fold.apply(&recorded_owned(stored)?) {
                for row in shaper.rows(&done) {
                    rows.write(row)?;
                }
                rows.end_chunk()?;
                sink.send(buffer.take()).await?;
                cohorts += 1;
                progress.set_message(format!("cohorts written {cohorts}/{total}"));
            }
        }
    }
    let peak_open_cohorts = fold.peak_open();
    for done in fold.finish() {
        for row in shaper.rows(&done) {
            rows.write(row)?;
        }
        cohorts += 1;
    }
    let written = rows.finish()?;
    sink.send(buffer.take()).await?;
    progress.finish_and_clear();
    Ok(ExportReport {
        cohorts,
        rows: written,
        events,
        peak_open_cohorts,
        key_id: pseudonyms.key_id(),
    })
}

// ---- CLI ----

/// `fieldtrail export trajectories ...`.
#[derive(Clone, Debug, Args)]
pub struct TrajectoriesArgs {
    /// A cohort id (or its C- pseudonym) to export; repeat for several. Every cohort when none.
    #[arg(long = "cohort", value_name = "ID")]
    pub cohorts: Vec<String>,
    /// File format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// long: a row per milestone; wide: a row per learner; summary: a row per cohort.
    #[arg(long, value_enum, default_value = "long")]
    pub shape: Shape,
    /// Where to write the export; the data dictionary goes to PATH.dictionary.csv.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// File holding the pseudonym key (else FIELDTRAIL_PSEUDONYM_KEY); at least 16 bytes.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Fewest learners a cohort may have to be exported.
    #[arg(long, default_value_t = DEFAULT_MIN_COHORT_SIZE, value_name = "N")]
    pub min_cohort_size: u32,
    /// Export cohorts under the minimum size anyway.
    #[arg(long)]
    pub force: bool,
    /// exact: as recorded; shifted: moved per learner by a keyed number of days; week: ISO week.
    #[arg(long, value_enum, default_value = "exact")]
    pub dates: DateMode,
}

/// The path of the data dictionary written beside `out`: `<out>.dictionary.csv`.
pub fn dictionary_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".dictionary.csv");
    PathBuf::from(name)
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} events ({elapsed}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs `fieldtrail export trajectories`: writes the export to `--out` (through
/// `<out>.partial`, renamed when complete) and the data dictionary beside it; prints what was
/// written.
///
/// # Errors
/// No key, an unknown cohort, a cohort under the minimum size (unless `--force`), the journal
/// away, a file that cannot be written: the CLI prints the message and exits with status 1.
pub async fn run_cli(journal: &Journal, args: TrajectoriesArgs) -> anyhow::Result<()> {
    let key = PseudonymKey::load(args.key_file.as_deref())?;
    let pseudonyms = Pseudonymiser::new(key);
    let request = ExportRequest {
        cohorts: args.cohorts,
        format: args.format,
        shape: args.shape,
        dates: args.dates,
        min_cohort_size: args.min_cohort_size,
        force: args.force,
    };
    let progress = progress_bar();
    let prepared = prepare(journal, &request, &pseudonyms, &progress).await?;
    if !prepared.forced.is_empty() {
        eprintln!(
            "fieldtrail: warning: exporting (--force) {}",
            too_small_message(&prepared.forced, request.min_cohort_size, true)
                .trim_start_matches("refused: ")
        );
    }
    let mut partial = args.out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", partial.display()))?;
    let mut sink = FileSink(file);
    let report = match write(
        journal,
        prepared,
        &request,
        &pseudonyms,
        &mut sink,
        &progress,
    )
    .await
    {
        Ok(report) => report,
        Err(e) => {
            drop(sink);
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    sink.0
        .sync_all()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", partial.display()))?;
    drop(sink);
    std::fs::rename(&partial, &args.out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    let dictionary = dictionary_path(&args.out);
    let columns = shape::columns(request.shape, request.dates);
    std::fs::write(&dictionary, writer::dictionary_csv(&columns)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dictionary.display()))?;
    crate::say!(
        "wrote {} rows ({} shape, {}, dates {}) for {} cohorts to {}; data dictionary {}; key id {}; at most {} cohorts held in memory at once",
        report.rows,
        request.shape.as_str(),
        request.format.as_str(),
        request.dates.as_str(),
        report.cohorts,
        args.out.display(),
        dictionary.display(),
        report.key_id,
        report.peak_open_cohorts
    );
    Ok(())
}

// ---- HTTP ----

/// The research routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/research/trajectories", get(http_trajectories))
        .route("/research/trajectories/dictionary", get(http_dictionary))
}

fn error_response(e: &ResearchError) -> Response {
    let (status, outcome, message) = match e {
        ResearchError::NoKey(k) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("research exports are off on this server: {k}"),
        ),
        ResearchError::NotFound(m) => (StatusCode::NOT_FOUND, "rejected", m.clone()),
        ResearchError::TooSmall { cohorts, minimum } => (
            StatusCode::CONFLICT,
            "rejected",
            too_small_message(cohorts, *minimum, false),
        ),
        ResearchError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "rejected", m.clone()),
        ResearchError::Unavailable(m) => {
            tracing::warn!(error = %m, "research export: journal unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        }
        ResearchError::Internal(m) => {
            tracing::error!(error = %m, "research export failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error", m.clone())
        }
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        _ => "unavailable",
    };
    (
        status,
        Json(json!({"outcome": outcome, "code": code, "message": message})),
    )
        .into_response()
}

/// The query's parameters: (format, shape, dates, cohorts). `format` is required only when
/// `need_format`.
fn parse_query(
    uri: &Uri,
    need_format: bool,
) -> Result<(Format, Shape, DateMode, Vec<String>), ResearchError> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ResearchError::Invalid(format!("query: {e}")))?;
    let mut format = None;
    let mut shape = Shape::Long;
    let mut dates = DateMode::Exact;
    let mut cohorts = Vec::new();
    let bad = |name: &str, value: &str, allowed: &str| {
        ResearchError::Invalid(format!("{name}: {value:?} is not one of {allowed}"))
    };
    for (name, value) in pairs {
        match name.as_str() {
            "format" => {
                format = Some(
                    Format::parse(&value)
                        .ok_or_else(|| bad("format", &value, "csv, parquet, jsonl"))?,
                );
            }
            "shape" => {
                shape = Shape::parse(&value)
                    .ok_or_else(|| bad("shape", &value, "long, wide, summary"))?;
            }
            "dates" => {
                dates = DateMode::parse(&value)
                    .ok_or_else(|| bad("dates", &value, "exact, shifted, week"))?;
            }
            "cohort" => cohorts.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            ),
            other => {
                return Err(ResearchError::Invalid(format!(
                    "unknown parameter {other:?} (known: format, shape, dates, cohort)"
                )))
            }
        }
    }
    let format = match format {
        Some(f) => f,
        None if !need_format => Format::Csv,
        None => {
            return Err(ResearchError::Invalid(
                "format: missing (csv, parquet or jsonl)".to_owned(),
            ))
        }
    };
    Ok((format, shape, dates, cohorts))
}

/// `GET /research/trajectories`: the export, streamed.
pub async fn http_trajectories(State(state): State<AppState>, uri: Uri) -> Response {
    let (format, shape, dates, cohorts) = match parse_query(&uri, true) {
        Ok(q) => q,
        Err(e) => return error_response(&e),
    };
    let pseudonyms = match PseudonymKey::from_env() {
        Ok(key) => Pseudonymiser::new(key),
        Err(e) => return error_response(&e.into()),
    };
    let request = ExportRequest {
        cohorts,
        format,
        shape,
        dates,
        min_cohort_size: DEFAULT_MIN_COHORT_SIZE,
        force: false,
    };
    let hidden = ProgressBar::hidden();
    let prepared = match prepare(&state.journal, &request, &pseudonyms, &hidden).await {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(HTTP_CHUNKS_IN_FLIGHT);
    let journal = state.journal.clone();
    let key_id = pseudonyms.key_id();
    let job = request.clone();
    tokio::spawn(async move {
        let mut sink = ChannelSink(tx);
        match write(&journal, prepared, &job, &pseudonyms, &mut sink, &hidden).await {
            Ok(report) => tracing::info!(
                cohorts = report.cohorts,
                rows = report.rows,
                peak_open_cohorts = report.peak_open_cohorts,
                "research export sent"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "research export cut short");
                let _ = sink.0.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let filename = format!("trajectories-{}.{}", shape.as_str(), format.as_str());
    let dictionary = format!(
        "</research/trajectories/dictionary?shape={}&dates={}>; rel=\"describedby\"",
        shape.as_str(),
        dates.as_str()
    );
    (
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::LINK, dictionary),
            (
                header::HeaderName::from_static("x-fieldtrail-key-id"),
                key_id,
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `GET /research/trajectories/dictionary`: the data dictionary (CSV) of a shape and date
/// mode.
pub async fn http_dictionary(uri: Uri) -> Response {
    let (_, shape, dates, _) = match parse_query(&uri, false) {
        Ok(q) => q,
        Err(e) => return error_response(&e),
    };
    match writer::dictionary_csv(&shape::columns(shape, dates)) {
        Ok(bytes) => ([(header::CONTENT_TYPE, Format::Csv.media_type())], bytes).into_response(),
        Err(e) => error_response(&e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_refuse_unknowns() {
        let uri: Uri =
            "/research/trajectories?format=parquet&shape=wide&cohort=a,b&cohort=C-1&dates=week"
                .parse()
                .unwrap();
        let (f, s, d, c) = parse_query(&uri, true).unwrap();
        assert_eq!((f, s, d), (Format::Parquet, Shape::Wide, DateMode::Week));
        assert_eq!(c, ["a", "b", "C-1"]);
        let uri: Uri = "/x?shape=long".parse().unwrap();
        assert!(matches!(
            parse_query(&uri, true),
            Err(ResearchError::Invalid(_))
        ));
        assert!(parse_query(&uri, false).is_ok());
        let uri: Uri = "/x?format=xlsx".parse().unwrap();
        assert!(matches!(
            parse_query(&uri, true),
            Err(ResearchError::Invalid(_))
        ));
        let uri: Uri = "/x?format=csv&force=1".parse().unwrap();
        assert!(matches!(
            parse_query(&uri, true),
            Err(ResearchError::Invalid(_))
        ));
    }

    #[test]
    fn the_dictionary_sits_beside_the_export() {
        assert_eq!(
            dictionary_path(Path::new("/tmp/t.parquet")),
            PathBuf::from("/tmp/t.parquet.dictionary.csv")
        );
    }

    #[test]
    fn refusals_name_cohorts_by_pseudonym_over_http() {
        let small = vec![SmallCohort {
            cohort_id: "cohort-x".into(),
            pseudonym: "C-0011223344556677".into(),
            learners: 3,
        }];
        let public = too_small_message(&small, 5, false);
        assert!(public.contains("C-0011223344556677") && !public.contains("cohort-x"));
        assert!(too_small_message(&small, 5, true).contains("cohort-x"));
    }
}
