//! `fieldtrail import FILE`: every line through the same command handler as the API.

use crate::cli::progress::Progress;
use crate::handler::{CommandHandler, Outcome};
use fieldtrail_domain::Code;
use serde::Serialize;

/// One line's outcome in the JSON report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineReport {
    /// 1-based line number.
    pub line: usize,
    /// The line's command id, when readable.
    pub command_id: Option<String>,
    /// `applied`, `duplicate` or `rejected`.
    pub outcome: &'static str,
    /// The rejection code, for rejected lines.
    pub code: Option<Code>,
    /// The rejection message, for rejected lines.
    pub message: Option<String>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Lines whose events were appended.
    pub applied: usize,
    /// Lines whose command id was already applied.
    pub duplicate: usize,
    /// Lines refused.
    pub rejected: usize,
    /// The highest global position among the applied and duplicate lines' last events (0
    /// when none): the minimum position a read that must show the whole import waits for.
    pub last_position: i64,
    /// Every line, in order (blank lines are skipped and not reported).
    pub lines: Vec<LineReport>,
}

/// Sends each non-blank line of `text` through `handler`, in order, on behalf of `operator`
/// (`role:name`; the events' actor, each line's own `actor` being kept as `reported_actor`),
/// or with each line's own actor when `operator` is `None`.
///
/// # Errors
/// When the journal cannot be used (the import stops at that line; what was applied stays).
pub async fn import_text(
    handler: &CommandHandler,
    text: &str,
    operator: Option<&str>,
) -> anyhow::Result<ImportReport> {
    import_text_with_progress(handler, text, operator, &Progress::hidden()).await
}

/// The lines of `text` an import sends (the non-blank ones), for a progress total.
pub fn line_count(text: &str) -> u64 {
    text.lines().filter(|l| !l.trim().is_empty()).count() as u64
}

/// As [`import_text`], advancing `progress` by one for each line sent (see
/// [`crate::cli::progress`]: a bar on a terminal, plain lines otherwise).
///
/// # Errors
/// As [`import_text`].
pub async fn import_text_with_progress(
    handler: &CommandHandler,
    text: &str,
    operator: Option<&str>,
    progress: &Progress,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .collect();
    let texts: Vec<&str> = lines.iter().map(|(_, line)| *line).collect();
    let outcomes = handler
        .handle_lines_with_progress(&texts, &chrono::Utc::now, operator, progress)
        .await
        .map_err(|failed| {
            let (first, last) = (
                lines[failed.lines.start].0 + 1,
                lines[failed.lines.end - 1].0 + 1,
            );
            anyhow::anyhow!("lines {first}-{last}: {}", failed.error)
        })?;
    for (&(index, _), outcome) in lines.iter().zip(outcomes) {
        let entry = line_report(&mut report, index, outcome);
        report.lines.push(entry);
    }
    progress.finish();
    Ok(report)
}

/// Counts `outcome` into `report` and gives its line's entry (`index`: 0-based).
fn line_report(report: &mut ImportReport, index: usize, outcome: Outcome) -> LineReport {
    match outcome {
        Outcome::Applied {
            command_id,
            positions,
            ..
        } => {
            report.applied += 1;
            report.last_position = report.last_position.max(positions[1]);
            LineReport {
                line: index + 1,
                command_id: Some(command_id),
                outcome: "applied",
                code: None,
                message: None,
            }
        }
        Outcome::Duplicate {
            command_id,
            positions,
            ..
        } => {
            report.duplicate += 1;
            report.last_position = report.last_position.max(positions[1]);
            LineReport {
                line: index + 1,
                command_id: Some(command_id),
                outcome: "duplicate",
                code: None,
                message: None,
            }
        }
        Outcome::Rejected {
            command_id,
            code,
            message,
        } => {
            report.rejected += 1;
            LineReport {
                line: index + 1,
                command_id,
                outcome: "rejected",
                code: Some(code),
                message: Some(message),
            }
        }
    }
}
