//! The command handler: one path for the HTTP API and the import.
//!
//! envelope → duplicate check (ledger) → parse and check `data` and `at` → the aggregate's
//! state from the [`AggregateCache`] (the events after its cached version read from the
//! journal) → cqrs-es `Aggregate::handle` decides → [`Journal`] append with the expected
//! version and the ledger row (one transaction, shared with concurrent commands: group
//! commit), which answers the events' global positions. A version conflict (another command on
//! the same aggregate committed first) is retried with a fresh load, at most
//! [`CommandHandler::retries`] times. `fieldtrail import` decides whole batches in memory
//! instead ([`crate::bulk`]).

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use fieldtrail_domain::command::{
    CohortCommand, FieldStudyCommand, ProgrammeCommand, SubjectCommand,
};
use fieldtrail_domain::{
    Cohort, Command, CommandEnvelope, DataSubject, DecideError, FieldStudy, Lookups, Programme,
    Rejection, Stamped,
};
use fieldtrail_journal::{
    AggregateCache, AppendedCommand, CommandMetadata, Journal, JournalError, JournalLookups,
    RejectedCommand, DEFAULT_CAPACITY,
};
use serde::Serialize;
use std::sync::Arc;

/// How many times a command that lost a race on its aggregate is decided again by default.
/// Between attempts it waits a random 0..(5 ms × 2^attempt) (capped at 320 ms), so that
/// contenders spread out; 20 concurrent commands on one cohort all pass (tested).
pub const DEFAULT_RETRIES: u32 = 12;

/// Largest `data` of one command, in bytes of JSON. An event must fit in one NATS message
/// (1 MiB by default on the server, `max_payload`) with its envelope; a command's data is kept
/// well under that.
pub const MAX_DATA_BYTES: usize = 256 * 1024;

/// The environment variable naming a failpoint, for fault-injection tests only:
/// `crash_after_commit:<command_id>` kills the process with SIGKILL right after that command's
/// transaction commits, before anything else (projector, relay, HTTP answer) can see it.
pub const FAILPOINT_ENV: &str = "FIELDTRAIL_FAILPOINT";

/// The answer to a command that could be judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Its events were appended.
    Applied {
        /// The idempotency key.
        command_id: String,
        /// `type/id`.
        stream: String,
        /// Global positions of its first and last events.
        positions: [i64; 2],
    },
    /// The command id was applied before; nothing was appended now.
    Duplicate {
        /// The idempotency key.
        command_id: String,
        /// `type/id` of the stream it appended to the first time.
        stream: String,
        /// Global positions of its first and last events, from the first time.
        positions: [i64; 2],
    },
    /// Refused by a rule; nothing was appended.
    Rejected {
        /// The command id, when the envelope was readable.
        command_id: Option<String>,
        /// The FORMAT.md code.
        code: fieldtrail_domain::Code,
        /// A sentence naming the field or the rule.
        message: String,
    },
}

impl Outcome {
    pub(crate) fn rejected(command_id: Option<&str>, r: Rejection) -> Self {
        Outcome::Rejected {
            command_id: command_id.map(str::to_owned),
            code: r.code,
            message: r.message,
        }
    }

    /// The answer remembered for a command the rules refused (its first answer). A code this
    /// build does not know reads as `conflict`.
    pub(crate) fn from_rejection(r: RejectedCommand) -> Self {
        Outcome::Rejected {
            command_id: Some(r.command_id),
            code: fieldtrail_domain::Code::parse(&r.code)
                .unwrap_or(fieldtrail_domain::Code::Conflict),
            message: r.message,
        }
    }

    /// Whether this is the remembered refusal `kept` (same code and stored message).
    fn is_same_refusal(&self, kept: &RejectedCommand) -> bool {
        matches!(self, Outcome::Rejected { code, message, .. }
            if code.as_str() == kept.code && *message == kept.message)
    }

    pub(crate) fn from_ledger(a: AppendedCommand, applied: bool) -> Self {
        let positions = [a.first_position, a.last_position];
        if applied {
            Outcome::Applied {
                command_id: a.command_id,
                stream: a.stream,
                positions,
            }
        } else {
            Outcome::Duplicate {
                command_id: a.command_id,
                stream: a.stream,
                positions,
            }
        }
    }
}

/// A command read and checked, ready to be decided (see [`prepare`]).
pub(crate) struct Prepared {
    /// The typed command.
    pub(crate) command: Command,
    /// The id of the aggregate it goes to.
    pub(crate) aggregate_id: String,
    /// Its events' metadata.
    pub(crate) metadata: CommandMetadata,
}

/// The checks of a command before it is decided, without I/O: the size of `data`, its shape
/// (`Command::parse`), the clock (`at` not after `now`), and the events' metadata, with
/// `actor` (the authenticated principal or the import's operator) as the actor and the
/// envelope's own actor kept as `reported_actor`. The envelope's own checks
/// (`check`, `check_texts`) and the ledger come before.
///
/// # Errors
/// The [`Rejection`] (`invalid`) naming the field.
pub(crate) fn prepare(
    envelope: &CommandEnvelope,
    now: DateTime<Utc>,
    actor: Option<&str>,
) -> Result<Prepared, Rejection> {
    let size = envelope.data.to_string().len();
    if size > MAX_DATA_BYTES {
        return Err(Rejection::invalid(format!(
            "data: {size} bytes exceeds the limit of {MAX_DATA_BYTES} bytes for one command \
             (an event must fit in one NATS message)"
        )));
    }
    let command = Command::parse(&envelope.command, &envelope.data)
        .and_then(|c| envelope.check_clock(now).map(|()| c))?;
    let aggregate_id = command.target().1.to_owned();
    let metadata = CommandMetadata {
        command_id: envelope.command_id.clone(),
        command: envelope.command.clone(),
        actor: actor.unwrap_or(&envelope.actor).to_owned(),
        reported_actor: actor
            .filter(|a| *a != envelope.actor)
            .map(|_| envelope.actor.clone()),
        occurred_at: fieldtrail_domain::command::to_micros(envelope.at),
        correlation_id: envelope.command_id.clone(),
        causation_id: envelope.command_id.clone(),
        event_ids: Vec::new(),
    };
    Ok(Prepared {
        command,
        aggregate_id,
        metadata,
    })
}

/// A command that could not be judged: not the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// PostgreSQL is unreachable (HTTP 503).
    #[error("the journal is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (HTTP 500, logged).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Decides and appends commands.
pub struct CommandHandler {
    journal: Journal,
    cache: AggregateCache,
    /// One lane per aggregate: commands on the same stream are decided and appended one after
    /// the other in this process (so they do not race each other into version conflicts);
    /// other processes on the same journal are still met by the version check and retries.
    lanes: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
    >,
    lookups: Arc<dyn Lookups>,
    retries: u32,
}

impl CommandHandler {
    /// A handler on `journal`, retrying version conflicts [`DEFAULT_RETRIES`] times, keeping
    /// up to [`DEFAULT_CAPACITY`] loaded aggregates between commands ([`AggregateCache`]).
    pub fn new(journal: Journal) -> Self {
        let cache = AggregateCache::new(journal.clone(), DEFAULT_CAPACITY);
        let lookups: Arc<dyn Lookups> = Arc::new(JournalLookups::new(cache.clone()));
        Self {
            lookups,
            cache,
            lanes: std::sync::Mutex::default(),
            journal,
            retries: DEFAULT_RETRIES,
        }
    }

    /// The same handler with `retries` automatic retries on version conflict (0: none, the
    /// loser gets `conflict`).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The journal it writes to.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The aggregates it keeps between commands.
    pub fn cache(&self) -> &AggregateCache {
        &self.cache
    }

    /// Judges one JSON envelope (an import line or an HTTP body), with `now` as the server's clock.
    ///
    /// # Errors
    /// [`HandleError`] when the journal cannot be used; rule violations are
    /// `Ok(Outcome::Rejected)`.
    pub async fn handle_json(
        &self,
        json: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, HandleError> {
        self.handle_json_as(json, now, None).await
    }

    /// As [`CommandHandler::handle_json`], recording `actor` (the authenticated principal, or
    /// the operator of an import) as the events' actor; the envelope's own `actor` is then
    /// kept as `reported_actor`.
    ///
    /// # Errors
    /// As [`CommandHandler::handle_json`].
    pub async fn handle_json_as(
        &self,
        json: &str,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<Outcome, HandleError> {
        match CommandEnvelope::parse_line(json) {
            Ok(envelope) => self.handle_as(&envelope, now, actor).await,
            Err(r) => {
                // Name the command in the answer when the line carries a readable command_id.
                let id = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| {
                        v.get("command_id")
                            .and_then(|c| c.as_str())
                            .map(str::to_owned)
                    });
                Ok(Outcome::rejected(id.as_deref(), r))
            }
        }
    }

    /// Judges one envelope, with `now` as the server's clock.
    ///
    /// # Errors
    /// As [`CommandHandler::handle_json`].
    pub async fn handle(
        &self,
        envelope: &CommandEnvelope,
        now: DateTime<Utc>,
    ) -> Result<Outcome, HandleError> {
        self.handle_as(envelope, now, None).await
    }

    /// Judges one envelope on behalf of `actor` (see [`CommandHandler::handle_json_as`]).
    ///
    /// # Errors
    /// As [`CommandHandler::handle_json`].
    #[tracing::instrument(
        name = "command",
        skip_all,
        fields(
            command_id = %envelope.command_id,
            command = %envelope.command,
            stream = tracing::field::Empty,
            outcome = tracing::field::Empty
        )
    )]
    pub async fn handle_as(
        &self,
        envelope: &CommandEnvelope,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<Outcome, HandleError> {
        let started = std::time::Instant::now();
        let result = self.judge(envelope, now, actor).await;
        let outcome = crate::http::metrics::outcome_label(&result);
        crate::http::metrics::command_judged(&envelope.command, &outcome, started.elapsed());
        let span = tracing::Span::current();
        span.record("outcome", outcome.as_str());
        if let Ok(Outcome::Applied { stream, .. } | Outcome::Duplicate { stream, .. }) = &result {
            span.record("stream", stream.as_str());
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "command judged"
        );
        result
    }

    async fn judge(
        &self,
        envelope: &CommandEnvelope,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<Outcome, HandleError> {
        let id = Some(envelope.command_id.as_str());
        if let Err(r) = envelope.check().and_then(|()| envelope.check_texts()) {
            return Ok(Outcome::rejected(id, r));
        }
        // The ledger is not read up front: an applied command id makes the append fail
        // (`DuplicateCommand`), and a rejection looks it up before answering
        // (`rejected_unless_applied`), so a re-sent command gets its first answer either way.
        let Prepared {
            command,
            aggregate_id,
            metadata,
        } = match prepare(envelope, now, actor) {
            Ok(p) => p,
            Err(r) => return self.rejected_unless_applied(envelope, r, None).await,
        };
        let stream = format!("{}/{aggregate_id}", command.target().0.as_str());
        tracing::Span::current().record(
            "stream",
            format!("{}/{aggregate_id}", command.target().0.as_str()).as_str(),
        );
        let _lane = self
            .lane(&format!("{}/{aggregate_id}", command.target().0.as_str()))
            .lock_owned()
            .await;
        failpoint_before_append(&envelope.command_id);
        let mut attempt = 0;
        loop {
            let result = match &command {
                Command::Programme(c) => {
                    self.execute::<Programme, ProgrammeCommand>(
                        &aggregate_id,
                        envelope,
                        c,
                        &metadata,
                    )
                    .await
                }
                Command::Cohort(c) => {
                    self.execute::<Cohort, CohortCommand>(&aggregate_id, envelope, c, &metadata)
                        .await
                }
                Command::FieldStudy(c) => {
                    self.execute::<FieldStudy, FieldStudyCommand>(
                        &aggregate_id,
                        envelope,
                        c,
                        &metadata,
                    )
                    .await
                }
                Command::Subject(c) => {
                    self.execute::<DataSubject, SubjectCommand>(
                        &aggregate_id,
                        envelope,
                        c,
                        &metadata,
                    )
                    .await
                }
            };
            match result {
                Ok(positions) => {
                    failpoint_after_commit(&envelope.command_id);
                    return Ok(Outcome::Applied {
                        command_id: envelope.command_id.clone(),
                        stream: format!("{}/{aggregate_id}", command.target().0.as_str()),
                        positions,
                    });
                }
                // A refusal by the rules spends the command id: it is remembered.
                Err(Decision::Rejected(r)) => {
                    return self.rejected_unless_applied(envelope, r, Some(&stream)).await
                }
                Err(Decision::Duplicate) => return self.first_answer(&envelope.command_id).await,
                Err(Decision::Conflict) if attempt < self.retries => {
                    attempt += 1;
                    tracing::debug!(attempt, "version conflict; deciding again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Decision::Conflict) => {
                    return self.rejected_unless_applied(
                        envelope,
                        Rejection::conflict(format!(
                            "a concurrent command on {stream} committed first (after {attempt} retries); send it again"
                        )),
                        None,
                    )
                    .await
                }
                Err(Decision::Failed(e)) => return Err(e),
            }
        }
    }
}

impl CommandHandler {
    /// The answer to a command that is not applied now: its first answer if its id was
    /// answered before (a re-sent command: applied, or refused by the rules), else
    /// `rejection`, which is remembered as the id's answer when the rules gave it on the
    /// journal's state (`remember`: the stream it was decided on; [`fieldtrail_journal::RejectedCommand`]).
    ///
    /// # Errors
    /// When the ledger cannot be read.
    async fn rejected_unless_applied(
        &self,
        envelope: &CommandEnvelope,
        rejection: Rejection,
        remember: Option<&str>,
    ) -> Result<Outcome, HandleError> {
        let id = &envelope.command_id;
        if let Some(first) = self.answered(id).await? {
            return Ok(first);
        }
        if let Some(stream) = remember {
            let kept = RejectedCommand {
                command_id: id.clone(),
                command: envelope.command.clone(),
                stream: stream.to_owned(),
                code: rejection.code.as_str().to_owned(),
                // Kept without the personal values it may quote (no table holds one in
                // clear); this answer still quotes them.
                message: fieldtrail_domain::personal::redact(
                    &envelope.command,
                    &envelope.data,
                    &rejection.message,
                ),
            };
            self.journal
                .record_rejections(std::slice::from_ref(&kept))
                .await
                .map_err(journal_error)?;
            // Another server may have answered the same id first: its answer stands (ours
            // when it is the same refusal, as kept).
            if let Some(first) = self.answered(id).await? {
                if !first.is_same_refusal(&kept) {
                    return Ok(first);
                }
            }
        }
        Ok(Outcome::rejected(Some(id), rejection))
    }

    /// The first answer to `command_id`, which the journal refused as a duplicate.
    ///
    /// # Errors
    /// When the journal cannot be read, or holds no answer for it.
    async fn first_answer(&self, command_id: &str) -> Result<Outcome, HandleError> {
        self.answered(command_id).await?.ok_or_else(|| {
            HandleError::Internal("duplicate command missing from the ledger".to_owned())
        })
    }

    /// How `command_id` was answered before, if it was: applied (the ledger) or refused by the
    /// rules (remembered refusals).
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn answered(&self, command_id: &str) -> Result<Option<Outcome>, HandleError> {
        if let Some(done) = self
            .journal
            .applied(command_id)
            .await
            .map_err(journal_error)?
        {
            return Ok(Some(Outcome::from_ledger(done, false)));
        }
        let refused = self
            .journal
            .rejected_many(&[command_id.to_owned()])
            .await
            .map_err(journal_error)?;
        Ok(refused.into_iter().next().map(Outcome::from_rejection))
    }

    /// The lane of `stream` (created on first use; dropped when no command holds it).
    fn lane(&self, stream: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut lanes) = self.lanes.lock() else {
            return Arc::default();
        };
        if let Some(lane) = lanes.get(stream).and_then(std::sync::Weak::upgrade) {
            return lane;
        }
        if lanes.len() >= 4096 {
            lanes.retain(|_, lane| lane.strong_count() > 0);
        }
        let lane = Arc::new(tokio::sync::Mutex::new(()));
        lanes.insert(stream.to_owned(), Arc::downgrade(&lane));
        lane
    }
}

/// A random pause before retry `attempt` (1, 2, ...): uniform in 0..min(5 ms × 2^attempt, 320 ms).
fn backoff(attempt: u32) -> std::time::Duration {
    let ceiling_us = 5_000u64 << attempt.min(6);
    let random =
        u64::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(ceiling_us)).unwrap_or(0);
    std::time::Duration::from_micros(random)
}

/// Set by the `crash_after_commit` failpoint before the command it names is appended (and
/// until the process kills itself right after the commit), so that the projector and relay of
/// this process cannot see that command's events in between.
pub static FROZEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn crash_after_commit_of(command_id: &str) -> bool {
    std::env::var(FAILPOINT_ENV)
        .is_ok_and(|spec| spec.strip_prefix("crash_after_commit:") == Some(command_id))
}

fn failpoint_before_append(command_id: &str) {
    if crash_after_commit_of(command_id) {
        FROZEN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn failpoint_after_commit(command_id: &str) {
    if crash_after_commit_of(command_id) {
        FROZEN.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(
            command_id,
            "failpoint crash_after_commit: killing the process"
        );
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        // `kill` cannot fail on our own pid; if it is missing, abort is the next best thing.
        std::process::abort();
    }
}

enum Decision {
    Rejected(Rejection),
    Duplicate,
    Conflict,
    Failed(HandleError),
}

impl CommandHandler {
    /// Decides `command` against the cached state of `A::TYPE/aggregate_id` and appends its
    /// events with the expected version (group commit: [`fieldtrail_journal::Backend::append`]).
    /// Returns the global positions of its first and last events. A failed append forgets the
    /// cached state, so that the next attempt reloads it.
    async fn execute<A, C>(
        &self,
        aggregate_id: &str,
        envelope: &CommandEnvelope,
        command: &C,
        metadata: &CommandMetadata,
    ) -> Result<[i64; 2], Decision>
    where
        A: Aggregate<Command = Stamped<C>, Error = DecideError, Services = Arc<dyn Lookups>>
            + Clone
            + 'static,
        A::Event: cqrs_es::DomainEvent,
        C: Clone,
    {
        let failed = |e: JournalError| Decision::Failed(journal_error(e));
        // The kept state is decided on without reading the journal: if another writer appended
        // since, the append's version check fails and the retry reloads. A rejection is only
        // given on a state read from the journal now (a stale state could refuse wrongly).
        let (mut state, mut expected, mut fresh) = match self.cache.cached::<A>(aggregate_id) {
            Some((state, version)) => (state, version, false),
            None => {
                let (state, version) = self.cache.load::<A>(aggregate_id).await.map_err(failed)?;
                (state, version, true)
            }
        };
        let mut rows = loop {
            match crate::bulk::decide_events(&mut state, envelope, command.clone(), &self.lookups)
                .await
            {
                Ok(Ok(rows)) if !rows.is_empty() => break rows,
                // Nothing to append is the client's matter, not the server's: a command that
                // changes nothing is refused (the rules give their own code before this).
                Ok(Ok(_)) | Ok(Err(_)) if !fresh => {
                    (state, expected) = self.cache.load::<A>(aggregate_id).await.map_err(failed)?;
                    fresh = true;
                }
                Ok(Ok(_)) => {
                    return Err(Decision::Rejected(Rejection::conflict(
                        "the command would record nothing: there is nothing for it to change",
                    )))
                }
                Ok(Err(r)) => return Err(Decision::Rejected(r)),
                Err(e) => return Err(Decision::Failed(e)),
            }
        };
        // An erasure keeps its subject's research reason categories, read while the key
        // still opens the texts.
        if A::TYPE == DataSubject::TYPE {
            crate::subjects::keep_reason_categories(&self.journal, &mut rows)
                .await
                .map_err(failed)?;
        }
        match crate::companion::append(
            &self.journal,
            A::TYPE,
            aggregate_id,
            expected,
            &rows,
            metadata,
        )
        .await
        {
            Ok(positions) => {
                let version = expected + i64::try_from(rows.len()).unwrap_or(i64::MAX);
                self.cache.store(aggregate_id, state, version);
                Ok([
                    positions.first().copied().unwrap_or(0),
                    positions.last().copied().unwrap_or(0),
                ])
            }
            Err(e) => {
                self.cache.evict(A::TYPE, aggregate_id);
                Err(match e {
                    JournalError::VersionConflict { .. } => Decision::Conflict,
                    JournalError::DuplicateCommand(_) => Decision::Duplicate,
                    // Another stream holds a claim this command's events take (a rule across
                    // aggregates, enforced by the reservation table): the rule's rejection.
                    JournalError::ClaimHeld { claim, holder } => {
                        crate::http::metrics::reservation_refused(claim.kind);
                        Decision::Rejected(claim.refusal(&holder))
                    }
                    other => failed(other),
                })
            }
        }
    }
}

pub(crate) fn journal_error(e: JournalError) -> HandleError {
    if e.is_unavailable() {
        HandleError::Unavailable(e.to_string())
    } else {
        HandleError::Internal(e.to_string())
    }
}
