//! Exports in the formats other systems read: the CLI's `fieldtrail export ...` and the HTTP
//! routes below. This module only loads what the pure renderers of
//! [`fieldtrail_projections::formats`] need, from the journal (a stream's events) and the read
//! models (a learner's transcript), and maps "unknown id" to a 404 / a non-zero exit.
//!
//! | route | answer | media type |
//! |---|---|---|
//! | `GET /cohorts/{id}/timetable.ics` | the cohort's timetable, iCalendar (RFC 5545) | `text/calendar` |
//! | `GET /cohorts/{id}/learners/{learner}/timetable.ics` | the same plus the learner's defences | `text/calendar` |
//! | `GET /cohorts/{id}/learners/{learner}/transcript.clr` (also `.../clr.json`) | 1EdTech CLR 2.0 `ClrCredential` (its VC-JWT: `.../transcript.jwt`, [`crate::signing::http`]) | `application/ld+json` |
//! | `GET /field-studies/{id}/xapi` | JSON array of xAPI 1.0.3 statements | `application/json` |
//!
//! Unknown cohort, learner or field study: 404 `{"outcome": "rejected", "code": "not_found",
//! "message"}`; PostgreSQL away: 503; an event this build cannot read: 500.
//!
//! IRIs are minted under the publisher's base URL: `FIELDTRAIL_PUBLIC_URL` (default
//! [`formats::DEFAULT_BASE_URL`]), and the CLR issuer is named by `FIELDTRAIL_ISSUER_NAME`
//! (default [`formats::DEFAULT_ISSUER_NAME`]).

use crate::http::AppState;
use crate::{read, Settings};
use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clap::{Args, Subcommand};
use fieldtrail_domain::{AnyEvent, FieldStudyEvent, StreamKind};
use fieldtrail_journal::{Journal, JournalError};
use fieldtrail_projections::formats::{self, clr, ics, xapi, CohortOutline, Publisher};
use fieldtrail_projections::store::recorded_owned;
use fieldtrail_projections::{RecordedEvent, Transcript};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Environment variable naming the base URL of IRIs (achievements, activities, issuer).
pub const PUBLIC_URL_ENV: &str = "FIELDTRAIL_PUBLIC_URL";
/// Environment variable naming the issuing organisation in the CLR.
pub const ISSUER_NAME_ENV: &str = "FIELDTRAIL_ISSUER_NAME";

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The cohort, learner or field study does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// PostgreSQL could not be reached (HTTP 503).
    #[error("PostgreSQL unavailable: {0}")]
    Unavailable(String),
    /// The journal or a read model holds something this build cannot read, or the publisher
    /// settings are wrong (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

impl From<JournalError> for ExportError {
    fn from(e: JournalError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::Internal(e.to_string())
        }
    }
}

/// The publisher from `FIELDTRAIL_PUBLIC_URL` and `FIELDTRAIL_ISSUER_NAME` (each defaulting
/// when unset or empty).
///
/// # Errors
/// [`ExportError::Internal`] naming the variable when the URL is not an absolute http(s) URL.
pub fn publisher_from_env() -> Result<Publisher, ExportError> {
    let read = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    Publisher::new(
        &read(PUBLIC_URL_ENV, formats::DEFAULT_BASE_URL),
        &read(ISSUER_NAME_ENV, formats::DEFAULT_ISSUER_NAME),
    )
    .map_err(|e| ExportError::Internal(format!("{PUBLIC_URL_ENV}/{ISSUER_NAME_ENV}: {e}")))
}

/// Every event of one stream, in stream order, decoded.
async fn stream(
    journal: &Journal,
    stream_type: &str,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, ExportError> {
    journal
        .stream(stream_type, stream_id, 0)
        .await?
        .into_iter()
        .map(|e| recorded_owned(e).map_err(ExportError::from))
        .collect()
}

/// The learner's transcript document.
async fn transcript(
    journal: &Journal,
    cohort_id: &str,
    learner_id: &str,
) -> Result<Transcript, ExportError> {
    let key = read::transcript_key(cohort_id, learner_id);
    let doc = read::document(journal, read::TRANSCRIPT, &key)
        .await
        .map_err(|e| ExportError::Unavailable(format!("{e:#}")))?
        .ok_or_else(|| {
            ExportError::NotFound(format!("no learner {learner_id:?} in cohort {cohort_id:?}"))
        })?;
    serde_json::from_value(doc)
        .map_err(|e| ExportError::Internal(format!("transcript {key:?} unreadable: {e}")))
}

/// The cohort's stream and the outline of its opening; [`ExportError::NotFound`] when the
/// cohort was never opened.
async fn cohort(
    journal: &Journal,
    cohort_id: &str,
) -> Result<(Vec<RecordedEvent>, CohortOutline), ExportError> {
    let events = stream(journal, StreamKind::COHORT, cohort_id).await?;
    let outline = CohortOutline::from_events(&events)
        .ok_or_else(|| ExportError::NotFound(format!("no cohort {cohort_id:?}")))?;
    Ok((events, outline))
}

/// The events of the learner's field study, after those of the studies it split from (each
/// stream in order, the oldest study first), so that a learner who moved in a split keeps the
/// defences they were due at; empty when they have no field study.
async fn field_study_of(
    journal: &Journal,
    transcript: &Transcript,
) -> Result<Vec<RecordedEvent>, ExportError> {
    let mut lineage: Vec<Vec<RecordedEvent>> = Vec::new();
    let mut next = transcript.field_study_id.clone();
    while let Some(id) = next.take() {
        let events = stream(journal, StreamKind::FIELD_STUDY, &id).await?;
        next = events.first().and_then(|e| match &e.event {
            AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed { split_from, .. }) => {
                split_from.as_ref().map(ToString::to_string)
            }
            _ => None,
        });
        lineage.push(events);
        // A new study's id is refused when it exists, so a lineage cannot loop; bound it anyway.
        if lineage.len() >= 64 {
            break;
        }
    }
    lineage.reverse();
    Ok(lineage.concat())
}

/// The cohort's timetable as iCalendar text (RFC 5545, CRLF line ends); with a learner, their
/// calendar (the cohort's sessions and the defences they are due at).
///
/// # Errors
/// [`ExportError::NotFound`] for an unknown cohort, or a learner not enrolled in it.
pub async fn calendar(
    journal: &Journal,
    cohort_id: &str,
    learner_id: Option<&str>,
) -> Result<String, ExportError> {
    let (cohort_events, outline) = cohort(journal, cohort_id).await?;
    let programme = stream(journal, StreamKind::PROGRAMME, &outline.programme_id).await?;
    let mut calendar = ics::Calendar::from_streams(cohort_id, &programme, &cohort_events);
    if let Some(learner_id) = learner_id {
        let transcript = transcript(journal, cohort_id, learner_id).await?;
        let study = field_study_of(journal, &transcript).await?;
        calendar = calendar.for_learner(learner_id, &study);
    }
    Ok(calendar.to_ics())
}

/// The learner's transcript as a CLR 2.0 `ClrCredential` (JSON-LD; [`crate::signing::credential_jwt`] secures it).
///
/// # Errors
/// [`ExportError::NotFound`] for an unknown cohort or a learner not enrolled in it.
pub async fn transcript_clr(
    journal: &Journal,
    publisher: &Publisher,
    cohort_id: &str,
    learner_id: &str,
) -> Result<Value, ExportError> {
    let (cohort_events, outline) = cohort(journal, cohort_id).await?;
    let transcript = transcript(journal, cohort_id, learner_id).await?;
    let programme = stream(journal, StreamKind::PROGRAMME, &outline.programme_id).await?;
    let study = field_study_of(journal, &transcript).await?;
    Ok(clr::render(
        &clr::ClrSources {
            transcript: &transcript,
            programme: &programme,
            cohort: &cohort_events,
            field_study: &study,
        },
        publisher,
    ))
}

/// The field study's xAPI statements, as a JSON array.
///
/// # Errors
/// [`ExportError::NotFound`] for an unknown field study.
pub async fn statements(
    journal: &Journal,
    publisher: &Publisher,
    field_study_id: &str,
) -> Result<Value, ExportError> {
    let events = stream(journal, StreamKind::FIELD_STUDY, field_study_id).await?;
    if events.is_empty() {
        return Err(ExportError::NotFound(format!(
            "no field study {field_study_id:?}"
        )));
    }
    Ok(Value::Array(xapi::statements(&events, publisher)))
}

// ---- HTTP ----

fn error_response(e: &ExportError) -> Response {
    let (status, body) = match e {
        ExportError::NotFound(m) => (
            StatusCode::NOT_FOUND,
            json!({"outcome": "rejected", "code": "not_found", "message": m}),
        ),
        ExportError::Unavailable(m) => {
            tracing::warn!(error = %m, "export: journal unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"outcome": "unavailable", "message": m}),
            )
        }
        ExportError::Internal(m) => {
            tracing::error!(error = %m, "export failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"outcome": "error", "message": m}),
            )
        }
    };
    (status, Json(body)).into_response()
}

fn calendar_response(result: Result<String, ExportError>, filename: String) -> Response {
    match result {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, ics::MEDIA_TYPE.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{filename}.ics\""),
                ),
            ],
            text,
        )
            .into_response(),
        Err(e) => error_response(&e),
    }
}

fn json_response(result: Result<Value, ExportError>, media_type: &'static str) -> Response {
    match result.and_then(|v| {
        serde_json::to_string_pretty(&v).map_err(|e| ExportError::Internal(e.to_string()))
    }) {
        Ok(text) => ([(header::CONTENT_TYPE, media_type)], text).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `GET /cohorts/{id}/timetable.ics`.
pub async fn http_cohort_calendar(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    calendar_response(calendar(&state.journal, &id, None).await, safe_name(&id))
}

/// `GET /cohorts/{id}/learners/{learner}/timetable.ics`.
pub async fn http_learner_calendar(
    State(state): State<AppState>,
    Path((id, learner)): Path<(String, String)>,
) -> Response {
    let name = format!("{}-{}", safe_name(&id), safe_name(&learner));
    calendar_response(calendar(&state.journal, &id, Some(&learner)).await, name)
}

/// `GET /cohorts/{id}/learners/{learner}/transcript.clr` and `.../clr.json`.
pub async fn http_clr(
    State(state): State<AppState>,
    Path((id, learner)): Path<(String, String)>,
) -> Response {
    let result = match publisher_from_env() {
        Ok(publisher) => transcript_clr(&state.journal, &publisher, &id, &learner).await,
        Err(e) => Err(e),
    };
    json_response(result, clr::MEDIA_TYPE)
}

/// `GET /field-studies/{id}/xapi`.
pub async fn http_xapi(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let result = match publisher_from_env() {
        Ok(publisher) => statements(&state.journal, &publisher, &id).await,
        Err(e) => Err(e),
    };
    json_response(result, xapi::MEDIA_TYPE)
}

/// A file name made of the id's `[a-z0-9-]` characters (ids that reach a 200 are such).
fn safe_name(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(63)
        .collect()
}

// ---- CLI ----

/// Where IRIs are minted and who issues (flags of `fieldtrail export clr|xapi`).
#[derive(Clone, Debug, Args)]
pub struct PublisherArgs {
    /// Base URL of achievement, activity and issuer IRIs.
    #[arg(long, env = PUBLIC_URL_ENV, default_value = formats::DEFAULT_BASE_URL)]
    pub public_url: String,
    /// Name of the issuing organisation (CLR `issuer.name`).
    #[arg(long, env = ISSUER_NAME_ENV, default_value = formats::DEFAULT_ISSUER_NAME)]
    pub issuer_name: String,
}

/// `fieldtrail export ...`: what to export.
#[derive(Clone, Debug, Subcommand)]
pub enum ExportCommand {
    /// A cohort's timetable as iCalendar (RFC 5545); with --learner, that learner's calendar.
    Ics {
        /// Cohort id.
        #[arg(long)]
        cohort: String,
        /// Learner id: adds the defences the learner is due at.
        #[arg(long)]
        learner: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A learner's transcript as a 1EdTech CLR 2.0 credential (JSON-LD; with --signed, a
    /// VC-JWT signed with the key in force).
    Clr {
        /// Cohort id.
        #[arg(long)]
        cohort: String,
        /// Learner id.
        #[arg(long)]
        learner: String,
        /// Write the credential secured as a VC-JWT (EdDSA), as
        /// `GET …/transcript.jwt` answers, instead of the JSON document.
        #[arg(long)]
        signed: bool,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where IRIs are minted and who issues.
        #[command(flatten)]
        publisher: PublisherArgs,
    },
    /// A field study's evaluation feed as xAPI 1.0.3 statements (JSON array).
    Xapi {
        /// Field study id.
        #[arg(long)]
        field_study: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where IRIs are minted and who issues.
        #[command(flatten)]
        publisher: PublisherArgs,
    },
    /// Cohort trajectories for researchers, pseudonymised (CSV, Parquet or JSON Lines), with a
    /// data dictionary beside: see `crate::research`.
    Trajectories(crate::research::TrajectoriesArgs),
}

fn publisher(args: &PublisherArgs) -> anyhow::Result<Publisher> {
    Publisher::new(&args.public_url, &args.issuer_name).map_err(anyhow::Error::msg)
}

fn pretty(value: &Value) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Runs `fieldtrail export ...`: writes the export to `--out` or standard output.
///
/// # Errors
/// An unknown cohort, learner or field study ("no cohort \"x\""), an unreachable database, or
/// a file that cannot be written: the CLI prints the message and exits with status 1.
pub async fn run(settings: &Settings, command: ExportCommand) -> anyhow::Result<()> {
    let journal = crate::open_existing_journal(settings, 2).await?;
    let (bytes, out) = match command {
        ExportCommand::Ics {
            cohort,
            learner,
            out,
        } => (
            calendar(&journal, &cohort, learner.as_deref())
                .await?
                .into_bytes(),
            out,
        ),
        ExportCommand::Clr {
            cohort,
            learner,
            signed,
            out,
            publisher: args,
        } => {
            let publisher = publisher(&args)?;
            let doc = transcript_clr(&journal, &publisher, &cohort, &learner).await?;
            if signed {
                let token = crate::signing::credential_jwt(
                    &crate::signing::store(settings),
                    &publisher,
                    &doc,
                )?;
                (format!("{token}\n").into_bytes(), out)
            } else {
                (pretty(&doc)?, out)
            }
        }
        ExportCommand::Xapi {
            field_study,
            out,
            publisher: args,
        } => {
            let doc = statements(&journal, &publisher(&args)?, &field_study).await?;
            (pretty(&doc)?, out)
        }
        ExportCommand::Trajectories(args) => return crate::research::run_cli(&journal, args).await,
    };
    match out {
        Some(path) => std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => crate::cli::output::emit_bytes(&bytes)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_id_characters() {
        assert_eq!(safe_name("cohort-2025"), "cohort-2025");
        assert_eq!(safe_name("a\"b/../c\r\n"), "abc");
    }
}
