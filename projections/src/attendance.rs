//! The attendance evidence register of a cohort (Code du travail R6332-26; Qualiopi): a pure
//! function of the cohort's stream, with anomaly flags. No I/O: the services layer reads the
//! stream and renders the register as JSON or CSV.
//!
//! **Rows.** One row per (learner, held session): every learner active in the cohort when the
//! session was recorded (log order; the same learners the transcripts count), with the
//! session's module, unit, kind, Europe/Paris date, slot, UTC and local times, half-days,
//! facilitator, the status recorded and the status now, who recorded the attendance and when
//! (both clocks), and every correction with its reason, actor and both clocks.
//! [`AttendanceRegister::by_half_day`] splits each row into one row per half-day (slots `AM`,
//! `PM`), the granularity of a signed attendance sheet.
//!
//! **Slots.** A one-half-day session is `AM` when it starts before 12:00 Europe/Paris, else
//! `PM`; a two-half-day session is a whole day, `AM+PM` (split into `AM` and `PM`).
//!
//! **Totals.** Per learner and module, the half-days by current status: the same numbers as the
//! learner's transcript (FORMAT.md, "Attendance accounting").
//!
//! **Anomaly flags** (each also listed once in `anomalies` with a sentence):
//!
//! | flag | raised on |
//! |---|---|
//! | `public_holiday` | every row of a session held on a French public holiday (L3133-1, see [`crate::holidays`]) |
//! | `sunday` | every row of a session held on a Sunday (Europe/Paris dates the session spans) |
//! | `late_attendance_record` | every row of a session whose attendance was recorded (the `at` of `record_session`) more than 14 days (336 h) after the session ended |
//! | `late_correction` | the row of a correction made (its `at`) more than 30 days (720 h) after the session ended |
//! | `correction_after_close` | the row of a correction made after the cohort closed (recorded after `cohort_closed` in the stream, or whose `at` is later than the closing's) |
//! | `overlapping_presence` | the row of a learner present at two sessions whose slots overlap (in this cohort or another one the same learner id is enrolled in) |
//! | `facilitator_is_learner` | every row of a session whose facilitator is one of the learners it counts: the facilitator, without a `role:` prefix, equals a learner id or name (case and surrounding blanks ignored) |

use crate::holidays::{is_sunday, public_holiday};
use crate::time::{paris_local, utc};
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Europe::Paris;
use fieldtrail_domain::command::{AttendanceStatus, SessionKind};
use fieldtrail_domain::{CohortEvent, Id};
use serde::Serialize;
use std::collections::BTreeMap;

/// Attendance recorded more than this after the session ended is flagged.
pub const LATE_RECORD: Duration = Duration::days(14);
/// A correction made more than this after the session ended is flagged.
pub const LATE_CORRECTION: Duration = Duration::days(30);

/// One event of a cohort's stream with the envelope the register shows.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortRecord {
    /// Version in the cohort's stream.
    pub stream_version: i64,
    /// Global position.
    pub position: i64,
    /// When it happened in the world (the command's `at`).
    pub occurred_at: DateTime<Utc>,
    /// When the journal recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who issued the command, `role:name`.
    pub actor: String,
    /// The command's idempotency key.
    pub command_id: String,
    /// The event.
    pub event: CohortEvent,
}

/// A learner's presence at a held session, for the overlap check across cohorts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// The cohort.
    pub cohort_id: String,
    /// The session.
    pub session_id: String,
    /// The learner (present there, corrections included).
    pub learner_id: String,
    /// The session's start.
    pub starts_at: DateTime<Utc>,
    /// The session's end.
    pub ends_at: DateTime<Utc>,
}

/// An anomaly flag (see the module documentation for when each is raised).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Held on a French public holiday.
    PublicHoliday,
    /// Held on a Sunday.
    Sunday,
    /// Attendance recorded more than 14 days after the session ended.
    LateAttendanceRecord,
    /// A correction more than 30 days after the session ended.
    LateCorrection,
    /// A correction after the cohort closed.
    CorrectionAfterClose,
    /// The learner was present at two overlapping sessions.
    OverlappingPresence,
    /// The session's facilitator is one of its learners.
    FacilitatorIsLearner,
}

impl Flag {
    /// The flag's name as written in JSON and CSV, e.g. `late_correction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::PublicHoliday => "public_holiday",
            Flag::Sunday => "sunday",
            Flag::LateAttendanceRecord => "late_attendance_record",
            Flag::LateCorrection => "late_correction",
            Flag::CorrectionAfterClose => "correction_after_close",
            Flag::OverlappingPresence => "overlapping_presence",
            Flag::FacilitatorIsLearner => "facilitator_is_learner",
        }
    }
}

/// Who wrote something in the register, and when by both clocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// When it happened in the world (the command's `at`), RFC 3339 UTC.
    pub occurred_at: String,
    /// When the journal recorded it, RFC 3339 UTC.
    pub recorded_at: String,
    /// Who, `role:name`.
    pub actor: String,
    /// The command's idempotency key.
    pub command_id: String,
}

/// One correction of a learner's attendance at a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Correction {
    /// The status before it.
    pub previous_status: AttendanceStatus,
    /// The status it set.
    pub status: AttendanceStatus,
    /// Why.
    pub reason: String,
    /// Who made it and when.
    #[serde(flatten)]
    pub stamp: Stamp,
}

/// One row of the register: a learner at a held session (or one half-day of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttendanceRow {
    /// The learner.
    pub learner_id: String,
    /// The learner's name as enrolled (personal data).
    pub learner_name: String,
    /// The session.
    pub session_id: String,
    /// Its module (as the held event counted it).
    pub module_id: String,
    /// Its unit, `null` when none.
    pub unit_id: Option<String>,
    /// Its kind.
    pub kind: SessionKind,
    /// Europe/Paris calendar date of its start, `YYYY-MM-DD`.
    pub date: String,
    /// `AM`, `PM` or `AM+PM` (see the module documentation).
    pub slot: String,
    /// Start, RFC 3339 UTC.
    pub starts_at: String,
    /// End, RFC 3339 UTC.
    pub ends_at: String,
    /// Start, Europe/Paris wall time.
    pub starts_at_local: String,
    /// End, Europe/Paris wall time.
    pub ends_at_local: String,
    /// Half-days this row counts (1 or 2).
    pub half_days: u32,
    /// Who led the session.
    pub facilitator: String,
    /// The status `record_session` gave.
    pub recorded_status: AttendanceStatus,
    /// The status now, corrections included.
    pub status: AttendanceStatus,
    /// Who recorded the attendance and when (the `at` of `record_session` and the journal's clock).
    pub recorded: Stamp,
    /// Every correction, in the order made.
    pub corrections: Vec<Correction>,
    /// The anomaly flags on this row, sorted.
    pub flags: Vec<Flag>,
}

/// A learner's half-days in one module, by current status (equal to the transcript's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LearnerTotals {
    /// The learner.
    pub learner_id: String,
    /// The module.
    pub module_id: String,
    /// Half-days of held sessions the learner was counted in.
    pub held_half_days: u32,
    /// Of which present.
    pub attended_half_days: u32,
    /// Of which excused.
    pub excused_half_days: u32,
    /// Of which absent.
    pub absent_half_days: u32,
}

/// One anomaly, with a sentence an auditor can read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// The flag.
    pub flag: Flag,
    /// The session concerned.
    pub session_id: String,
    /// The learner concerned, when it is about one learner.
    pub learner_id: Option<String>,
    /// What was found.
    pub detail: String,
}

/// The attendance evidence register of a cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttendanceRegister {
    /// The cohort.
    pub cohort_id: String,
    /// `session` (one row per learner and held session) or `half_day` (one per half-day).
    pub granularity: &'static str,
    /// When the cohort closed (the `at` of `close_cohort`, RFC 3339 UTC), `null` while open.
    pub closed_at: Option<String>,
    /// The rows, by session start, session id, then learner id (then slot).
    pub rows: Vec<AttendanceRow>,
    /// Half-day totals per learner and module, by learner id then module id.
    pub totals: Vec<LearnerTotals>,
    /// Every anomaly, by session start then flag.
    pub anomalies: Vec<Anomaly>,
}

#[derive(Clone, Debug)]
struct Session {
    unit_id: Option<String>,
    kind: SessionKind,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    facilitator: String,
    cancelled: bool,
    held: bool,
}

fn stamp(r: &CohortRecord) -> Stamp {
    Stamp {
        occurred_at: utc(&r.occurred_at),
        recorded_at: utc(&r.recorded_at),
        actor: r.actor.clone(),
        command_id: r.command_id.clone(),
    }
}

fn paris_date(t: &DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Paris).date_naive()
}

/// Normalizes a name for the facilitator check: no `role:` prefix, trimmed, lower case.
fn person(name: &str) -> String {
    let bare = name.split_once(':').map_or(name, |(_, rest)| rest);
    bare.trim().to_lowercase()
}

/// Every Europe/Paris date a slot spans (its start date to its end date; at most 31).
fn dates(starts_at: &DateTime<Utc>, ends_at: &DateTime<Utc>) -> Vec<NaiveDate> {
    let (first, last) = (paris_date(starts_at), paris_date(ends_at));
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .take(31)
        .collect()
}

/// Builds the register of `cohort_id` from its stream's events (in stream order).
/// `elsewhere` lists the presences of the same learners in other cohorts, for the overlap
/// check (empty to check within the cohort only). Events about unknown sessions or learners
/// are ignored, as the read models ignore them.
pub fn build(
    cohort_id: &str,
    records: &[CohortRecord],
    elsewhere: &[Presence],
) -> AttendanceRegister {
    use CohortEvent as E;
    let mut learners: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    let mut rows: Vec<AttendanceRow> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut closed: Option<&CohortRecord> = None;
    let mut anomalies: Vec<(DateTime<Utc>, Anomaly)> = Vec::new();
    let close_in_stream = records
        .iter()
        .find(|r| matches!(r.event, E::CohortClosed { .. }));
    for record in records {
        match &record.event {
            E::LearnerEnrolled {
                learner_id, name, ..
            } => {
                learners
                    .entry(learner_id.to_string())
                    .or_insert_with(|| (name.clone(), true));
            }
            E::LearnerWithdrew { learner_id, .. } => {
                if let Some(l) = learners.get_mut(learner_id.as_str()) {
                    l.1 = false;
                }
            }
            E::SessionScheduled {
                session_id,
                unit_id,
                kind,
                starts_at,
                ends_at,
                facilitator,
                ..
            } => {
                sessions.entry(session_id.to_string()).or_insert(Session {
                    unit_id: unit_id.as_ref().map(Id::to_string),
                    kind: *kind,
                    starts_at: starts_at.with_timezone(&Utc),
                    ends_at: ends_at.with_timezone(&Utc),
                    facilitator: facilitator.clone(),
                    cancelled: false,
                    held: false,
                });
            }
            E::SessionRescheduled {
                session_id,
                starts_at,
                ends_at,
                ..
            } => {
                if let Some(s) = sessions.get_mut(session_id.as_str()) {
                    if !s.held && !s.cancelled {
                        s.starts_at = starts_at.with_timezone(&Utc);
                        s.ends_at = ends_at.with_timezone(&Utc);
                    }
                }
            }
            E::SessionCancelled { session_id, .. } => {
                if let Some(s) = sessions.get_mut(session_id.as_str()) {
                    if !s.held {
                        s.cancelled = true;
                    }
                }
            }
            E::SessionHeld {
                session_id,
                module_id,
                half_days,
                present,
                excused,
                absent,
                ..
            } => {
                let Some(session) = sessions.get_mut(session_id.as_str()) else {
                    continue;
                };
                if session.held || session.cancelled {
                    continue;
                }
                session.held = true;
                let session = session.clone();
                let mut listed: BTreeMap<&str, AttendanceStatus> = BTreeMap::new();
                for (list, status) in [
                    (present, AttendanceStatus::Present),
                    (excused, AttendanceStatus::Excused),
                    (absent, AttendanceStatus::Absent),
                ] {
                    for l in list {
                        listed.entry(l.as_str()).or_insert(status);
                    }
                }
                let counted: Vec<(&String, &String)> = learners
                    .iter()
                    .filter(|(_, (_, active))| *active)
                    .map(|(id, (name, _))| (id, name))
                    .collect();
                let mut flags = Vec::new();
                let spanned = dates(&session.starts_at, &session.ends_at);
                if let Some((day, name)) = spanned
                    .iter()
                    .find_map(|d| public_holiday(*d).map(|n| (*d, n)))
                {
                    flags.push(Flag::PublicHoliday);
                    anomalies.push((
                        session.starts_at,
                        Anomaly {
                            flag: Flag::PublicHoliday,
                            session_id: session_id.to_string(),
                            learner_id: None,
                            detail: format!("held on {day}, a public holiday ({name})"),
                        },
                    ));
                }
                if let Some(day) = spanned.iter().find(|d| is_sunday(**d)) {
                    flags.push(Flag::Sunday);
                    anomalies.push((
                        session.starts_at,
                        Anomaly {
                            flag: Flag::Sunday,
                            session_id: session_id.to_string(),
                            learner_id: None,
                            detail: format!("held on Sunday {day}"),
                        },
                    ));
                }
                if record.occurred_at - session.ends_at > LATE_RECORD {
                    flags.push(Flag::LateAttendanceRecord);
                    anomalies.push((
                        session.starts_at,
                        Anomaly {
                            flag: Flag::LateAttendanceRecord,
                            session_id: session_id.to_string(),
                            learner_id: None,
                            detail: format!(
                                "attendance recorded at {} ({}), {} days after the session ended at {}",
                                utc(&record.occurred_at),
                                record.command_id,
                                (record.occurred_at - session.ends_at).num_days(),
                                utc(&session.ends_at)
                            ),
                        },
                    ));
                }
                let facilitator = person(&session.facilitator);
                if let Some((id, _)) = counted
                    .iter()
                    .find(|(id, name)| person(id) == facilitator || person(name) == facilitator)
                {
                    flags.push(Flag::FacilitatorIsLearner);
                    anomalies.push((
                        session.starts_at,
                        Anomaly {
                            flag: Flag::FacilitatorIsLearner,
                            session_id: session_id.to_string(),
                            learner_id: Some((*id).clone()),
                            detail: format!(
                                "facilitator {:?} is learner {id} of this session",
                                session.facilitator
                            ),
                        },
                    ));
                }
                for (learner_id, name) in counted {
                    let status = listed
                        .get(learner_id.as_str())
                        .copied()
                        .unwrap_or(AttendanceStatus::Absent);
                    index.insert((session_id.to_string(), learner_id.clone()), rows.len());
                    rows.push(AttendanceRow {
                        learner_id: learner_id.clone(),
                        learner_name: name.clone(),
                        session_id: session_id.to_string(),
                        module_id: module_id.to_string(),
                        unit_id: session.unit_id.clone(),
                        kind: session.kind,
                        date: paris_date(&session.starts_at).to_string(),
                        slot: slot(&session.starts_at, u32::from(*half_days)).to_owned(),
                        starts_at: utc(&session.starts_at),
                        ends_at: utc(&session.ends_at),
                        starts_at_local: paris_local(&session.starts_at),
                        ends_at_local: paris_local(&session.ends_at),
                        half_days: u32::from(*half_days),
                        facilitator: session.facilitator.clone(),
                        recorded_status: status,
                        status,
                        recorded: stamp(record),
                        corrections: Vec::new(),
                        flags: flags.clone(),
                    });
                }
            }
            E::AttendanceCorrected {
                session_id,
                learner_id,
                status,
                reason,
                ..
            } => {
                let Some(&i) = index.get(&(session_id.to_string(), learner_id.to_string())) else {
                    continue;
                };
                let Some(session) = sessions.get(session_id.as_str()) else {
                    continue;
                };
                let row = &mut rows[i];
                let mut raise = |flag: Flag, detail: String, row: &mut AttendanceRow| {
                    if !row.flags.contains(&flag) {
                        row.flags.push(flag);
                    }
                    anomalies.push((
                        session.starts_at,
                        Anomaly {
                            flag,
                            session_id: session_id.to_string(),
                            learner_id: Some(learner_id.to_string()),
                            detail,
                        },
                    ));
                };
                if record.occurred_at - session.ends_at > LATE_CORRECTION {
                    raise(
                        Flag::LateCorrection,
                        format!(
                            "correction {} at {}, {} days after the session ended at {}",
                            record.command_id,
                            utc(&record.occurred_at),
                            (record.occurred_at - session.ends_at).num_days(),
                            utc(&session.ends_at)
                        ),
                        row,
                    );
                }
                let after_close =
                    closed.or(close_in_stream.filter(|c| record.occurred_at > c.occurred_at));
                if let Some(close) = after_close {
                    raise(
                        Flag::CorrectionAfterClose,
                        format!(
                            "correction {} at {} (recorded {}) after the cohort closed at {} (recorded {})",
                            record.command_id,
                            utc(&record.occurred_at),
                            utc(&record.recorded_at),
                            utc(&close.occurred_at),
                            utc(&close.recorded_at)
                        ),
                        row,
                    );
                }
                row.corrections.push(Correction {
                    previous_status: row.status,
                    status: *status,
                    reason: reason.as_str().to_owned(),
                    stamp: stamp(record),
                });
                row.status = *status;
            }
            E::CohortClosed { .. } => {
                closed.get_or_insert(record);
            }
            E::CohortOpened { .. }
            | E::CertificateAwarded { .. }
            | E::DeisCreditRecorded { .. }
            | E::CertificateRevoked { .. }
            | E::ComplaintFiled { .. }
            | E::ComplaintAnswered { .. } => {}
        }
    }
    overlaps(cohort_id, &sessions, &mut rows, elsewhere, &mut anomalies);
    for row in &mut rows {
        row.flags.sort();
        row.flags.dedup();
    }
    rows.sort_by(|a, b| {
        (&a.starts_at, &a.session_id, &a.learner_id).cmp(&(
            &b.starts_at,
            &b.session_id,
            &b.learner_id,
        ))
    });
    anomalies.sort_by(|(ta, a), (tb, b)| {
        (ta, &a.session_id, a.flag, &a.learner_id).cmp(&(tb, &b.session_id, b.flag, &b.learner_id))
    });
    let totals = totals(&rows);
    AttendanceRegister {
        cohort_id: cohort_id.to_owned(),
        granularity: "session",
        closed_at: closed.map(|c| utc(&c.occurred_at)),
        rows,
        totals,
        anomalies: anomalies.into_iter().map(|(_, a)| a).collect(),
    }
}

fn slot(starts_at: &DateTime<Utc>, half_days: u32) -> &'static str {
    if half_days >= 2 {
        "AM+PM"
    } else if starts_at.with_timezone(&Paris).hour() < 12 {
        "AM"
    } else {
        "PM"
    }
}

/// Flags presences of one learner at overlapping slots (this cohort's rows against each
/// other and against `elsewhere`).
fn overlaps(
    cohort_id: &str,
    sessions: &BTreeMap<String, Session>,
    rows: &mut [AttendanceRow],
    elsewhere: &[Presence],
    anomalies: &mut Vec<(DateTime<Utc>, Anomaly)>,
) {
    let mut by_learner: BTreeMap<&str, Vec<(Option<usize>, Presence)>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if row.status != AttendanceStatus::Present {
            continue;
        }
        if let Some(s) = sessions.get(&row.session_id) {
            by_learner
                .entry(row.learner_id.as_str())
                .or_default()
                .push((
                    Some(i),
                    Presence {
                        cohort_id: cohort_id.to_owned(),
                        session_id: row.session_id.clone(),
                        learner_id: row.learner_id.clone(),
                        starts_at: s.starts_at,
                        ends_at: s.ends_at,
                    },
                ));
        }
    }
    for p in elsewhere.iter().filter(|p| p.cohort_id != cohort_id) {
        if let Some(list) = by_learner.get_mut(p.learner_id.as_str()) {
            list.push((None, p.clone()));
        }
    }
    let mut flagged: Vec<(usize, Anomaly, DateTime<Utc>)> = Vec::new();
    for list in by_learner.values() {
        for (a, (row_a, pa)) in list.iter().enumerate() {
            for (row_b, pb) in list.iter().skip(a + 1) {
                if !(pa.starts_at < pb.ends_at && pb.starts_at < pa.ends_at) {
                    continue;
                }
                for (row, mine, other) in [(row_a, pa, pb), (row_b, pb, pa)] {
                    if let Some(i) = row {
                        flagged.push((
                            *i,
                            Anomaly {
                                flag: Flag::OverlappingPresence,
                                session_id: mine.session_id.clone(),
                                learner_id: Some(mine.learner_id.clone()),
                                detail: format!(
                                    "present at {}/{} ({} to {}) and at {}/{} ({} to {}), whose slots overlap",
                                    mine.cohort_id,
                                    mine.session_id,
                                    utc(&mine.starts_at),
                                    utc(&mine.ends_at),
                                    other.cohort_id,
                                    other.session_id,
                                    utc(&other.starts_at),
                                    utc(&other.ends_at)
                                ),
                            },
                            mine.starts_at,
                        ));
                    }
                }
            }
        }
    }
    for (i, anomaly, at) in flagged {
        if let Some(row) = rows.get_mut(i) {
            row.flags.push(Flag::OverlappingPresence);
        }
        anomalies.push((at, anomaly));
    }
}

fn totals(rows: &[AttendanceRow]) -> Vec<LearnerTotals> {
    let mut sums: BTreeMap<(&str, &str), LearnerTotals> = BTreeMap::new();
    for row in rows {
        let t = sums
            .entry((row.learner_id.as_str(), row.module_id.as_str()))
            .or_insert_with(|| LearnerTotals {
                learner_id: row.learner_id.clone(),
                module_id: row.module_id.clone(),
                ..LearnerTotals::default()
            });
        t.held_half_days += row.half_days;
        match row.status {
            AttendanceStatus::Present => t.attended_half_days += row.half_days,
            AttendanceStatus::Excused => t.excused_half_days += row.half_days,
            AttendanceStatus::Absent => t.absent_half_days += row.half_days,
        }
    }
    sums.into_values().collect()
}

impl AttendanceRegister {
    /// The presences of the register (rows whose current status is `present`), for another
    /// cohort's overlap check.
    pub fn presences(&self) -> Vec<Presence> {
        self.rows
            .iter()
            .filter(|r| r.status == AttendanceStatus::Present)
            .filter_map(|r| {
                let starts_at = DateTime::parse_from_rfc3339(&r.starts_at).ok()?;
                let ends_at = DateTime::parse_from_rfc3339(&r.ends_at).ok()?;
                Some(Presence {
                    cohort_id: self.cohort_id.clone(),
                    session_id: r.session_id.clone(),
                    learner_id: r.learner_id.clone(),
                    starts_at: starts_at.with_timezone(&Utc),
                    ends_at: ends_at.with_timezone(&Utc),
                })
            })
            .collect()
    }

    /// The same register with one row per half-day: a two-half-day row becomes an `AM` row
    /// and a `PM` row of one half-day each (same statuses, corrections and flags). Totals and
    /// anomalies are unchanged.
    pub fn by_half_day(mut self) -> Self {
        let mut rows = Vec::with_capacity(self.rows.len() * 2);
        for row in self.rows {
            if row.half_days >= 2 {
                for slot in ["AM", "PM"] {
                    rows.push(AttendanceRow {
                        slot: slot.to_owned(),
                        half_days: 1,
                        ..row.clone()
                    });
                }
            } else {
                rows.push(row);
            }
        }
        self.rows = rows;
        self.granularity = "half_day";
        self
    }

    /// The rows as CSV (RFC 4180: comma-separated, CRLF line ends, fields quoted when they
    /// hold a comma, a quote or a line break), with a header line. Corrections are one field,
    /// each as `previous->status: reason [actor; at OCCURRED; recorded RECORDED; COMMAND]`,
    /// joined by ` | `; flags are joined by `;`.
    pub fn to_csv(&self) -> String {
        const HEADER: [&str; 24] = [
            "cohort_id",
            "learner_id",
            "learner_name",
            "session_id",
            "module_id",
            "unit_id",
            "kind",
            "date",
            "slot",
            "starts_at",
            "ends_at",
            "starts_at_local",
            "ends_at_local",
            "half_days",
            "facilitator",
            "recorded_status",
            "status",
            "recorded_at_occurred",
            "recorded_at",
            "recorded_by",
            "recorded_command_id",
            "corrections_count",
            "corrections",
            "flags",
        ];
        let mut out = String::new();
        push_line(&mut out, HEADER.iter().map(|h| (*h).to_owned()));
        for r in &self.rows {
            let corrections: Vec<String> = r
                .corrections
                .iter()
                .map(|c| {
                    format!(
                        "{}->{}: {} [{}; at {}; recorded {}; {}]",
                        status_name(c.previous_status),
                        status_name(c.status),
                        c.reason,
                        c.stamp.actor,
                        c.stamp.occurred_at,
                        c.stamp.recorded_at,
                        c.stamp.command_id
                    )
                })
                .collect();
            let flags: Vec<&str> = r.flags.iter().map(|f| f.as_str()).collect();
            push_line(
                &mut out,
                [
                    self.cohort_id.clone(),
                    r.learner_id.clone(),
                    r.learner_name.clone(),
                    r.session_id.clone(),
                    r.module_id.clone(),
                    r.unit_id.clone().unwrap_or_default(),
                    kind_name(r.kind).to_owned(),
                    r.date.clone(),
                    r.slot.clone(),
                    r.starts_at.clone(),
                    r.ends_at.clone(),
                    r.starts_at_local.clone(),
                    r.ends_at_local.clone(),
                    r.half_days.to_string(),
                    r.facilitator.clone(),
                    status_name(r.recorded_status).to_owned(),
                    status_name(r.status).to_owned(),
                    r.recorded.occurred_at.clone(),
                    r.recorded.recorded_at.clone(),
                    r.recorded.actor.clone(),
                    r.recorded.command_id.clone(),
                    r.corrections.len().to_string(),
                    corrections.join(" | "),
                    flags.join(";"),
                ]
                .into_iter(),
            );
        }
        out
    }
}

fn status_name(s: AttendanceStatus) -> &'static str {
    match s {
        AttendanceStatus::Present => "present",
        AttendanceStatus::Excused => "excused",
        AttendanceStatus::Absent => "absent",
    }
}

fn kind_name(k: SessionKind) -> &'static str {
    match k {
        SessionKind::Course => "course",
        SessionKind::ReflexiveAccompaniment => "reflexive_accompaniment",
        SessionKind::CriticalDebate => "critical_debate",
        SessionKind::FieldWork => "field_work",
        SessionKind::Defence => "defence",
    }
}

fn push_line(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldtrail_domain::AnyEvent;
    use serde_json::{json, Value};

    #[derive(Default)]
    struct Stream(Vec<CohortRecord>);

    impl Stream {
        fn push(&mut self, event_type: &str, at: &str, payload: Value) -> &mut Self {
            let AnyEvent::Cohort(event) = AnyEvent::decode("cohort", event_type, "1", &payload)
                .expect("test payload decodes")
            else {
                panic!("not a cohort event");
            };
            let n = self.0.len() as i64 + 1;
            let occurred_at = DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc);
            self.0.push(CohortRecord {
                stream_version: n,
                position: n,
                occurred_at,
                recorded_at: occurred_at + Duration::seconds(30),
                actor: "staff:coordinator".into(),
                command_id: format!("c{n}"),
                event,
            });
            self
        }

        /// Cohort c1 with learners l1, l2, l3 (l3 withdraws before s2 is recorded).
        fn clean() -> Self {
            let mut s = Stream::default();
            s.push("cohort_opened", "2025-06-01T10:00:00+02:00", json!({"cohort_id": "c1", "programme_id": "p1", "title": "C", "starts_on": "2025-09-01", "ends_on": "2026-06-30"}));
            for l in ["l1", "l2", "l3"] {
                s.push("learner_enrolled", "2025-06-02T10:00:00+02:00", json!({"cohort_id": "c1", "learner_id": l, "name": format!("Name {l}"), "deis_pathway": false}));
            }
            s.session(
                "s1",
                "2025-09-15T09:00:00+02:00",
                "2025-09-15T17:00:00+02:00",
                2,
                "facilitator:intervenant-a",
            );
            s.session(
                "s2",
                "2025-09-16T13:30:00+02:00",
                "2025-09-16T17:00:00+02:00",
                1,
                "facilitator:intervenant-b",
            );
            s.push("session_held", "2025-09-15T17:30:00+02:00", json!({"cohort_id": "c1", "session_id": "s1", "module_id": "m1", "half_days": 2, "present": ["l1", "l3"], "excused": [], "absent": ["l2"]}));
            s.push("attendance_corrected", "2025-09-17T10:00:00+02:00", json!({"cohort_id": "c1", "session_id": "s1", "learner_id": "l2", "previous_status": "absent", "status": "excused", "reason": "Justificatif, reçu"}));
            s.push(
                "learner_withdrew",
                "2025-09-16T09:00:00+02:00",
                json!({"cohort_id": "c1", "learner_id": "l3", "reason": "Départ"}),
            );
            s.push("session_held", "2025-09-16T17:30:00+02:00", json!({"cohort_id": "c1", "session_id": "s2", "module_id": "m2", "half_days": 1, "present": ["l1", "l2"], "excused": [], "absent": []}));
            s
        }

        fn session(
            &mut self,
            id: &str,
            from: &str,
            to: &str,
            half_days: u8,
            facilitator: &str,
        ) -> &mut Self {
            self.push("session_scheduled", "2025-07-01T10:00:00+02:00", json!({"cohort_id": "c1", "session_id": id, "module_id": "m1", "unit_id": null, "kind": "course", "starts_at": from, "ends_at": to, "half_days": half_days, "facilitator": facilitator}))
        }

        fn hold(&mut self, id: &str, at: &str) -> &mut Self {
            self.push("session_held", at, json!({"cohort_id": "c1", "session_id": id, "module_id": "m1", "half_days": 1, "present": ["l1", "l2"], "excused": [], "absent": []}))
        }

        fn register(&self) -> AttendanceRegister {
            build("c1", &self.0, &[])
        }
    }

    fn flags(register: &AttendanceRegister) -> Vec<Flag> {
        let mut all: Vec<Flag> = register.anomalies.iter().map(|a| a.flag).collect();
        all.dedup();
        all
    }

    #[test]
    fn one_row_per_active_learner_and_held_session_with_corrections_and_totals() {
        let register = Stream::clean().register();
        let rows: Vec<(&str, &str, &str, AttendanceStatus)> = register
            .rows
            .iter()
            .map(|r| {
                (
                    r.session_id.as_str(),
                    r.learner_id.as_str(),
                    r.slot.as_str(),
                    r.status,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("s1", "l1", "AM+PM", AttendanceStatus::Present),
                ("s1", "l2", "AM+PM", AttendanceStatus::Excused),
                ("s1", "l3", "AM+PM", AttendanceStatus::Present),
                ("s2", "l1", "PM", AttendanceStatus::Present),
                ("s2", "l2", "PM", AttendanceStatus::Present),
            ]
        );
        let l2 = &register.rows[1];
        assert_eq!(l2.recorded_status, AttendanceStatus::Absent);
        assert_eq!(l2.corrections.len(), 1);
        assert_eq!(l2.corrections[0].reason, "Justificatif, reçu");
        assert_eq!(l2.corrections[0].stamp.occurred_at, "2025-09-17T08:00:00Z");
        assert_eq!(l2.corrections[0].stamp.recorded_at, "2025-09-17T08:00:30Z");
        assert_eq!(l2.date, "2025-09-15");
        assert_eq!(l2.starts_at_local, "2025-09-15T09:00:00");
        assert!(register.anomalies.is_empty(), "{:?}", register.anomalies);
        let l2_m1 = register
            .totals
            .iter()
            .find(|t| t.learner_id == "l2" && t.module_id == "m1")
            .unwrap();
        assert_eq!(
            (
                l2_m1.held_half_days,
                l2_m1.attended_half_days,
                l2_m1.excused_half_days,
                l2_m1.absent_half_days
            ),
            (2, 0, 2, 0)
        );
        let by_half_day = register.clone().by_half_day();
        assert_eq!(by_half_day.rows.len(), 8);
        assert_eq!(by_half_day.rows[0].slot, "AM");
        assert_eq!(by_half_day.rows[1].slot, "PM");
        assert_eq!(by_half_day.totals, register.totals);
        let csv = register.to_csv();
        assert_eq!(csv.lines().count(), 6);
        assert!(csv.contains("\"absent->excused: Justificatif, reçu [staff:coordinator; at 2025-09-17T08:00:00Z; recorded 2025-09-17T08:00:30Z; c"), "{csv}");
    }

    #[test]
    fn a_session_on_a_public_holiday_or_a_sunday_is_flagged() {
        let mut s = Stream::clean();
        s.session(
            "h",
            "2025-11-11T09:00:00+01:00",
            "2025-11-11T12:00:00+01:00",
            1,
            "x",
        );
        s.hold("h", "2025-11-11T12:30:00+01:00");
        s.session(
            "w",
            "2026-05-25T09:00:00+02:00",
            "2026-05-25T12:00:00+02:00",
            1,
            "x",
        );
        s.hold("w", "2026-05-25T12:30:00+02:00");
        s.session(
            "d",
            "2025-09-21T09:00:00+02:00",
            "2025-09-21T12:00:00+02:00",
            1,
            "x",
        );
        s.hold("d", "2025-09-21T12:30:00+02:00");
        let register = s.register();
        let of = |session: &str| {
            register
                .anomalies
                .iter()
                .filter(|a| a.session_id == session)
                .map(|a| (a.flag, a.detail.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of("h"),
            [(
                Flag::PublicHoliday,
                "held on 2025-11-11, a public holiday (Armistice 1918)".to_owned()
            )]
        );
        assert_eq!(of("w")[0].0, Flag::PublicHoliday);
        assert!(of("w")[0].1.contains("Pentecôte"));
        assert_eq!(
            of("d"),
            [(Flag::Sunday, "held on Sunday 2025-09-21".to_owned())]
        );
        assert!(register
            .rows
            .iter()
            .filter(|r| r.session_id == "d")
            .all(|r| r.flags == [Flag::Sunday]));
    }

    #[test]
    fn a_late_attendance_record_is_flagged_after_14_days_only() {
        let mut s = Stream::clean();
        s.session(
            "a",
            "2025-10-01T09:00:00+02:00",
            "2025-10-01T12:00:00+02:00",
            1,
            "x",
        );
        s.hold("a", "2025-10-15T12:00:00+02:00"); // exactly 14 days: not late
        s.session(
            "b",
            "2025-10-02T09:00:00+02:00",
            "2025-10-02T12:00:00+02:00",
            1,
            "x",
        );
        s.hold("b", "2025-10-16T12:00:01+02:00");
        let register = s.register();
        assert_eq!(flags(&register), [Flag::LateAttendanceRecord]);
        assert_eq!(register.anomalies[0].session_id, "b");
    }

    #[test]
    fn late_corrections_and_corrections_after_closing_are_flagged() {
        let mut s = Stream::clean();
        s.push("attendance_corrected", "2025-10-15T18:00:00+02:00", json!({"cohort_id": "c1", "session_id": "s1", "learner_id": "l1", "previous_status": "present", "status": "absent", "reason": "Erreur"}));
        assert_eq!(flags(&s.register()), [Flag::LateCorrection]);
        s.push(
            "cohort_closed",
            "2026-07-01T10:00:00+02:00",
            json!({"cohort_id": "c1"}),
        );
        s.push("attendance_corrected", "2026-07-02T10:00:00+02:00", json!({"cohort_id": "c1", "session_id": "s2", "learner_id": "l2", "previous_status": "present", "status": "excused", "reason": "Oubli"}));
        let register = s.register();
        let after: Vec<(&str, Flag)> = register
            .anomalies
            .iter()
            .map(|a| (a.learner_id.as_deref().unwrap_or(""), a.flag))
            .collect();
        assert_eq!(
            after,
            [
                ("l1", Flag::LateCorrection),
                ("l2", Flag::LateCorrection),
                ("l2", Flag::CorrectionAfterClose)
            ]
        );
        assert_eq!(register.closed_at.as_deref(), Some("2026-07-01T08:00:00Z"));
        let row = register
            .rows
            .iter()
            .find(|r| r.session_id == "s2" && r.learner_id == "l2")
            .unwrap();
        assert_eq!(
            row.flags,
            [Flag::LateCorrection, Flag::CorrectionAfterClose]
        );
    }

    #[test]
    fn a_presence_overlapping_another_is_flagged_within_and_across_cohorts() {
        let mut s = Stream::clean();
        let other = Presence {
            cohort_id: "c2".into(),
            session_id: "x1".into(),
            learner_id: "l1".into(),
            starts_at: DateTime::parse_from_rfc3339("2025-09-16T14:00:00+02:00")
                .unwrap()
                .with_timezone(&Utc),
            ends_at: DateTime::parse_from_rfc3339("2025-09-16T15:00:00+02:00")
                .unwrap()
                .with_timezone(&Utc),
        };
        let register = build("c1", &s.0, std::slice::from_ref(&other));
        assert_eq!(flags(&register), [Flag::OverlappingPresence]);
        assert_eq!(register.anomalies.len(), 1);
        assert!(register.anomalies[0].detail.contains("c2/x1"));
        let row = register
            .rows
            .iter()
            .find(|r| r.session_id == "s2" && r.learner_id == "l1")
            .unwrap();
        assert_eq!(row.flags, [Flag::OverlappingPresence]);
        // Absent there: no overlap.
        s.push("attendance_corrected", "2025-09-17T10:00:00+02:00", json!({"cohort_id": "c1", "session_id": "s2", "learner_id": "l1", "previous_status": "present", "status": "absent", "reason": "Erreur"}));
        assert!(build("c1", &s.0, &[other]).anomalies.is_empty());
    }

    #[test]
    fn a_facilitator_who_is_a_learner_of_the_session_is_flagged() {
        let mut s = Stream::clean();
        s.session(
            "f",
            "2025-10-01T09:00:00+02:00",
            "2025-10-01T12:00:00+02:00",
            1,
            "learner:L2",
        );
        s.hold("f", "2025-10-01T12:30:00+02:00");
        s.session(
            "g",
            "2025-10-02T09:00:00+02:00",
            "2025-10-02T12:00:00+02:00",
            1,
            " name l1 ",
        );
        s.hold("g", "2025-10-02T12:30:00+02:00");
        let register = s.register();
        let found: Vec<(&str, Option<&str>)> = register
            .anomalies
            .iter()
            .map(|a| (a.session_id.as_str(), a.learner_id.as_deref()))
            .collect();
        assert_eq!(found, [("f", Some("l2")), ("g", Some("l1"))]);
        assert_eq!(flags(&register), [Flag::FacilitatorIsLearner]);
    }
}
