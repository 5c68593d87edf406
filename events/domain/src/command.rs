//! Commands: what staff, facilitators and juries ask for, as the line envelope of FORMAT.md.
//!
//! [`CommandEnvelope::parse_line`] turns one JSON line (or one HTTP body) into a checked
//! envelope; [`Command::parse`] turns its `command` and `data` into a typed command, refusing
//! with `invalid` and a message naming the field when anything is missing, unknown, of the
//! wrong type, or breaks an id pattern or an enumeration.

use crate::error::Rejection;
use crate::event::StreamKind;
use crate::ids::{Id, Reason};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod strict;

/// How far in the future a command's `at` may lie (FORMAT.md: "more than 24 hours after the
/// server's clock" is `invalid`).
pub const MAX_CLOCK_AHEAD: Duration = Duration::hours(24);

/// One command as sent: the line envelope of FORMAT.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandEnvelope {
    /// The client's idempotency key; re-sending it applies nothing new.
    pub command_id: String,
    /// The command's name, e.g. `schedule_session`.
    pub command: String,
    /// When the fact happened in the world (RFC 3339 with offset); stored as `occurred_at`.
    pub at: DateTime<FixedOffset>,
    /// Who issued it, `role:name`.
    pub actor: String,
    /// The command's fields: a JSON object, with no key twice at any depth.
    #[serde(deserialize_with = "strict::object")]
    pub data: Value,
}

impl CommandEnvelope {
    /// Parses and checks one envelope (a JSON Lines line or an HTTP body).
    ///
    /// # Errors
    /// `invalid` naming the field when the JSON is malformed, a field is missing or unknown,
    /// `command_id` is empty or longer than 128 characters, or `actor` is not `role:name`.
    pub fn parse_line(line: &str) -> Result<Self, Rejection> {
        // serde would also read a struct from an array, field by field in order.
        if !line.trim_start().starts_with('{') {
            return Err(Rejection::invalid(
                "the command must be a JSON object (command_id, command, at, actor, data)",
            ));
        }
        let mut envelope: Self = from_json_str(line)?;
        // Instants are kept to the microsecond, once, here: the journal (PostgreSQL keeps
        // microseconds), NATS and the read models then show the same instant.
        envelope.at = to_micros(envelope.at);
        check_era("at", envelope.at)?;
        envelope.check()?;
        envelope.check_texts()?;
        Ok(envelope)
    }

    /// Checks the envelope's own fields (not `data`).
    ///
    /// # Errors
    /// As [`CommandEnvelope::parse_line`].
    pub fn check(&self) -> Result<(), Rejection> {
        if self.command_id.trim().is_empty()
            || self.command_id.chars().count() > 128
            || self.command_id.chars().any(char::is_control)
        {
            return Err(Rejection::invalid(
                "command_id: must be 1 to 128 printable characters",
            ));
        }
        match self.actor.split_once(':') {
            Some((role, name))
                if !role.is_empty()
                    && !name.is_empty()
                    && !self.actor.chars().any(char::is_control) =>
            {
                Ok(())
            }
            _ => Err(Rejection::invalid(format!(
                "actor: {:?} is not of the form role:name",
                self.actor
            ))),
        }
    }

    /// Checks every text of the envelope and its `data`: no NUL character (PostgreSQL's text
    /// cannot hold one) and at most [`MAX_TEXT_CHARS`] characters each.
    ///
    /// # Errors
    /// `invalid` naming the field (e.g. `data.members[2]`).
    pub fn check_texts(&self) -> Result<(), Rejection> {
        for (name, text) in [
            ("command_id", &self.command_id),
            ("command", &self.command),
            ("actor", &self.actor),
        ] {
            check_text(name, text)?;
        }
        walk_texts(&self.data, "data")
    }

    /// Checks that `at` is not more than [`MAX_CLOCK_AHEAD`] after `now` (the server's clock).
    ///
    /// # Errors
    /// `invalid` naming `at`.
    pub fn check_clock(&self, now: DateTime<Utc>) -> Result<(), Rejection> {
        if self.at.with_timezone(&Utc) > now + MAX_CLOCK_AHEAD {
            Err(Rejection::invalid(format!(
                "at: {} lies more than 24 hours after the server's clock ({}): a record of something that has not happened yet",
                self.at.to_rfc3339(),
                now.to_rfc3339()
            )))
        } else {
            Ok(())
        }
    }
}

fn from_json_str<T: DeserializeOwned>(s: &str) -> Result<T, Rejection> {
    let de = &mut serde_json::Deserializer::from_str(s);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Rejection::invalid(inner.to_string())
        } else {
            Rejection::invalid(format!("{path}: {inner}"))
        }
    })
}

fn from_data<T: DeserializeOwned>(data: &Value) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Rejection::invalid(format!("data: {inner}"))
        } else {
            Rejection::invalid(format!("data.{path}: {inner}"))
        }
    })
}

/// Earliest year accepted in a time of a command: older instants are typing errors (and
/// years before 1 have no RFC 3339 form).
pub const EARLIEST_YEAR: i32 = 1900;

/// `invalid` naming `field` when `t` (in UTC) is before [`EARLIEST_YEAR`] or after 9999.
fn check_era(field: &str, t: DateTime<FixedOffset>) -> Result<(), Rejection> {
    use chrono::Datelike;
    let year = t.with_timezone(&Utc).year();
    if !(EARLIEST_YEAR..=9999).contains(&year) {
        return Err(Rejection::invalid(format!(
            "{field}: {} is outside the years {EARLIEST_YEAR} to 9999",
            t.to_rfc3339()
        )));
    }
    Ok(())
}

/// `t` truncated to whole microseconds (PostgreSQL's `timestamptz` precision).
pub fn to_micros(t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// Longest text accepted in any field, in characters (a reflexive note of a few pages fits).
pub const MAX_TEXT_CHARS: usize = 20_000;

fn check_text(path: &str, text: &str) -> Result<(), Rejection> {
    if text.contains('\0') {
        return Err(Rejection::invalid(format!(
            "{path}: contains a NUL character"
        )));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Rejection::invalid(format!(
            "{path}: {chars} characters exceeds the limit of {MAX_TEXT_CHARS}"
        )));
    }
    Ok(())
}

fn walk_texts(value: &Value, path: &str) -> Result<(), Rejection> {
    match value {
        Value::String(text) => check_text(path, text),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| walk_texts(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            check_text(&format!("{path} (a key)"), key)?;
            walk_texts(item, &format!("{path}.{key}"))
        }),
        _ => Ok(()),
    }
}

/// A command together with the moment it happened in the world (the envelope's `at`).
/// This is each aggregate's cqrs-es `Command` type.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamped<C> {
    /// The envelope's `at`.
    pub at: DateTime<FixedOffset>,
    /// The command.
    pub command: C,
}

/// Which kind of aggregate (and stream) a command goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// `programme/<programme_id>`
    Programme,
    /// `cohort/<cohort_id>`
    Cohort,
    /// `field_study/<field_study_id>`
    FieldStudy,
    /// `subject/<subject_id>`
    Subject,
}

impl StreamType {
    /// The name stored in the journal's `stream_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Programme => StreamKind::PROGRAMME,
            StreamType::Cohort => StreamKind::COHORT,
            StreamType::FieldStudy => StreamKind::FIELD_STUDY,
            StreamType::Subject => StreamKind::SUBJECT,
        }
    }
}

/// Every command of FORMAT.md, grouped by the aggregate that decides it.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Goes to a programme.
    Programme(ProgrammeCommand),
    /// Goes to a cohort.
    Cohort(CohortCommand),
    /// Goes to a field study.
    FieldStudy(FieldStudyCommand),
    /// Goes to a data subject.
    Subject(SubjectCommand),
}

/// The command names of FORMAT.md, in its order (the first vocabulary, then "Second
/// vocabulary: the harder paths").
/// vocabulary: the harder paths"), then `erase_subject` (personal data, README "Personal
/// data").
pub const COMMAND_NAMES: [&str; 34] = [
    "define_programme",
    "open_cohort",
    "enrol_learner",
    "withdraw_learner",
    "schedule_session",
    "reschedule_session",
    "cancel_session",
    "record_session",
    "correct_attendance",
    "close_cohort",
    "form_field_study",
    "change_members",
    "negotiate_commission",
    "renegotiate_commission",
    "agree_commission",
    "state_hypothesis",
    "revise_hypothesis",
    "abandon_hypothesis",
    "log_intervention",
    "record_reflexive_note",
    "submit_production",
    "schedule_defence",
    "record_defence",
    "award_certificate",
    "record_deis_credit",
    "recuse_jury_member",
    "appoint_jury_member",
    "split_field_study",
    "rectify_defence_result",
    "cancel_defence",
    "revoke_certificate",
    "file_complaint",
    "answer_complaint",
    "erase_subject",
];

impl Command {
    /// Parses a command from its name and `data`.
    ///
    /// # Errors
    /// `invalid` for an unknown name, or data that does not fit (message names the field).
    pub fn parse(name: &str, data: &Value) -> Result<Self, Rejection> {
        use CohortCommand as C;
        use FieldStudyCommand as F;
        Ok(match name {
            "define_programme" => {
                Command::Programme(ProgrammeCommand::DefineProgramme(from_data(data)?))
            }
            "open_cohort" => Command::Cohort(C::OpenCohort(from_data(data)?)),
            "enrol_learner" => Command::Cohort(C::EnrolLearner(from_data(data)?)),
            "withdraw_learner" => Command::Cohort(C::WithdrawLearner(from_data(data)?)),
            "schedule_session" => {
                let mut c: ScheduleSession = from_data(data)?;
                (c.starts_at, c.ends_at) = (to_micros(c.starts_at), to_micros(c.ends_at));
                check_era("data.starts_at", c.starts_at)?;
                check_era("data.ends_at", c.ends_at)?;
                Command::Cohort(C::ScheduleSession(c))
            }
            "reschedule_session" => {
                let mut c: RescheduleSession = from_data(data)?;
                (c.starts_at, c.ends_at) = (to_micros(c.starts_at), to_micros(c.ends_at));
                check_era("data.starts_at", c.starts_at)?;
                check_era("data.ends_at", c.ends_at)?;
                Command::Cohort(C::RescheduleSession(c))
            }
            "cancel_session" => Command::Cohort(C::CancelSession(from_data(data)?)),
            "record_session" => Command::Cohort(C::RecordSession(from_data(data)?)),
            "correct_attendance" => Command::Cohort(C::CorrectAttendance(from_data(data)?)),
            "close_cohort" => Command::Cohort(C::CloseCohort(from_data(data)?)),
            "award_certificate" => Command::Cohort(C::AwardCertificate(from_data(data)?)),
            "record_deis_credit" => Command::Cohort(C::RecordDeisCredit(from_data(data)?)),
            "revoke_certificate" => Command::Cohort(C::RevokeCertificate(from_data(data)?)),
            "file_complaint" => Command::Cohort(C::FileComplaint(from_data(data)?)),
            "answer_complaint" => Command::Cohort(C::AnswerComplaint(from_data(data)?)),
            "form_field_study" => Command::FieldStudy(F::FormFieldStudy(from_data(data)?)),
            "change_members" => Command::FieldStudy(F::ChangeMembers(from_data(data)?)),
            "negotiate_commission" => Command::FieldStudy(F::NegotiateCommission(from_data(data)?)),
            "renegotiate_commission" => {
                Command::FieldStudy(F::RenegotiateCommission(from_data(data)?))
            }
            "agree_commission" => Command::FieldStudy(F::AgreeCommission(from_data(data)?)),
            "state_hypothesis" => Command::FieldStudy(F::StateHypothesis(from_data(data)?)),
            "revise_hypothesis" => Command::FieldStudy(F::ReviseHypothesis(from_data(data)?)),
            "abandon_hypothesis" => Command::FieldStudy(F::AbandonHypothesis(from_data(data)?)),
            "log_intervention" => Command::FieldStudy(F::LogIntervention(from_data(data)?)),
            "record_reflexive_note" => {
                Command::FieldStudy(F::RecordReflexiveNote(from_data(data)?))
            }
            "submit_production" => Command::FieldStudy(F::SubmitProduction(from_data(data)?)),
            "schedule_defence" => {
                let mut c: ScheduleDefence = from_data(data)?;
                c.at = to_micros(c.at);
                check_era("data.at", c.at)?;
                Command::FieldStudy(F::ScheduleDefence(c))
            }
            "record_defence" => Command::FieldStudy(F::RecordDefence(from_data(data)?)),
            "recuse_jury_member" => Command::FieldStudy(F::RecuseJuryMember(from_data(data)?)),
            "appoint_jury_member" => Command::FieldStudy(F::AppointJuryMember(from_data(data)?)),
            "split_field_study" => Command::FieldStudy(F::SplitFieldStudy(from_data(data)?)),
            "rectify_defence_result" => {
                Command::FieldStudy(F::RectifyDefenceResult(from_data(data)?))
            }
            "cancel_defence" => Command::FieldStudy(F::CancelDefence(from_data(data)?)),
            "erase_subject" => {
                let c: EraseSubject = from_data(data)?;
                crate::personal::check_subject_id(&c.subject_id)
                    .map_err(|e| Rejection::invalid(format!("data.subject_id: {e}")))?;
                Command::Subject(SubjectCommand::EraseSubject(c))
            }
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(Rejection::invalid(format!(
                    "command: unknown command {shown:?}"
                )));
            }
        })
    }

    /// The stream the command is decided on: its aggregate type and id.
    pub fn target(&self) -> (StreamType, &str) {
        match self {
            Command::Programme(ProgrammeCommand::DefineProgramme(c)) => {
                (StreamType::Programme, c.programme_id.as_str())
            }
            Command::Cohort(c) => (StreamType::Cohort, c.cohort_id().as_str()),
            Command::FieldStudy(c) => (StreamType::FieldStudy, c.field_study_id().as_str()),
            Command::Subject(SubjectCommand::EraseSubject(c)) => {
                (StreamType::Subject, c.subject_id.as_str())
            }
        }
    }
}

/// Commands decided by a data subject.
#[derive(Clone, Debug, PartialEq)]
pub enum SubjectCommand {
    /// `erase_subject`
    EraseSubject(EraseSubject),
}

/// Commands decided by a programme.
#[derive(Clone, Debug, PartialEq)]
pub enum ProgrammeCommand {
    /// `define_programme`
    DefineProgramme(DefineProgramme),
}

/// Commands decided by a cohort.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum CohortCommand {
    OpenCohort(OpenCohort),
    EnrolLearner(EnrolLearner),
    WithdrawLearner(WithdrawLearner),
    ScheduleSession(ScheduleSession),
    RescheduleSession(RescheduleSession),
    CancelSession(CancelSession),
    RecordSession(RecordSession),
    CorrectAttendance(CorrectAttendance),
    CloseCohort(CloseCohort),
    AwardCertificate(AwardCertificate),
    RecordDeisCredit(RecordDeisCredit),
    RevokeCertificate(RevokeCertificate),
    FileComplaint(FileComplaint),
    AnswerComplaint(AnswerComplaint),
}

impl CohortCommand {
    /// The cohort acted on.
    pub fn cohort_id(&self) -> &Id {
        match self {
            Self::OpenCohort(c) => &c.cohort_id,
            Self::EnrolLearner(c) => &c.cohort_id,
            Self::WithdrawLearner(c) => &c.cohort_id,
            Self::ScheduleSession(c) => &c.cohort_id,
            Self::RescheduleSession(c) => &c.cohort_id,
            Self::CancelSession(c) => &c.cohort_id,
            Self::RecordSession(c) => &c.cohort_id,
            Self::CorrectAttendance(c) => &c.cohort_id,
            Self::CloseCohort(c) => &c.cohort_id,
            Self::AwardCertificate(c) => &c.cohort_id,
            Self::RecordDeisCredit(c) => &c.cohort_id,
            Self::RevokeCertificate(c) => &c.cohort_id,
            Self::FileComplaint(c) => &c.cohort_id,
            Self::AnswerComplaint(c) => &c.cohort_id,
        }
    }
}

/// Commands decided by a field study.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum FieldStudyCommand {
    FormFieldStudy(FormFieldStudy),
    ChangeMembers(ChangeMembers),
    NegotiateCommission(NegotiateCommission),
    RenegotiateCommission(RenegotiateCommission),
    AgreeCommission(AgreeCommission),
    StateHypothesis(StateHypothesis),
    ReviseHypothesis(ReviseHypothesis),
    AbandonHypothesis(AbandonHypothesis),
    LogIntervention(LogIntervention),
    RecordReflexiveNote(RecordReflexiveNote),
    SubmitProduction(SubmitProduction),
    ScheduleDefence(ScheduleDefence),
    RecordDefence(RecordDefence),
    RecuseJuryMember(RecuseJuryMember),
    AppointJuryMember(AppointJuryMember),
    SplitFieldStudy(SplitFieldStudy),
    RectifyDefenceResult(RectifyDefenceResult),
    CancelDefence(CancelDefence),
}

impl FieldStudyCommand {
    /// The field study acted on.
    pub fn field_study_id(&self) -> &Id {
        match self {
            Self::FormFieldStudy(c) => &c.field_study_id,
            Self::ChangeMembers(c) => &c.field_study_id,
            Self::NegotiateCommission(c) => &c.field_study_id,
            Self::RenegotiateCommission(c) => &c.field_study_id,
            Self::AgreeCommission(c) => &c.field_study_id,
            Self::StateHypothesis(c) => &c.field_study_id,
            Self::ReviseHypothesis(c) => &c.field_study_id,
            Self::AbandonHypothesis(c) => &c.field_study_id,
            Self::LogIntervention(c) => &c.field_study_id,
            Self::RecordReflexiveNote(c) => &c.field_study_id,
            Self::SubmitProduction(c) => &c.field_study_id,
            Self::ScheduleDefence(c) => &c.field_study_id,
            Self::RecordDefence(c) => &c.field_study_id,
            Self::RecuseJuryMember(c) => &c.field_study_id,
            Self::AppointJuryMember(c) => &c.field_study_id,
            Self::SplitFieldStudy(c) => &c.field_study_id,
            Self::RectifyDefenceResult(c) => &c.field_study_id,
            Self::CancelDefence(c) => &c.field_study_id,
        }
    }
}

// ---- enumerations ----

/// Kind of session (FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SessionKind {
    Course,
    ReflexiveAccompaniment,
    CriticalDebate,
    FieldWork,
    Defence,
}

/// A learner's attendance at a held session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum AttendanceStatus {
    Present,
    Excused,
    Absent,
}

/// A jury member's role: the programme requires at least one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum JuryRole {
    Professional,
    TrainingCentre,
}

/// One learner's result at a defence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum DefenceResult {
    Passed,
    Deferred,
    Failed,
}

impl DefenceResult {
    /// `passed`, `deferred` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
        }
    }
}

/// `Deserialize` from the variant's name only: serde's derive would also take a map with the
/// name as its one key (`{"passed": null}`), which FORMAT.md's "a field of the wrong type"
/// makes `invalid`.
macro_rules! from_name {
    ($t:ident { $($name:literal => $variant:ident),* $(,)? }) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$($name),*];
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                match text.as_ref() {
                    $($name => Ok($t::$variant),)*
                    other => Err(serde::de::Error::unknown_variant(other, NAMES)),
                }
            }
        }
    };
}
from_name!(SessionKind { "course" => Course, "reflexive_accompaniment" => ReflexiveAccompaniment,
    "critical_debate" => CriticalDebate, "field_work" => FieldWork, "defence" => Defence });
from_name!(AttendanceStatus { "present" => Present, "excused" => Excused, "absent" => Absent });
from_name!(JuryRole { "professional" => Professional, "training_centre" => TrainingCentre });
from_name!(DefenceResult { "passed" => Passed, "deferred" => Deferred, "failed" => Failed });

// ---- data shapes (FORMAT.md tables); unknown fields are refused ----

macro_rules! data {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(missing_docs)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }
    };
}

data!(/// A unit of a module, with its budget in half-days.
    UnitPlan { unit_id: Id, title: String, half_days: u32 });
data!(/// A module of the programme, with its budget in half-days and its units.
    ModulePlan { module_id: Id, title: String, half_days: u32, units: Vec<UnitPlan> });
data!(/// The organisation that commissions a field study.
    Organisation { name: String, sector: String });
data!(/// A jury member.
    JuryMember { name: String, role: JuryRole });
data!(/// One learner's outcome at a defence.
    Outcome { learner_id: Id, result: DefenceResult, remarks: String });

data!(/// `erase_subject`: destroys a data subject's key (staff only; README "Personal data").
    EraseSubject { subject_id: String, reason: Reason });
data!(/// `define_programme`
    DefineProgramme { programme_id: Id, title: String, modules: Vec<ModulePlan> });
data!(/// `open_cohort`
    OpenCohort { cohort_id: Id, programme_id: Id, title: String, starts_on: NaiveDate, ends_on: NaiveDate });
data!(/// `enrol_learner`
    EnrolLearner { cohort_id: Id, learner_id: Id, name: String, deis_pathway: bool });
data!(/// `withdraw_learner`
    WithdrawLearner { cohort_id: Id, learner_id: Id, reason: Reason });
data!(/// `schedule_session`
    ScheduleSession { cohort_id: Id, session_id: Id, module_id: Id, #[serde(default)] unit_id: Option<Id>, kind: SessionKind,
        starts_at: DateTime<FixedOffset>, ends_at: DateTime<FixedOffset>, half_days: u8, facilitator: String,
        #[serde(default)] room: Option<String> });
data!(/// `reschedule_session`
    RescheduleSession { cohort_id: Id, session_id: Id, starts_at: DateTime<FixedOffset>, ends_at: DateTime<FixedOffset>, reason: Reason });
data!(/// `cancel_session`
    CancelSession { cohort_id: Id, session_id: Id, reason: Reason });
data!(/// `record_session`
    RecordSession { cohort_id: Id, session_id: Id, present: Vec<Id>, excused: Vec<Id> });
data!(/// `correct_attendance`
    CorrectAttendance { cohort_id: Id, session_id: Id, learner_id: Id, status: AttendanceStatus, reason: Reason });
data!(/// `close_cohort`
    CloseCohort { cohort_id: Id });
data!(/// `award_certificate`
    AwardCertificate { cohort_id: Id, learner_id: Id });
data!(/// `record_deis_credit`
    RecordDeisCredit { cohort_id: Id, learner_id: Id, note: String });
data!(/// `form_field_study`
    FormFieldStudy { field_study_id: Id, cohort_id: Id, members: Vec<Id>, organisation: Organisation });
data!(/// `change_members`
    ChangeMembers { field_study_id: Id, join: Vec<Id>, leave: Vec<Id>, reason: Reason });
data!(/// `negotiate_commission`
    NegotiateCommission { field_study_id: Id, brief: String, deliverables: Vec<String>, negotiated_with: String });
data!(/// `renegotiate_commission`
    RenegotiateCommission { field_study_id: Id, brief: String, deliverables: Vec<String>, reason: Reason });
data!(/// `agree_commission`
    AgreeCommission { field_study_id: Id, version: u32 });
data!(/// `state_hypothesis`
    StateHypothesis { field_study_id: Id, hypothesis_id: Id, text: String });
data!(/// `revise_hypothesis`
    ReviseHypothesis { field_study_id: Id, hypothesis_id: Id, text: String, reason: Reason });
data!(/// `abandon_hypothesis`
    AbandonHypothesis { field_study_id: Id, hypothesis_id: Id, reason: Reason });
data!(/// `log_intervention`
    LogIntervention { field_study_id: Id, intervention_id: Id, kind: String, summary: String, participants: u32 });
data!(/// `record_reflexive_note`
    RecordReflexiveNote { field_study_id: Id, note_id: Id, #[serde(default)] session_id: Option<Id>, text: String });
data!(/// `submit_production`
    SubmitProduction { field_study_id: Id, title: String, pages: u32 });
data!(/// `schedule_defence`
    ScheduleDefence { field_study_id: Id, defence_id: Id, at: DateTime<FixedOffset>, jury: Vec<JuryMember> });
data!(/// `record_defence`
    RecordDefence { field_study_id: Id, defence_id: Id, outcomes: Vec<Outcome> });

// ---- the second vocabulary (FORMAT.md, "Second vocabulary: the harder paths") ----

data!(/// `recuse_jury_member`: a member of a defence's jury steps aside (e.g. they supervised the group).
    RecuseJuryMember { field_study_id: Id, defence_id: Id, name: String, reason: Reason });
data!(/// `appoint_jury_member`: a member joins a defence's jury (a recused name may be appointed again).
    AppointJuryMember { field_study_id: Id, defence_id: Id, name: String, role: JuryRole });
data!(/// `split_field_study`: `members` leave the study to form `new_field_study_id` for `organisation`.
    SplitFieldStudy { field_study_id: Id, new_field_study_id: Id, members: Vec<Id>, organisation: Organisation, reason: Reason });
data!(/// `rectify_defence_result`: a jury's error corrected after the fact; `result` replaces the learner's result at that defence.
    RectifyDefenceResult { field_study_id: Id, defence_id: Id, learner_id: Id, result: DefenceResult, reason: Reason });
data!(/// `cancel_defence`: a scheduled defence that will not sit (nobody is due any more, the jury
    /// cannot convene); it no longer holds back a split or the next defence. Not in FORMAT.md:
    /// fieldtrail's own addition to the second vocabulary.
    CancelDefence { field_study_id: Id, defence_id: Id, reason: Reason });
data!(/// `revoke_certificate`: the certificate is withdrawn; a later award is allowed when its rule holds again.
    RevokeCertificate { cohort_id: Id, learner_id: Id, reason: Reason });
data!(/// `file_complaint`: a complaint received (Qualiopi indicator 31); `from` names who complains,
    /// `role:name` as an actor (`learner:<learner_id>` for a learner of the cohort).
    FileComplaint { cohort_id: Id, complaint_id: Id, from: String, subject: String, text: String });
data!(/// `answer_complaint`: the answer given and the action taken.
    AnswerComplaint { cohort_id: Id, complaint_id: Id, answer: String, action: String });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    fn parse(line: &str) -> Result<Command, Rejection> {
        let env = CommandEnvelope::parse_line(line)?;
        Command::parse(&env.command, &env.data)
    }

    #[test]
    fn bad_input_is_invalid_and_names_the_field() {
        let cases = [
            (
                r#"{"command_id":"c1","command":"enrol_learner","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","learner_id":"Bad Id!","name":"x","deis_pathway":false}}"#,
                "data.learner_id",
            ),
            (
                r#"{"command_id":"c1","command":"enrol_learner","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","learner_id":"l"}}"#,
                "name",
            ),
            (
                r#"{"command_id":"c1","command":"enrol_learner","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","learner_id":"l","name":"x","deis_pathway":"yes"}}"#,
                "data.deis_pathway",
            ),
            (
                r#"{"command_id":"c1","command":"close_cohort","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","extra":1}}"#,
                "extra",
            ),
            (
                r#"{"command_id":"c1","command":"nope","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{}}"#,
                "unknown command",
            ),
            (
                r#"{"command_id":"c1","command":"close_cohort","at":"yesterday","actor":"staff:x","data":{"cohort_id":"c"}}"#,
                "at",
            ),
            (
                r#"{"command_id":"c1","command":"close_cohort","at":"2025-01-01T00:00:00Z","actor":"nobody","data":{"cohort_id":"c"}}"#,
                "actor",
            ),
            (
                r#"{"command_id":"c1","command":"cancel_session","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","session_id":"s","reason":""}}"#,
                "data.reason",
            ),
            (
                r#"{"command_id":"c1","command":"schedule_session","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","session_id":"s","module_id":"m","kind":"séminaire","starts_at":"2025-01-01T09:00:00Z","ends_at":"2025-01-01T12:00:00Z","half_days":1,"facilitator":"f"}}"#,
                "data.kind",
            ),
            ("not json", "must be a JSON object"),
            (
                r#"["c1","close_cohort","2025-01-01T00:00:00Z","staff:x",{"cohort_id":"c"}]"#,
                "must be a JSON object",
            ),
            (
                r#"{"command_id":"c1","command":"rectify_defence_result","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"field_study_id":"f","defence_id":"d","learner_id":"l","result":{"failed":null},"reason":"r"}}"#,
                "data.result",
            ),
            (
                r#"{"command_id":"c1","command":"close_cohort","at":"-0001-03-01T10:00:00+01:00","actor":"staff:x","data":{"cohort_id":"c"}}"#,
                "at",
            ),
            (
                r#"{"command_id":"c1","command":"close_cohort","at":"1899-12-31T23:00:00Z","actor":"staff:x","data":{"cohort_id":"c"}}"#,
                "outside the years 1900 to 9999",
            ),
            (
                r#"{"command_id":"c1","command":"schedule_defence","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"field_study_id":"f","defence_id":"d","at":"0001-06-01T09:00:00Z","jury":[]}}"#,
                "data.at",
            ),
        ];
        for (line, needle) in cases {
            let err = parse(line).unwrap_err();
            assert_eq!(err.code, Code::Invalid, "{line}");
            assert!(
                err.message.contains(needle),
                "{:?} lacks {needle:?}",
                err.message
            );
        }
    }

    #[test]
    fn hostile_texts_are_invalid_and_named() {
        let nul = r#"{"command_id":"c1","command":"close_cohort","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"c","note":"a\u0000b"}}"#;
        let err = parse(nul).unwrap_err();
        assert!(
            err.message.contains("data.note") && err.message.contains("NUL"),
            "{}",
            err.message
        );
        let surrogate = r#"{"command_id":"c1","command":"close_cohort","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"cohort_id":"\ud800"}}"#;
        assert_eq!(parse(surrogate).unwrap_err().code, Code::Invalid);
        let deep = format!(
            r#"{{"command_id":"c1","command":"close_cohort","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert_eq!(parse(&deep).unwrap_err().code, Code::Invalid);
        let long = format!(
            r#"{{"command_id":"c1","command":"close_cohort","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{{"cohort_id":"c","x":["{}"]}}}}"#,
            "é".repeat(MAX_TEXT_CHARS + 1)
        );
        let err = parse(&long).unwrap_err();
        assert!(err.message.contains("data.x[0]"), "{}", err.message);
    }

    #[test]
    fn commands_go_to_their_stream() {
        let cmd = parse(r#"{"command_id":"c1","command":"state_hypothesis","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"field_study_id":"fs","hypothesis_id":"h","text":"t"}}"#).unwrap();
        let (kind, id) = cmd.target();
        assert_eq!((kind, id), (StreamType::FieldStudy, "fs"));
        let erase = parse(r#"{"command_id":"c2","command":"erase_subject","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{"subject_id":"learner:l1","reason":"demande RGPD"}}"#).unwrap();
        assert_eq!(erase.target(), (StreamType::Subject, "learner:l1"));
        for bad in [
            "learner",
            "learner:",
            "pupil:l1",
            "learner:L1",
            "complaint:c1",
            "jury:a:b",
        ] {
            let line = format!(
                r#"{{"command_id":"c3","command":"erase_subject","at":"2025-01-01T00:00:00Z","actor":"staff:x","data":{{"subject_id":"{bad}","reason":"r"}}}}"#
            );
            let err = parse(&line).unwrap_err();
            assert!(
                err.message.contains("data.subject_id"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn the_future_is_refused_beyond_a_day() {
        let env = CommandEnvelope::parse_line(r#"{"command_id":"c1","command":"close_cohort","at":"2031-01-10T10:00:00+01:00","actor":"staff:x","data":{"cohort_id":"c"}}"#).unwrap();
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(env.check_clock(now).unwrap_err().code, Code::Invalid);
        let soon = "2031-01-09T10:00:00Z".parse().unwrap();
        assert!(env.check_clock(soon).is_ok());
    }
}
