//! A cohort's timetable as an iCalendar object (RFC 5545), for calendar applications that
//! subscribe to it by URL.
//!
//! Shape of the output (RFC 5545 section numbers in brackets):
//!
//! - one `VCALENDAR` [3.4, 3.6] with `VERSION:2.0`, `PRODID` [3.7.3, 3.7.4], `CALSCALE`, no
//!   `METHOD` (a published calendar, not a scheduling message), its name (`NAME` of RFC 7986 and
//!   the common `X-WR-CALNAME`) and a refresh hint (`REFRESH-INTERVAL`, RFC 7986 5.7);
//! - one `VTIMEZONE` for `Europe/Paris` [3.6.5] with its `DAYLIGHT` and `STANDARD` rules as
//!   `RRULE`s (the EU rule in force since 1996): [`VTIMEZONE_EUROPE_PARIS`];
//! - one `VEVENT` [3.6.1] per session ever scheduled, cancelled ones included:
//!   `UID` = `<session_id>@<cohort_id>.fieldtrail` (stable, [3.8.4.7]);
//!   `DTSTART;TZID=Europe/Paris` / `DTEND;TZID=Europe/Paris` = the current slot as Paris wall
//!   time [3.3.5 form 3] (a session moved across the end of summer time keeps its wall time);
//!   `SEQUENCE` [3.8.7.4] = number of reschedules, plus one for a cancellation;
//!   `STATUS` [3.8.1.11] = `CANCELLED` or `CONFIRMED`; `SUMMARY` from the module and unit
//!   titles; `DESCRIPTION` with the kind, facilitator, module, unit, half-days and the latest
//!   reason for a change; `CATEGORIES` = the kind; `CREATED` = when the journal recorded the
//!   scheduling; `LAST-MODIFIED` [3.8.7.3] = when it recorded the session's last change
//!   (scheduling, reschedule or cancellation; holding a session changes nothing shown);
//!   `DTSTAMP` [3.8.7.2] = `LAST-MODIFIED` (without `METHOD`, DTSTAMP is "when the information
//!   was last revised"), so the same journal always gives the same bytes;
//! - for a learner's calendar ([`Calendar::for_learner`]), also one `VEVENT` per defence the
//!   learner is due at (`UID` = `<defence_id>@<field_study_id>.fieldtrail`, `DTSTART` only: the
//!   journal keeps no end, so per 3.6.1 the event ends when it starts); a cancelled defence
//!   stays, `STATUS:CANCELLED` and `SEQUENCE:1`.
//!
//! Text values are escaped as in 3.3.11 (`\\`, `\;`, `\,`, `\n`; other control characters
//! dropped), lines are folded at 75 octets without splitting a UTF-8 sequence [3.1], and every
//! line ends with CRLF. Instants are Paris wall time when the `VTIMEZONE` above gives them
//! exactly (1997 onwards, first occurrence of a repeated hour); otherwise UTC (`...Z`).

use crate::formats::{CohortOutline, ProgrammeOutline};
use crate::{RecordedEvent, SessionStatus};
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::Europe::Paris;
use fieldtrail_domain::command::{DefenceResult, SessionKind};
use fieldtrail_domain::{AnyEvent, CohortEvent, FieldStudyEvent};
use std::collections::BTreeMap;

/// The `TZID` of every local time in the output.
pub const TZID: &str = "Europe/Paris";

/// The `PRODID` property value (RFC 5545 3.7.3: a globally unique product identifier).
pub const PRODID: &str = "-//fieldtrail//fieldtrail timetable//EN";

/// Media type of the output (RFC 5545 8.1).
pub const MEDIA_TYPE: &str = "text/calendar; charset=utf-8";

/// The `VTIMEZONE` component of Europe/Paris (RFC 5545 3.6.5), one content line per item.
///
/// Summer time (`DAYLIGHT`, CEST, UTC+2) starts on the last Sunday of March at 02:00 local
/// (01:00 UTC), standard time (`STANDARD`, CET, UTC+1) on the last Sunday of October at 03:00
/// local (01:00 UTC): the EU rule, in force in France since 1996 (the October rule) and 1981
/// (the March rule). Each sub-component's `DTSTART` is the first onset under that rule, in the
/// local time in force before it (`TZOFFSETFROM`).
pub const VTIMEZONE_EUROPE_PARIS: &[&str] = &[
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19810329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19961027T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
];

/// First year for which [`VTIMEZONE_EUROPE_PARIS`] describes every instant (its `STANDARD`
/// rule starts on 1996-10-27).
const VTIMEZONE_VALID_FROM_YEAR: i32 = 1997;

/// One session as the calendar shows it: its current slot and its change history, folded from
/// the cohort stream ([`sessions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarSession {
    /// The session.
    pub session_id: String,
    /// Its module.
    pub module_id: String,
    /// Its unit, if any.
    pub unit_id: Option<String>,
    /// What kind of session.
    pub kind: SessionKind,
    /// Current start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Current end (UTC).
    pub ends_at: DateTime<Utc>,
    /// 1 or 2 half-days.
    pub half_days: u32,
    /// Who leads it (`role:name` as recorded).
    pub facilitator: String,
    /// Scheduled, held or cancelled.
    pub status: SessionStatus,
    /// Reschedules so far.
    pub reschedules: u32,
    /// `SEQUENCE`: reschedules, plus one once cancelled.
    pub sequence: u32,
    /// When the journal recorded its scheduling (UTC).
    pub created: DateTime<Utc>,
    /// When the journal recorded its last scheduling, reschedule or cancellation (UTC).
    pub last_modified: DateTime<Utc>,
    /// The reason given with the last reschedule or the cancellation, if any.
    pub last_reason: Option<String>,
}

/// The sessions of a cohort stream (events in stream order), sorted by current start, then
/// session id. Events about unknown sessions change nothing; a second `session_scheduled` for
/// an id is ignored, as in the timetable read model.
pub fn sessions(cohort_events: &[RecordedEvent]) -> Vec<CalendarSession> {
    let mut by_id: BTreeMap<String, CalendarSession> = BTreeMap::new();
    for e in cohort_events {
        let AnyEvent::Cohort(event) = &e.event else {
            continue;
        };
        match event {
            CohortEvent::SessionScheduled {
                session_id,
                module_id,
                unit_id,
                kind,
                starts_at,
                ends_at,
                half_days,
                facilitator,
                ..
            } => {
                by_id
                    .entry(session_id.to_string())
                    .or_insert_with(|| CalendarSession {
                        session_id: session_id.to_string(),
                        module_id: module_id.to_string(),
                        unit_id: unit_id.as_ref().map(ToString::to_string),
                        kind: *kind,
                        starts_at: starts_at.with_timezone(&Utc),
                        ends_at: ends_at.with_timezone(&Utc),
                        half_days: u32::from(*half_days),
                        facilitator: facilitator.clone(),
                        status: SessionStatus::Scheduled,
                        reschedules: 0,
                        sequence: 0,
                        created: e.recorded_at,
                        last_modified: e.recorded_at,
                        last_reason: None,
                    });
            }
            CohortEvent::SessionRescheduled {
                session_id,
                starts_at,
                ends_at,
                reason,
                ..
            } => {
                if let Some(s) = by_id.get_mut(session_id.as_str()) {
                    s.starts_at = starts_at.with_timezone(&Utc);
                    s.ends_at = ends_at.with_timezone(&Utc);
                    s.reschedules = s.reschedules.saturating_add(1);
                    s.sequence = s.sequence.saturating_add(1);
                    s.last_modified = s.last_modified.max(e.recorded_at);
                    s.last_reason = Some(reason.as_str().to_owned());
                }
            }
            CohortEvent::SessionCancelled {
                session_id, reason, ..
            } => {
                if let Some(s) = by_id.get_mut(session_id.as_str()) {
                    if s.status == SessionStatus::Scheduled {
                        s.status = SessionStatus::Cancelled;
                        s.sequence = s.sequence.saturating_add(1);
                        s.last_modified = s.last_modified.max(e.recorded_at);
                        s.last_reason = Some(reason.as_str().to_owned());
                    }
                }
            }
            CohortEvent::SessionHeld { session_id, .. } => {
                if let Some(s) = by_id.get_mut(session_id.as_str()) {
                    if s.status == SessionStatus::Scheduled {
                        s.status = SessionStatus::Held;
                    }
                }
            }
            _ => {}
        }
    }
    let mut list: Vec<CalendarSession> = by_id.into_values().collect();
    list.sort_by(|a, b| {
        a.starts_at
            .cmp(&b.starts_at)
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    list
}

/// A defence a learner is due at, from their field study's stream ([`learner_defences`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarDefence {
    /// The defence.
    pub defence_id: String,
    /// Its field study.
    pub field_study_id: String,
    /// When it is scheduled (UTC).
    pub at: DateTime<Utc>,
    /// Number of jury members.
    pub jury_size: usize,
    /// When the journal recorded its scheduling (UTC).
    pub recorded_at: DateTime<Utc>,
    /// When the journal recorded its cancellation (`defence_cancelled`, UTC), if it was
    /// cancelled: the event is then `STATUS:CANCELLED` [RFC 5545 3.8.1.11], `SEQUENCE:1`.
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// The defences of a field study stream (events in stream order) that `learner_id` is due at:
/// the first one if they were a member when it was scheduled; a later one if their latest
/// result before it (after rectifications; cancelled defences left out) is `deferred` and
/// they are still a member
/// (FORMAT.md, `schedule_defence`). Several streams may follow one another (a study after the
/// studies it split from): each is read on its own.
pub fn learner_defences(
    field_study_events: &[RecordedEvent],
    learner_id: &str,
) -> Vec<CalendarDefence> {
    let mut members: Vec<String> = Vec::new();
    // Results of each scheduled defence, in scheduling order.
    let mut results: Vec<(String, BTreeMap<String, DefenceResult>)> = Vec::new();
    let mut due = Vec::new();
    let mut stream: Option<&str> = None;
    for e in field_study_events {
        let AnyEvent::FieldStudy(event) = &e.event else {
            continue;
        };
        // Several streams (a study and the ones it split from) are read one after the other.
        if stream != Some(e.stream_id.as_str()) {
            stream = Some(e.stream_id.as_str());
            members.clear();
            results.clear();
        }
        match event {
            FieldStudyEvent::FieldStudyFormed { members: m, .. }
            | FieldStudyEvent::MembersChanged { members: m, .. }
            | FieldStudyEvent::FieldStudySplit { remaining: m, .. } => {
                members = m.iter().map(ToString::to_string).collect();
            }
            FieldStudyEvent::DefenceResultRectified {
                defence_id,
                learner_id,
                result,
                ..
            } => {
                if let Some((_, map)) = results
                    .iter_mut()
                    .find(|(id, _)| id.as_str() == defence_id.as_str())
                {
                    map.insert(learner_id.to_string(), *result);
                }
            }
            FieldStudyEvent::DefenceScheduled {
                field_study_id,
                defence_id,
                at,
                jury,
            } => {
                // Their latest result before it (rectifications counted) is `deferred`; the
                // first defence is due for every member.
                let latest = results.iter().rev().find_map(|(_, r)| r.get(learner_id));
                let is_due = members.iter().any(|m| m == learner_id)
                    && (results.is_empty() || latest == Some(&DefenceResult::Deferred));
                if is_due {
                    due.push(CalendarDefence {
                        defence_id: defence_id.to_string(),
                        field_study_id: field_study_id.to_string(),
                        at: at.with_timezone(&Utc),
                        jury_size: jury.len(),
                        recorded_at: e.recorded_at,
                        cancelled_at: None,
                    });
                }
                results.push((defence_id.to_string(), BTreeMap::new()));
            }
            // A cancelled defence records nothing: the next one is due for whom it was.
            FieldStudyEvent::DefenceCancelled {
                field_study_id,
                defence_id,
                ..
            } => {
                results.retain(|(id, _)| id.as_str() != defence_id.as_str());
                if let Some(d) = due.iter_mut().find(|d| {
                    d.defence_id == defence_id.as_str()
                        && d.field_study_id == field_study_id.as_str()
                }) {
                    d.cancelled_at = Some(e.recorded_at);
                }
            }
            other => {
                if let Some((defence_id, learner, result)) = other.defence_result() {
                    if let Some((_, map)) = results
                        .iter_mut()
                        .find(|(id, _)| id.as_str() == defence_id.as_str())
                    {
                        map.insert(learner.to_string(), result);
                    }
                }
            }
        }
    }
    due
}

/// A cohort's calendar, ready to be written as iCalendar text with [`Calendar::to_ics`].
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    /// The cohort.
    pub cohort_id: String,
    /// Display name of the calendar: the cohort's title (its id when unknown), and the learner
    /// for a learner's calendar.
    pub name: String,
    /// The learner, for a learner's calendar.
    pub learner_id: Option<String>,
    /// Every session, sorted by start then id.
    pub sessions: Vec<CalendarSession>,
    /// The learner's defences (empty for the cohort's calendar).
    pub defences: Vec<CalendarDefence>,
    programme: ProgrammeOutline,
}

impl Calendar {
    /// The cohort's calendar from its programme's and its own stream (events in stream order).
    pub fn from_streams(
        cohort_id: &str,
        programme_events: &[RecordedEvent],
        cohort_events: &[RecordedEvent],
    ) -> Self {
        let title = CohortOutline::from_events(cohort_events)
            .map(|c| c.title)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| cohort_id.to_owned());
        Self {
            cohort_id: cohort_id.to_owned(),
            name: title,
            learner_id: None,
            sessions: sessions(cohort_events),
            defences: Vec::new(),
            programme: ProgrammeOutline::from_events(programme_events),
        }
    }

    /// The same calendar for one learner: adds the defences of `field_study_events` (their
    /// field study's stream, empty if none) that the learner is due at, and names the learner.
    pub fn for_learner(mut self, learner_id: &str, field_study_events: &[RecordedEvent]) -> Self {
        self.name = format!("{} ({learner_id})", self.name);
        self.learner_id = Some(learner_id.to_owned());
        self.defences = learner_defences(field_study_events, learner_id);
        self.defences.sort_by(|a, b| {
            a.at.cmp(&b.at)
                .then_with(|| a.defence_id.cmp(&b.defence_id))
        });
        self
    }

    /// The session's `SUMMARY`: `<module title> — <unit title>`, or the module title alone;
    /// ids stand in for titles the programme does not give.
    pub fn summary(&self, session: &CalendarSession) -> String {
        let module = self
            .programme
            .module_title(&session.module_id)
            .unwrap_or(&session.module_id);
        match &session.unit_id {
            Some(unit_id) => {
                let unit = self.programme.unit_title(unit_id).unwrap_or(unit_id);
                format!("{module} — {unit}")
            }
            None => module.to_owned(),
        }
    }

    fn description(&self, s: &CalendarSession) -> String {
        let mut lines = vec![
            format!("Kind: {}", kind_label(s.kind)),
            format!("Facilitator: {}", s.facilitator),
            match self.programme.module_title(&s.module_id) {
                Some(title) => format!("Module: {} {title}", s.module_id),
                None => format!("Module: {}", s.module_id),
            },
        ];
        if let Some(unit_id) = &s.unit_id {
            lines.push(match self.programme.unit_title(unit_id) {
                Some(title) => format!("Unit: {unit_id} {title}"),
                None => format!("Unit: {unit_id}"),
            });
        }
        lines.push(format!("Half-days: {}", s.half_days));
        if s.status == SessionStatus::Cancelled {
            lines.push(format!(
                "Cancelled: {}",
                s.last_reason.as_deref().unwrap_or("")
            ));
        } else if s.reschedules > 0 {
            lines.push(format!(
                "Rescheduled {} time{}; latest reason: {}",
                s.reschedules,
                if s.reschedules == 1 { "" } else { "s" },
                s.last_reason.as_deref().unwrap_or("")
            ));
        }
        lines.join("\n")
    }

    /// The calendar as an iCalendar object: UTF-8 text, CRLF line ends, lines folded at 75
    /// octets (RFC 5545; see the module documentation for every property).
    pub fn to_ics(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| fold_into(&text, &mut out);
        line("BEGIN:VCALENDAR".to_owned());
        line("VERSION:2.0".to_owned());
        line(format!("PRODID:{PRODID}"));
        line("CALSCALE:GREGORIAN".to_owned());
        line(format!("NAME:{}", escape_text(&self.name)));
        line(format!("X-WR-CALNAME:{}", escape_text(&self.name)));
        line(format!("X-WR-TIMEZONE:{TZID}"));
        line("REFRESH-INTERVAL;VALUE=DURATION:PT6H".to_owned());
        line("X-PUBLISHED-TTL:PT6H".to_owned());
        for l in VTIMEZONE_EUROPE_PARIS {
            line((*l).to_owned());
        }
        for s in &self.sessions {
            line("BEGIN:VEVENT".to_owned());
            line(format!(
                "UID:{}",
                escape_text(&format!("{}@{}.fieldtrail", s.session_id, self.cohort_id))
            ));
            line(format!("DTSTAMP:{}", utc_stamp(&s.last_modified)));
            line(format!("CREATED:{}", utc_stamp(&s.created)));
            line(format!("LAST-MODIFIED:{}", utc_stamp(&s.last_modified)));
            line(format!("SEQUENCE:{}", s.sequence));
            line(date_time_property("DTSTART", &s.starts_at));
            line(date_time_property("DTEND", &s.ends_at));
            line(format!("SUMMARY:{}", escape_text(&self.summary(s))));
            line(format!("DESCRIPTION:{}", escape_text(&self.description(s))));
            line(format!("CATEGORIES:{}", kind_code(s.kind)));
            line(format!(
                "STATUS:{}",
                if s.status == SessionStatus::Cancelled {
                    "CANCELLED"
                } else {
                    "CONFIRMED"
                }
            ));
            line("END:VEVENT".to_owned());
        }
        for d in &self.defences {
            line("BEGIN:VEVENT".to_owned());
            line(format!(
                "UID:{}",
                escape_text(&format!("{}@{}.fieldtrail", d.defence_id, d.field_study_id))
            ));
            let modified = d.cancelled_at.unwrap_or(d.recorded_at);
            line(format!("DTSTAMP:{}", utc_stamp(&modified)));
            line(format!("CREATED:{}", utc_stamp(&d.recorded_at)));
            line(format!("LAST-MODIFIED:{}", utc_stamp(&modified)));
            line(format!("SEQUENCE:{}", u8::from(d.cancelled_at.is_some())));
            line(date_time_property("DTSTART", &d.at));
            line(format!(
                "SUMMARY:{}",
                escape_text(&format!(
                    "Defence {} (field study {})",
                    d.defence_id, d.field_study_id
                ))
            ));
            line(format!(
                "DESCRIPTION:{}",
                escape_text(&format!(
                    "Defence of the written production of field study {} before a jury of {}.",
                    d.field_study_id, d.jury_size
                ))
            ));
            line("CATEGORIES:defence".to_owned());
            line(if d.cancelled_at.is_some() {
                "STATUS:CANCELLED".to_owned()
            } else {
                "STATUS:CONFIRMED".to_owned()
            });
            line("END:VEVENT".to_owned());
        }
        line("END:VCALENDAR".to_owned());
        out
    }
}

/// A session kind as FORMAT.md spells it (`field_work`...).
fn kind_code(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Course => "course",
        SessionKind::ReflexiveAccompaniment => "reflexive_accompaniment",
        SessionKind::CriticalDebate => "critical_debate",
        SessionKind::FieldWork => "field_work",
        SessionKind::Defence => "defence",
    }
}

/// A session kind for people (`field work`...).
fn kind_label(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Course => "course",
        SessionKind::ReflexiveAccompaniment => "reflexive accompaniment",
        SessionKind::CriticalDebate => "critical debate",
        SessionKind::FieldWork => "field work",
        SessionKind::Defence => "defence",
    }
}

/// An instant in UTC form (RFC 5545 3.3.5 form 2): `20251113T080000Z`.
fn utc_stamp(t: &DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The last Sunday of `month` in `year` (`None` for an impossible date).
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last = first_of_next.pred_opt()?;
    let back = i64::from(last.weekday().num_days_from_sunday());
    last.checked_sub_signed(Duration::days(back))
        .filter(|d| d.weekday() == Weekday::Sun)
}

/// The UTC offset, in seconds, that [`VTIMEZONE_EUROPE_PARIS`] gives at instant `t`: +7200
/// from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC, +3600
/// otherwise. `None` before 1997 (outside the component's rules) or for unrepresentable dates.
pub fn vtimezone_offset(t: &DateTime<Utc>) -> Option<i32> {
    let year = t.year();
    if year < VTIMEZONE_VALID_FROM_YEAR {
        return None;
    }
    let start = last_sunday(year, 3)?.and_hms_opt(1, 0, 0)?.and_utc();
    let end = last_sunday(year, 10)?.and_hms_opt(1, 0, 0)?.and_utc();
    Some(if *t >= start && *t < end { 7200 } else { 3600 })
}

/// `NAME;TZID=Europe/Paris:YYYYMMDDTHHMMSS` (RFC 5545 3.3.5 form 3) when the Paris wall time
/// names `t` exactly under [`VTIMEZONE_EUROPE_PARIS`] (same offset as the tz database, and
/// the first occurrence when the wall time repeats); `NAME:YYYYMMDDTHHMMSSZ` otherwise.
/// Seconds are whole (fractions dropped).
pub fn date_time_property(name: &str, t: &DateTime<Utc>) -> String {
    if !(VTIMEZONE_VALID_FROM_YEAR..=9998).contains(&t.year()) {
        // Also keeps the wall-time arithmetic below far from chrono's limits.
        return format!("{name}:{}", utc_stamp(t));
    }
    let local = t.with_timezone(&Paris);
    let tz_offset = local.offset().fix().local_minus_utc();
    let naive = local.naive_local();
    let first_occurrence = match Paris.from_local_datetime(&naive) {
        LocalResult::Single(_) => true,
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc) == *t,
        LocalResult::None => false,
    };
    if first_occurrence && vtimezone_offset(t) == Some(tz_offset) {
        format!("{name};TZID={TZID}:{}", naive.format("%Y%m%dT%H%M%S"))
    } else {
        format!("{name}:{}", utc_stamp(t))
    }
}

/// Escapes a TEXT value (RFC 5545 3.3.11): backslash, semicolon and comma get a backslash,
/// a line break becomes `\n` (CRLF and lone CR count as one break), other control characters
/// (except tab) are dropped.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line to `out`, folded (RFC 5545 3.1): no physical line longer than 75
/// octets (CRLF excluded), continuation lines start with one space, a UTF-8 sequence is never
/// split; ends with CRLF.
pub fn fold_into(line: &str, out: &mut String) {
    const LIMIT: usize = 75;
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > LIMIT {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testlog::scenario;

    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "")
    }

    #[test]
    fn sequence_counts_reschedules_and_the_cancellation() {
        let log = scenario();
        let sessions = sessions(&log.cohort);
        let by_id = |id: &str| sessions.iter().find(|s| s.session_id == id).unwrap();
        assert_eq!(sessions.len(), 5);
        assert_eq!(by_id("s1").sequence, 0);
        assert_eq!(by_id("s1").status, SessionStatus::Held);
        assert_eq!((by_id("s2").sequence, by_id("s2").reschedules), (2, 2));
        assert_eq!(by_id("s4").sequence, 1);
        assert_eq!(by_id("s4").status, SessionStatus::Cancelled);
        // Last change of s2: the second reschedule, recorded 90 s after its `at`.
        assert_eq!(utc_stamp(&by_id("s2").last_modified), "20251016T070130Z");
        // Sorted by current start: s2 moved after s3 and s4.
        let order: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(order, ["s1", "s3", "s4", "s2", "s5"]);
    }

    #[test]
    fn the_calendar_has_one_event_per_session_with_paris_wall_times() {
        let log = scenario();
        let ics = Calendar::from_streams("c1", &log.programme, &log.cohort).to_ics();
        let text = unfold(&ics);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert_eq!(text.matches("BEGIN:VEVENT\r\n").count(), 5);
        assert_eq!(text.matches("STATUS:CANCELLED\r\n").count(), 1);
        // Moved from 2025-10-20 (summer time) to 2025-11-13 (winter time): still 09:00 local.
        let s2 = text
            .split("BEGIN:VEVENT")
            .find(|e| e.contains("UID:s2@c1.fieldtrail"))
            .unwrap();
        assert!(
            s2.contains("DTSTART;TZID=Europe/Paris:20251113T090000\r\n"),
            "{s2}"
        );
        assert!(s2.contains("DTEND;TZID=Europe/Paris:20251113T170000\r\n"));
        assert!(s2.contains("SEQUENCE:2\r\n"));
        assert!(
            s2.contains("SUMMARY:Épistémologie\\, éthique\\; méthode\r\n"),
            "{s2}"
        );
        assert!(s2.contains("LAST-MODIFIED:20251016T070130Z\r\n"));
        assert!(s2.contains("DTSTAMP:20251016T070130Z\r\n"));
        let s4 = text
            .split("BEGIN:VEVENT")
            .find(|e| e.contains("UID:s4@c1.fieldtrail"))
            .unwrap();
        assert!(s4.contains("STATUS:CANCELLED\r\n"));
        assert!(s4.contains("SEQUENCE:1\r\n"));
        assert!(
            s4.contains("Cancelled: Intervenant malade\\, report\\; voir\\nle planning"),
            "{s4}"
        );
        // Every physical line is at most 75 octets and ends with CRLF.
        for physical in ics.split_terminator("\r\n") {
            assert!(physical.len() <= 75, "{physical:?}");
            assert!(!physical.contains('\n') && !physical.contains('\r'));
        }
        assert!(ics.contains("\r\n "), "long lines are folded");
        // Same events, same bytes.
        assert_eq!(
            ics,
            Calendar::from_streams("c1", &log.programme, &log.cohort).to_ics()
        );
    }

    #[test]
    fn a_cancelled_defence_stays_cancelled_and_the_next_is_due_for_the_same_learners() {
        let mut log = scenario();
        let jury = serde_json::json!([{"name": "A", "role": "professional"},
                                      {"name": "B", "role": "training_centre"}]);
        log.push(
            "field_study",
            "defence_cancelled",
            "2026-06-20T09:00:00+02:00",
            "staff:coordinator",
            serde_json::json!({
                "field_study_id": "fs1", "defence_id": "d2", "reason": "jury empêché"}),
        );
        log.push(
            "field_study",
            "defence_scheduled",
            "2026-06-21T09:00:00+02:00",
            "staff:coordinator",
            serde_json::json!({
                "field_study_id": "fs1", "defence_id": "d3", "at": "2026-07-02T14:00:00+02:00",
                "jury": jury}),
        );
        let calendar = Calendar::from_streams("c1", &log.programme, &log.cohort)
            .for_learner("l2", &log.field_study);
        let shown: Vec<(String, bool)> = calendar
            .defences
            .iter()
            .map(|d| (d.defence_id.clone(), d.cancelled_at.is_some()))
            .collect();
        assert_eq!(
            shown,
            [
                ("d1".into(), false),
                ("d2".into(), true),
                ("d3".into(), false)
            ],
            "deferred at d1, the last recorded defence: due at d2, then at d3"
        );
        let ics = unfold(&calendar.to_ics());
        let d2 = ics
            .split("BEGIN:VEVENT")
            .find(|e| e.contains("UID:d2@fs1.fieldtrail"))
            .expect("d2 is in the calendar");
        assert!(d2.contains("STATUS:CANCELLED\r\n"), "{d2}");
        assert!(d2.contains("SEQUENCE:1\r\n"), "{d2}");
        // Recorded 90 s after it happened (the test log's rule): 07:01:30 UTC.
        assert!(d2.contains("LAST-MODIFIED:20260620T070130Z\r\n"), "{d2}");
        assert!(d2.contains("CREATED:20260613T100130Z\r\n"), "{d2}");
    }

    #[test]
    fn a_learner_calendar_adds_the_defences_they_are_due_at() {
        let log = scenario();
        let calendar = |learner: &str| {
            Calendar::from_streams("c1", &log.programme, &log.cohort)
                .for_learner(learner, &log.field_study)
        };
        let ids =
            |c: Calendar| -> Vec<String> { c.defences.into_iter().map(|d| d.defence_id).collect() };
        assert_eq!(ids(calendar("l1")), ["d1"]);
        assert_eq!(
            ids(calendar("l2")),
            ["d1", "d2"],
            "deferred at d1: due at d2"
        );
        assert_eq!(ids(calendar("l3")), ["d1"]);
        assert_eq!(ids(calendar("l9")), Vec::<String>::new());
        let ics = unfold(&calendar("l2").to_ics());
        assert!(ics.contains("UID:d2@fs1.fieldtrail\r\n"));
        assert!(ics.contains("DTSTART;TZID=Europe/Paris:20260625T140000\r\n"));
        assert!(ics.contains("X-WR-CALNAME:Promotion 2025 (l2)\r\n"));
    }

    #[test]
    fn the_vtimezone_rules_match_the_tz_database_from_1997_to_2060() {
        let mut t = NaiveDate::from_ymd_opt(1997, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let end = NaiveDate::from_ymd_opt(2061, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        while t < end {
            let tz = t.with_timezone(&Paris).offset().fix().local_minus_utc();
            assert_eq!(vtimezone_offset(&t), Some(tz), "{t}");
            t += Duration::minutes(30);
        }
        assert_eq!(vtimezone_offset(&(end - Duration::days(365 * 70))), None);
    }

    #[test]
    fn instants_the_vtimezone_cannot_name_are_written_in_utc() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            date_time_property("DTSTART", &at("2025-10-26T02:30:00+02:00")),
            "DTSTART;TZID=Europe/Paris:20251026T023000",
            "first occurrence of a repeated wall time"
        );
        assert_eq!(
            date_time_property("DTSTART", &at("2025-10-26T02:30:00+01:00")),
            "DTSTART:20251026T013000Z",
            "second occurrence"
        );
        assert_eq!(
            date_time_property("DTSTART", &at("1990-06-01T09:00:00+02:00")),
            "DTSTART:19900601T070000Z"
        );
        assert_eq!(
            date_time_property("DTEND", &at("2026-03-29T03:00:00+02:00")),
            "DTEND;TZID=Europe/Paris:20260329T030000"
        );
    }

    #[test]
    fn text_is_escaped_and_lines_fold_on_character_boundaries() {
        assert_eq!(
            escape_text("a\\b;c,d\r\ne\rf\u{7}g"),
            "a\\\\b\\;c\\,d\\ne\\nfg"
        );
        let mut out = String::new();
        let long = format!("SUMMARY:{}", "é".repeat(100));
        fold_into(&long, &mut out);
        for physical in out.split_terminator("\r\n") {
            assert!(physical.len() <= 75);
            assert!(std::str::from_utf8(physical.as_bytes()).is_ok());
        }
        assert_eq!(unfold(&out), format!("{long}\r\n"));
        let mut empty = String::new();
        fold_into("", &mut empty);
        assert_eq!(empty, "\r\n");
    }

    #[test]
    fn no_input_makes_it_panic() {
        let calendar = Calendar::from_streams("nobody", &[], &[]).for_learner("x", &[]);
        let ics = calendar.to_ics();
        assert!(ics.contains("NAME:nobody (x)\r\n"));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 0);
        assert_eq!(last_sunday(2025, 12), NaiveDate::from_ymd_opt(2025, 12, 28));
        assert_eq!(last_sunday(i32::MAX, 12), None);
        let far = DateTime::<Utc>::MAX_UTC;
        assert!(date_time_property("DTSTART", &far).starts_with("DTSTART"));
    }
}
