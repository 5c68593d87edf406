//! The auditor's jobs, shared by the CLI (`fieldtrail audit …`, `fieldtrail report … --as-of…`)
//! and the HTTP API ([`crate::http::audit`]):
//!
//! - stream and actor histories: every event with its whole envelope and hash;
//! - `as_of` documents: the read models folded from the journal cut at a point;
//! - `verify`: the hash chain walk and the journal digest;
//! - the attendance evidence register of a cohort, with its anomaly flags.
//!
//! Pure logic lives in `fieldtrail_journal::chain` (hashes, checks, digest) and
//! `fieldtrail_projections::attendance` (the register); this module does the I/O and the
//! rendering.

use crate::cli::output::emit;
use crate::config::Settings;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use fieldtrail_domain::{AnyEvent, CohortEvent};
use fieldtrail_journal::audit::{Clock, Cut, EventFilter};
use fieldtrail_journal::chain::VerifyReport;
use fieldtrail_journal::{HistoryOf, Journal, StreamQuery};
use fieldtrail_projections::asof;
use fieldtrail_projections::attendance::{self, AttendanceRegister, CohortRecord};
use fieldtrail_projections::{DocKey, DocKind};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Exit status of `audit verify` when the journal does not verify.
pub const NOT_VERIFIED: u8 = 2;

/// Parses an instant: RFC 3339 with an offset (`2025-10-20T18:00:00+02:00`, `…Z`).
///
/// # Errors
/// A sentence giving the expected form.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "expected an RFC 3339 time with an offset, e.g. 2025-10-20T18:00:00+02:00, got {text:?} ({e})"
            )
        })
}

/// Parses a global position: an integer `>= 0`.
///
/// # Errors
/// A sentence giving the expected form.
pub fn parse_position(text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(p) if p >= 0 => Ok(p),
        _ => Err(format!(
            "expected a global position (an integer >= 0), got {text:?}"
        )),
    }
}

/// `--as-of TIME | --as-of-position N | --as-of-occurred TIME` on `fieldtrail report …`
/// (at most one).
#[derive(Clone, Debug, Default, Args)]
pub struct AsOfArgs {
    /// Answer as the journal stood at this time (RFC 3339; events with recorded_at <= TIME).
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time,
          conflicts_with_all = ["as_of_position", "as_of_occurred"])]
    pub as_of: Option<DateTime<Utc>>,
    /// Answer as the journal stood at this global position (events at positions <= N).
    #[arg(long, global = true, value_name = "N", value_parser = parse_position,
          conflicts_with = "as_of_occurred")]
    pub as_of_position: Option<i64>,
    /// Answer with what had happened in the world by this time (RFC 3339; events with occurred_at <= TIME).
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_time)]
    pub as_of_occurred: Option<DateTime<Utc>>,
}

impl AsOfArgs {
    /// The cut asked for, if any.
    pub fn cut(&self) -> Option<Cut> {
        self.as_of
            .map(Cut::Recorded)
            .or(self.as_of_position.map(Cut::Position))
            .or(self.as_of_occurred.map(Cut::Occurred))
    }
}

/// The cut named by HTTP query parameters `as_of`, `as_of_position`, `as_of_occurred`
/// (`None` when none is given).
///
/// # Errors
/// A message naming the parameter: a bad value, or more than one of them.
pub fn cut_from_params(
    as_of: Option<&str>,
    as_of_position: Option<&str>,
    as_of_occurred: Option<&str>,
) -> Result<Option<Cut>, String> {
    let given = [as_of, as_of_position, as_of_occurred]
        .iter()
        .filter(|p| p.is_some())
        .count();
    if given > 1 {
        return Err(
            "as_of, as_of_position and as_of_occurred: give at most one of them".to_owned(),
        );
    }
    if let Some(t) = as_of {
        return parse_time(t)
            .map(|t| Some(Cut::Recorded(t)))
            .map_err(|e| format!("as_of: {e}"));
    }
    if let Some(p) = as_of_position {
        return parse_position(p)
            .map(|p| Some(Cut::Position(p)))
            .map_err(|e| format!("as_of_position: {e}"));
    }
    if let Some(t) = as_of_occurred {
        return parse_time(t)
            .map(|t| Some(Cut::Occurred(t)))
            .map_err(|e| format!("as_of_occurred: {e}"));
    }
    Ok(None)
}

/// The document of `kind` (`timetable`, `transcript`, `history`) under `key` (as
/// [`crate::read`] names them) as it stood at `cut`; `None` when it did not exist then.
///
/// # Errors
/// When the journal fails or an event cannot be read; an unknown kind.
pub async fn document_as_of(
    journal: &Journal,
    kind: &str,
    key: &str,
    cut: Cut,
) -> anyhow::Result<Option<Value>> {
    let kind = DocKind::parse(kind).with_context(|| format!("unknown document kind {kind:?}"))?;
    let key = DocKey {
        kind,
        key: key.to_owned(),
    };
    Ok(asof::document_as_of(journal, &key, cut).await?)
}

/// `TYPE/ID` (e.g. `cohort/cohort-2025`, `field_study/fs25-a`) as (type, id).
///
/// # Errors
/// A message naming the accepted stream types.
pub fn parse_stream(text: &str) -> Result<(String, String), String> {
    let (stream_type, stream_id) = text
        .split_once('/')
        .ok_or_else(|| format!("expected TYPE/ID (e.g. cohort/cohort-2025), got {text:?}"))?;
    check_stream_type(stream_type)?;
    if stream_id.is_empty() {
        return Err(format!("the stream id is empty in {text:?}"));
    }
    Ok((stream_type.to_owned(), stream_id.to_owned()))
}

/// Accepts `programme`, `cohort` and `field_study`.
///
/// # Errors
/// A message naming the accepted stream types.
pub fn check_stream_type(stream_type: &str) -> Result<(), String> {
    match stream_type {
        "programme" | "cohort" | "field_study" => Ok(()),
        other => Err(format!(
            "unknown stream type {other:?}: one of programme, cohort, field_study"
        )),
    }
}

/// A stream's history document `{"stream", "filter", "count", "events": [...]}`; `None` when
/// the stream has no event at all.
///
/// # Errors
/// When the journal fails.
pub async fn stream_history(
    journal: &Journal,
    stream_type: &str,
    stream_id: &str,
    filter: &EventFilter,
) -> anyhow::Result<Option<Value>> {
    if journal.stream(stream_type, stream_id, 0).await?.is_empty() {
        return Ok(None);
    }
    let events = journal
        .history(
            HistoryOf::Stream {
                stream_type,
                stream_id,
            },
            filter,
        )
        .await?;
    Ok(Some(json!({
        "stream": format!("{stream_type}/{stream_id}"),
        "filter": filter,
        "count": events.len(),
        "events": events,
    })))
}

/// What one actor did: `{"actor", "filter", "count", "events": [...]}` in global-log order.
///
/// # Errors
/// When the journal fails.
pub async fn actor_history(
    journal: &Journal,
    actor: &str,
    filter: &EventFilter,
) -> anyhow::Result<Value> {
    let events = journal.history(HistoryOf::Actor(actor), filter).await?;
    Ok(json!({
        "actor": actor,
        "filter": filter,
        "count": events.len(),
        "events": events,
    }))
}

async fn cohort_records(journal: &Journal, cohort_id: &str) -> anyhow::Result<Vec<CohortRecord>> {
    let events = journal
        .history(
            HistoryOf::Stream {
                stream_type: "cohort",
                stream_id: cohort_id,
            },
            &EventFilter::default(),
        )
        .await?;
    events
        .into_iter()
        .map(|e| {
            match AnyEvent::decode(&e.stream_type, &e.event_type, &e.event_version, &e.payload) {
                Ok(AnyEvent::Cohort(event)) => Ok(CohortRecord {
                    stream_version: e.stream_version,
                    position: e.position,
                    occurred_at: e.occurred_at,
                    recorded_at: e.recorded_at,
                    actor: e.actor,
                    command_id: e.command_id,
                    event,
                }),
                Ok(_) => anyhow::bail!("event at position {} is not a cohort event", e.position),
                Err(err) => Err(anyhow::anyhow!(
                    "cannot read the event at global position {}: {err}",
                    e.position
                )),
            }
        })
        .collect()
}

/// The attendance evidence register of a cohort ([`attendance::build`]), with the presences
/// of its learners in the other cohorts they are enrolled in (for the overlap flag); `None`
/// for an unknown cohort.
///
/// # Errors
/// When the journal fails or an event cannot be read.
pub async fn attendance_register(
    journal: &Journal,
    cohort_id: &str,
) -> anyhow::Result<Option<AttendanceRegister>> {
    let records = cohort_records(journal, cohort_id).await?;
    if records.is_empty() {
        return Ok(None);
    }
    let learners: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.event {
            CohortEvent::LearnerEnrolled { learner_id, .. } => Some(learner_id.to_string()),
            _ => None,
        })
        .collect();
    let mut elsewhere = Vec::new();
    let others = journal
        .find_streams(StreamQuery::CohortsEnrolling {
            learner_ids: &learners,
            except: cohort_id,
        })
        .await?;
    for other in others {
        let theirs = attendance::build(&other, &cohort_records(journal, &other).await?, &[]);
        elsewhere.extend(
            theirs
                .presences()
                .into_iter()
                .filter(|p| learners.contains(&p.learner_id)),
        );
    }
    Ok(Some(attendance::build(cohort_id, &records, &elsewhere)))
}

/// How a report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    /// Lines for a person.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Formats of the attendance register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RegisterFormat {
    /// One JSON document (rows, totals, anomalies).
    #[default]
    Json,
    /// The rows as CSV (RFC 4180).
    Csv,
}

/// Rows of the attendance register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Granularity {
    /// One row per (learner, held session), with its half-days.
    #[default]
    Session,
    /// One row per (learner, held half-day), slot AM or PM.
    HalfDay,
}

/// Which clock `--from`/`--to` apply to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ClockArg {
    /// recorded_at: when the journal stored the event.
    #[default]
    Recorded,
    /// occurred_at: when the fact happened in the world.
    Occurred,
}

/// A time range and the clock it applies to.
#[derive(Clone, Debug, Default, Args)]
pub struct RangeArgs {
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// The clock --from and --to apply to.
    #[arg(long, value_enum, default_value_t = ClockArg::Recorded)]
    pub clock: ClockArg,
}

impl RangeArgs {
    fn filter(&self, actor: Option<String>) -> EventFilter {
        EventFilter {
            from: self.from,
            to: self.to,
            clock: match self.clock {
                ClockArg::Recorded => Clock::Recorded,
                ClockArg::Occurred => Clock::Occurred,
            },
            actor,
        }
    }
}

/// `fieldtrail audit …`
#[derive(Clone, Debug, Subcommand)]
pub enum AuditJob {
    /// Every event of one stream, in version order, with its whole envelope and hash (JSON).
    History {
        /// The stream, TYPE/ID: programme/…, cohort/…, field_study/…
        #[arg(long)]
        stream: String,
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Only this actor's events (role:name).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Every event one actor (role:name) issued, in global-log order (JSON).
    Actor {
        /// The actor, e.g. staff:coordinator.
        actor: String,
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Check the hash chain of every stream and print the journal digest; exit 2 if broken.
    /// With --digest: check an exported journal (--export, offline: no database needed) or
    /// this journal against a signed digest, with the public keys only (--public-key).
    Verify {
        /// Also print the digest as the journal stood at this global position.
        #[arg(long, value_name = "N", value_parser = parse_position, conflicts_with = "digest")]
        at_position: Option<i64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
        /// A signed digest (the JWS `audit digest --out` writes, or `GET /audit/digests/{id}`).
        #[arg(long, value_name = "FILE")]
        digest: Option<PathBuf>,
        /// The exported journal to check against --digest (`fieldtrail audit export`).
        #[arg(long, value_name = "FILE", requires = "digest")]
        export: Option<PathBuf>,
        /// The public keys: a JWK Set (/.well-known/jwks.json), a JWK, or the DID document
        /// (/.well-known/did.json). Default: the keys directory's.
        #[arg(long, value_name = "FILE", requires = "digest")]
        public_key: Option<PathBuf>,
    },
    /// Sign the journal's head now (global position, digest, last event's hash, time, key)
    /// and keep the digest; refuses a journal that does not verify.
    Digest {
        /// Also write the signed digest (JWS) to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the signed digests kept.
    Digests {
        /// Print JSON (each digest with its JWS).
        #[arg(long)]
        json: bool,
    },
    /// Export the journal for an auditor (JSON Lines: every event with its chain columns,
    /// the command ledger), to check offline against a signed digest.
    Export {
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The attendance evidence register of a cohort, with anomaly flags.
    Attendance {
        /// Cohort id.
        #[arg(long)]
        cohort: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = RegisterFormat::Json)]
        format: RegisterFormat,
        /// One row per (learner, session) or per (learner, half-day).
        #[arg(long, value_enum, default_value_t = Granularity::Session)]
        by: Granularity,
    },
}

/// The verify report as lines for a person.
pub fn verify_text(report: &VerifyReport, seconds: f64) -> String {
    let mut out = String::new();
    for b in &report.breaks {
        out.push_str(&format!(
            "BROKEN {} version {}{}: {}\n",
            b.stream,
            b.version,
            b.position
                .map(|p| format!(" (position {p})"))
                .unwrap_or_default(),
            b.reason
        ));
    }
    if report.intact() {
        out.push_str(&format!(
            "journal verified: {} events in {} streams, head position {}, every hash chain intact ({seconds:.2} s)\n",
            report.events, report.streams, report.head_position
        ));
    } else {
        out.push_str(&format!(
            "journal NOT verified: {} of {} streams broken; {} events read ({seconds:.2} s)\n",
            report.breaks.len(),
            report.streams,
            report.events
        ));
    }
    out.push_str(&format!(
        "digest (RFC 6962 Merkle root of the stream heads, SHA-256): {}\n",
        report.digest
    ));
    if let Some(at) = &report.digest_at {
        out.push_str(&format!(
            "digest at position {} ({} events): {}\n",
            at.position, at.events, at.digest
        ));
    }
    out
}

/// Runs an audit job; the exit status is [`NOT_VERIFIED`] for a journal that does not verify.
///
/// # Errors
/// When the journal cannot be used, the stream or cohort is unknown, or an argument is invalid.
pub async fn run(settings: &Settings, job: AuditJob) -> anyhow::Result<ExitCode> {
    let store = crate::signing::store(settings);
    // Offline: the export, the digest and the public keys; no journal is opened.
    if let AuditJob::Verify {
        digest: Some(digest),
        export: Some(export),
        public_key,
        format,
        ..
    } = &job
    {
        return crate::signing::cli::verify_against_digest(
            digest,
            crate::signing::cli::ExportSource::File(export),
            public_key.as_ref(),
            &store,
            *format == TextOrJson::Json,
        )
        .await;
    }
    let journal = crate::open_existing_journal(settings, 4).await?;
    match job {
        AuditJob::History {
            stream,
            range,
            actor,
        } => {
            let (stream_type, stream_id) =
                parse_stream(&stream).map_err(|e| anyhow::anyhow!("--stream: {e}"))?;
            let doc = stream_history(&journal, &stream_type, &stream_id, &range.filter(actor))
                .await?
                .with_context(|| format!("no events in stream {stream_type}/{stream_id}"))?;
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        AuditJob::Actor { actor, range } => {
            let doc = actor_history(&journal, &actor, &range.filter(None)).await?;
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        AuditJob::Verify {
            digest: Some(digest),
            public_key,
            format,
            ..
        } => {
            return crate::signing::cli::verify_against_digest(
                &digest,
                crate::signing::cli::ExportSource::Journal(&journal),
                public_key.as_ref(),
                &store,
                format == TextOrJson::Json,
            )
            .await;
        }
        AuditJob::Digest { out } => {
            crate::signing::cli::sign_digest(&journal, &store, out.as_deref()).await?;
        }
        AuditJob::Digests { json } => crate::signing::cli::list_digests(&journal, json).await?,
        AuditJob::Export { out } => {
            crate::signing::cli::export_journal(&journal, out.as_deref()).await?;
        }
        AuditJob::Verify {
            at_position,
            format,
            ..
        } => {
            let started = Instant::now();
            let report = journal.verify(at_position).await?;
            let seconds = started.elapsed().as_secs_f64();
            match format {
                TextOrJson::Text => emit(&verify_text(&report, seconds))?,
                TextOrJson::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
            }
            if !report.intact() {
                return Ok(ExitCode::from(NOT_VERIFIED));
            }
        }
        AuditJob::Attendance { cohort, format, by } => {
            let register = attendance_register(&journal, &cohort)
                .await?
                .with_context(|| format!("no cohort {cohort:?}"))?;
            let register = match by {
                Granularity::Session => register,
                Granularity::HalfDay => register.by_half_day(),
            };
            match format {
                RegisterFormat::Json => {
                    emit(&format!("{}\n", serde_json::to_string_pretty(&register)?))?
                }
                RegisterFormat::Csv => emit(&register.to_csv())?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
