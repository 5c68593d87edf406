//! `fieldtrail`: the command line. Parses arguments, sets up logging, calls the library.

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fieldtrail::cli::output::print_out;
use fieldtrail::cli::{demo, import, status};
use fieldtrail::config::{file as settings_file, telemetry};
use fieldtrail::handler::CommandHandler;
use fieldtrail::workers::relay;
use fieldtrail::{export, read, serve, Settings};
use fieldtrail_journal::Journal;
use fieldtrail_projections::runner::{self, Projector};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: under glibc malloc, allocation and freeing took
/// about a third of the time of a projection rebuild and of the relay (perf; BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (Linux `prctl(PR_SET_THP_DISABLE)`):
/// with them, the allocator's fresh memory came in 2 MiB pages zeroed at their first touch,
/// which took over a third of the import's append and a large share of the rebuild (`perf`;
/// BENCHMARKS.md, 2026-12-08 evening). Best effort: a kernel that refuses leaves them on.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "transparent huge pages stay on");
    }
}

/// fieldtrail: the system of record of a training certificate, as an event-sourced journal.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); default /etc/fieldtrail/fieldtrail.toml when it exists.
    /// Flags beat environment variables, which beat the file, which beats the defaults.
    #[arg(long, env = "FIELDTRAIL_CONFIG", global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Job,
}

#[derive(Subcommand)]
enum Job {
    /// Create the database if missing and apply the migrations.
    Migrate,
    /// Send each line of a JSON Lines file through the command handler; wait for the projections.
    Import {
        /// The file (one command envelope per line).
        file: PathBuf,
        /// Also write every line's outcome as JSON here.
        #[arg(long)]
        report_json: Option<PathBuf>,
        /// Who runs the import (a staff member's name): the events' actor is `staff:<NAME>`;
        /// each line's own `actor` is kept as `reported_actor`.
        #[arg(long, env = "FIELDTRAIL_OPERATOR", default_value = "import")]
        operator: String,
    },
    /// Print a read model as JSON (as it stands, or --as-of a time or a position).
    Report {
        #[command(subcommand)]
        document: Document,
        #[command(flatten)]
        as_of: fieldtrail::audit::AsOfArgs,
        /// Print the document only once the read models include this global position (a
        /// command answer's `position`), waiting up to FIELDTRAIL_READ_WAIT_MS (default 2000);
        /// exit status 1 if they do not. Not with --as-of…: a cut is folded from the journal.
        #[arg(long, global = true, value_name = "POSITION",
              conflicts_with_all = ["as_of", "as_of_position", "as_of_occurred"])]
        min_position: Option<u64>,
    },
    /// The auditor's views: stream and actor histories, the hash chain, attendance evidence.
    Audit {
        #[command(subcommand)]
        job: fieldtrail::audit::AuditJob,
    },
    /// Export a timetable (iCalendar), a transcript (CLR 2.0), an evaluation feed (xAPI) or
    /// pseudonymised cohort trajectories for research (CSV, Parquet, JSON Lines).
    Export {
        #[command(subcommand)]
        what: export::ExportCommand,
    },
    /// The signing keys (Ed25519) of credentials and audit digests, kept in --keys-dir.
    Keys {
        #[command(subcommand)]
        job: fieldtrail::signing::cli::KeysJob,
    },
    /// Create, list and revoke the HTTP API's tokens.
    Token {
        #[command(subcommand)]
        job: fieldtrail::auth::cli::TokenJob,
    },
    /// The reference dashboard consumer: follow the JetStream stream with a durable consumer
    /// and keep the attendance rate per cohort and module in a state file.
    Consume {
        /// The durable consumer's name.
        #[arg(long, default_value = "dashboard")]
        durable: String,
        /// The state file (view and per-stream versions).
        #[arg(long, default_value = "dashboard-state.json")]
        state: PathBuf,
        /// Stop when nothing more arrives instead of waiting.
        #[arg(long)]
        until_idle: bool,
        /// Print each event's personal fields, one JSON line each: in clear through the API
        /// with --api and a staff or auditor token (FIELDTRAIL_TOKEN), else "[scellé]".
        #[arg(long)]
        show_personal: bool,
        /// The API that reads personal fields in clear (e.g. http://127.0.0.1:8080).
        #[arg(long, env = "FIELDTRAIL_API_URL")]
        api: Option<String>,
    },
    /// Apply the retention rule of personal data: erase the group texts (reflexive notes, ...)
    /// of the field studies whose cohort closed at least N years ago, one `erase_subject`
    /// each (logged as `subject_erased`; running it again adds nothing).
    Retention {
        /// Years the group texts are kept after their cohort closed.
        #[arg(long, env = "FIELDTRAIL_RETENTION_GROUP_TEXTS_YEARS")]
        group_texts_years: u32,
    },
    /// Rebuild every read model, and the reservations (rules across aggregates), from the
    /// journal.
    Replay,
    /// Copy a journal into an empty one, on the same or the other backend, with its
    /// positions, metadata and hash chain; rebuild the read models there and verify the copy.
    Copy {
        /// The source journal (`sqlite://PATH` or `postgres://...`).
        #[arg(long)]
        from: String,
        /// The target journal (created if missing; must hold no event).
        #[arg(long)]
        to: String,
    },
    /// Run the HTTP API, the projector and the relay (address: --listen / http.listen).
    Serve,
    /// Show the journal head, each read model's and the relay's position and lag, who runs
    /// them, the JetStream stream, and whether all is ready (exit 2 when not).
    Status {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The effective configuration.
    Config {
        #[command(subcommand)]
        job: ConfigJob,
    },
    /// Measure the product against the raw limits of PostgreSQL and JetStream, in a scratch
    /// database and streams, and print the table (see BENCHMARKS.md).
    Bench(fieldtrail::bench::BenchArgs),
    /// Import the shipped cohort, wait for projections and relay, print a summary.
    Demo {
        /// Another file instead of the shipped cohort.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigJob {
    /// Print the effective configuration (TOML, each value with its source; passwords hidden).
    Show,
}

#[derive(Subcommand)]
enum Document {
    /// A cohort's timetable.
    Timetable {
        /// Cohort id.
        #[arg(long)]
        cohort: String,
    },
    /// A learner's transcript in a cohort.
    Transcript {
        /// Cohort id.
        #[arg(long)]
        cohort: String,
        /// Learner id.
        #[arg(long)]
        learner: String,
    },
    /// A field study's evaluation history.
    History {
        /// Field study id.
        #[arg(long)]
        field_study: String,
    },
    /// A cohort's complaints register (Qualiopi indicator 31).
    Complaints {
        /// Cohort id.
        #[arg(long)]
        cohort: String,
        /// Only the complaints this learner filed (what their own token reads over HTTP).
        #[arg(long)]
        learner: Option<String>,
    },
}

/// Exit status of an import whose lines were partly rejected.
const SOME_REJECTED: u8 = 3;

/// Exit status of a configuration that cannot be used (as for a command-line error).
const BAD_CONFIG: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    no_transparent_huge_pages();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let file = match settings_file::locate(&args)
        .map(|p| settings_file::read_file(&p))
        .transpose()
    {
        Ok(file) => file,
        Err(e) => {
            eprintln!("fieldtrail: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let matches =
        match settings_file::apply(Cli::command(), file.as_ref()).try_get_matches_from(&args) {
            Ok(matches) => matches,
            Err(e) => match settings_file::value_error(&e) {
                Some(bad) => {
                    eprintln!("fieldtrail: {bad}");
                    return ExitCode::from(BAD_CONFIG);
                }
                None => e.exit(),
            },
        };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let sources = settings_file::Sources::of(&matches, file.as_ref());
    if let Err(e) = settings_file::validate(&cli.settings, &sources) {
        eprintln!("fieldtrail: {e}");
        return ExitCode::from(BAD_CONFIG);
    }
    if let Job::Config {
        job: ConfigJob::Show,
    } = &cli.command
    {
        fieldtrail::say_raw!("{}", settings_file::show(&cli.settings, &sources));
        return ExitCode::SUCCESS;
    }
    telemetry::init_with(&cli.settings.log, cli.settings.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fieldtrail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings;
    match cli.command {
        Job::Bench(args) => fieldtrail::bench::run_cli(&settings, args).await?,
        Job::Migrate => {
            fieldtrail::open_journal(&settings, 2).await?;
            fieldtrail::say!(
                "migrated {}",
                fieldtrail::config::file::hide_secrets(&settings.database_url)
            );
        }
        Job::Import {
            file,
            report_json,
            operator,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let operator = format!("staff:{operator}");
            let (report, _) = import_and_project(&settings, &text, Some(&operator), true).await?;
            for line in report.lines.iter().filter(|l| l.outcome == "rejected") {
                fieldtrail::say!(
                    "line {}: {} rejected: {}: {}",
                    line.line,
                    line.command_id.as_deref().unwrap_or("-"),
                    line.code.map_or("-", |c| c.as_str()),
                    line.message.as_deref().unwrap_or("")
                );
            }
            fieldtrail::say!(
                "applied {}, duplicate {}, rejected {}",
                report.applied,
                report.duplicate,
                report.rejected
            );
            if let Some(path) = report_json {
                std::fs::write(&path, serde_json::to_vec_pretty(&report.lines)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if report.rejected > 0 {
                return Ok(ExitCode::from(SOME_REJECTED));
            }
        }
        Job::Audit { job } => return fieldtrail::audit::run(&settings, job).await,
        Job::Report {
            document,
            as_of,
            min_position,
        } => {
            let journal = fieldtrail::open_existing_journal(&settings, 2).await?;
            if let Some(min) = min_position {
                let min = i64::try_from(min).unwrap_or(i64::MAX);
                wait_for_read_models(&journal, min, fieldtrail::http::consistency::read_wait())
                    .await?;
            }
            let (kind, key) = match &document {
                Document::Timetable { cohort } => (read::TIMETABLE, cohort.clone()),
                Document::Transcript { cohort, learner } => {
                    (read::TRANSCRIPT, read::transcript_key(cohort, learner))
                }
                Document::History { field_study } => (read::HISTORY, field_study.clone()),
                Document::Complaints { cohort, .. } => (read::COMPLAINTS, cohort.clone()),
            };
            let found = match as_of.cut() {
                Some(cut) => fieldtrail::audit::document_as_of(&journal, kind, &key, cut)
                    .await?
                    .with_context(|| format!("no {kind} for {key:?} {cut}"))
                    .map(Some)?,
                None if kind == read::COMPLAINTS => {
                    read::complaints_register(&journal, &key).await?
                }
                None => read::document(&journal, kind, &key).await?,
            };
            let found = match (&document, found) {
                (
                    Document::Complaints {
                        learner: Some(learner),
                        ..
                    },
                    Some(register),
                ) => Some(read::own_complaints(register, learner)),
                (_, found) => found,
            };
            match found {
                Some(doc) => print_out(&serde_json::to_string_pretty(&doc)?)?,
                None => anyhow::bail!("no {kind} for {key:?}"),
            }
        }
        Job::Export { what } => export::run(&settings, what).await?,
        Job::Keys { job } => fieldtrail::signing::cli::run_keys(&settings, job).await?,
        Job::Token { job } => {
            let journal = fieldtrail::open_journal(&settings, 2).await?;
            fieldtrail::auth::cli::run(&journal, job).await?;
        }
        Job::Consume {
            durable,
            state,
            until_idle,
            show_personal,
            api,
        } => {
            anyhow::ensure!(
                !settings.nats_url.is_empty(),
                "consume reads JetStream: set NATS_URL (or --nats-url) to the NATS server"
            );
            let config = fieldtrail::cli::consumer::ConsumerConfig {
                nats_url: settings.nats_url.clone(),
                stream: settings.nats_stream.clone(),
                durable,
                state,
                until_idle,
                show_personal: show_personal.then(|| fieldtrail::cli::consumer::ShowPersonal {
                    api,
                    // A secret: from the environment only, never a flag.
                    token: std::env::var("FIELDTRAIL_TOKEN")
                        .ok()
                        .filter(|t| !t.trim().is_empty()),
                }),
            };
            let state = fieldtrail::cli::consumer::run(&config).await?;
            for (cohort, modules) in &state.attendance {
                for (module, rate) in modules {
                    fieldtrail::say!(
                        "{cohort} {module}: {:.1}% ({} / {} learner-half-days)",
                        100.0 * rate.ratio(),
                        rate.attended,
                        rate.held
                    );
                }
            }
            fieldtrail::say!(
                "applied {} events, skipped {} re-deliveries",
                state.applied,
                state.duplicates
            );
        }
        Job::Retention { group_texts_years } => {
            let journal = fieldtrail::open_existing_journal(&settings, 2).await?;
            let handler = fieldtrail::handler::CommandHandler::new(journal.clone());
            let report = fieldtrail::cli::retention::apply(
                &handler,
                &journal,
                group_texts_years,
                chrono::Utc::now(),
            )
            .await?;
            for subject in &report.erased {
                fieldtrail::say!("erased {subject}");
            }
            fieldtrail::say!(
                "retention ({group_texts_years} years after the cohort closed): {} erased, {} erased before, {} field studies kept",
                report.erased.len(),
                report.already.len(),
                report.kept
            );
        }
        Job::Replay => {
            let journal = fieldtrail::open_existing_journal(&settings, 2).await?;
            let progress = fieldtrail::cli::progress::Spinner::new(
                "replay",
                "rebuilding the read models (one transaction)",
            );
            let n = runner::rebuild(&journal).await?;
            // The reservations too: a derived index of the events like the read models.
            let reservations = journal.rebuild_reservations().await?;
            progress.finish(&format!("{n} events folded"));
            fieldtrail::say!("rebuilt the read models from {n} events");
            fieldtrail::say!(
                "rebuilt the reservations from {} events: {} held{}",
                reservations.events,
                reservations.held,
                if reservations.clashes > 0 {
                    format!(
                        "; {} later claims met one already held (written before the rule was enforced; the first holder kept it)",
                        reservations.clashes
                    )
                } else {
                    String::new()
                }
            );
        }
        Job::Copy { from, to } => {
            let source = fieldtrail_journal::open_existing(&from, 4)
                .await
                .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            let target = fieldtrail_journal::open(&to, 4)
                .await
                .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            let progress = fieldtrail::cli::progress::Progress::new(
                "copy",
                "events",
                u64::try_from(source.count().await?).unwrap_or(0),
                std::time::Duration::from_secs(settings.progress_interval_secs),
            );
            let report = fieldtrail::cli::copy::copy(&source, &target, &progress).await?;
            progress.finish();
            fieldtrail::say!(
                "copied {} events, {} commands, {} signing keys and {} signed digests from {} to {} (head position {}); read models rebuilt from {} events; {} reservations rebuilt; the copy verifies",
                report.events,
                report.commands,
                report.signing_keys,
                report.digests,
                fieldtrail::config::file::hide_secrets(&from),
                fieldtrail::config::file::hide_secrets(&to),
                report.head,
                report.folded,
                report.reservations
            );
        }
        Job::Serve => {
            let listen = settings.listen;
            serve::serve(settings, listen).await?;
        }
        Job::Status { json } => return status::run(&settings, json).await,
        Job::Config {
            job: ConfigJob::Show,
        } => {}
        Job::Demo { file } => {
            let text = match &file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => demo::COHORT_2025.to_owned(),
            };
            let started = std::time::Instant::now();
            let nats = match settings.bus() {
                Some(url) => Some(relay::connect(url).await?),
                None => None,
            };
            let (report, journal) =
                import_and_project(&settings, &text, Some("staff:demo"), false).await?;
            let published = match nats {
                Some(nats) => {
                    let relay = relay::Relay::new(journal.clone(), nats.clone(), &settings);
                    relay::ensure_stream(&async_nats::jetstream::new(nats), &settings).await?;
                    let n = relay.catch_up().await?.events;
                    format!("relay published {n} events to {}", settings.nats_stream)
                }
                None => "no NATS configured (NATS_URL): nothing relayed".to_owned(),
            };
            fieldtrail::say_raw!("{}", demo::summary(&journal).await?);
            fieldtrail::say!(
                "\nimport: applied {}, duplicate {}, rejected {}; {published}; {:.2} s",
                report.applied,
                report.duplicate,
                report.rejected,
                started.elapsed().as_secs_f64()
            );
            fieldtrail::say!(
                "journal: {} ({})",
                fieldtrail::config::file::hide_secrets(&settings.database_url),
                journal.kind().as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import_and_project(
    settings: &Settings,
    text: &str,
    operator: Option<&str>,
    show_progress: bool,
) -> anyhow::Result<(import::ImportReport, Journal)> {
    let journal = fieldtrail::open_journal(settings, settings.pool_size).await?;
    let handler = CommandHandler::new(journal.clone());
    let progress = if show_progress {
        fieldtrail::cli::progress::Progress::new(
            "import",
            "lines",
            import::line_count(text),
            std::time::Duration::from_secs(settings.progress_interval_secs),
        )
    } else {
        fieldtrail::cli::progress::Progress::hidden()
    };
    let report = import::import_text_with_progress(&handler, text, operator, &progress).await?;
    // Everything the import appended is committed; wait until the global log may be read past
    // it (another long transaction on the server holds the horizon back), then project.
    if !journal
        .wait_readable(std::time::Duration::from_secs(60))
        .await?
    {
        anyhow::bail!("a transaction on the PostgreSQL server has held the global log back for 60 s; the read models are not up to date yet");
    }
    let mut projector = Projector::start(journal.clone()).await?;
    projector.catch_up().await?;
    // Another process's projector (a `serve` sharing the journal) may hold the checkpoint:
    // what is printed next must include every line, so wait for the import's last position.
    wait_for_read_models(&journal, report.last_position, IMPORT_READ_WAIT).await?;
    Ok((report, journal))
}

/// How long `import` and `demo` wait for the read models to include their last command.
const IMPORT_READ_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits up to `limit` for the read models to include global position `min`
/// ([`read::wait_for_position`]).
///
/// # Errors
/// When they do not within `limit` (naming both positions), or the journal cannot be read.
async fn wait_for_read_models(
    journal: &Journal,
    min: i64,
    limit: std::time::Duration,
) -> anyhow::Result<i64> {
    match read::wait_for_position(journal, min, limit).await? {
        read::Reached::Yes(position) => Ok(position),
        read::Reached::No { reflected, head } => anyhow::bail!(
            "the read models have not reached position {min} within {} ms (they reflect position {reflected}; the journal's head is {head}): is a projector running (fieldtrail serve)? retry later",
            limit.as_millis()
        ),
    }
}
