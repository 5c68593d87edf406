//! The timetable of a cohort: its modules' budgets and its sessions.

use crate::time::{paris_local, utc};
use chrono::{DateTime, Utc};
use fieldtrail_domain::command::{AttendanceStatus, SessionKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The timetable of a cohort (FORMAT.md, "Read models"). Document kind `timetable`, keyed by
/// the cohort id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timetable {
    /// The cohort.
    pub cohort_id: String,
    /// Every module of the cohort's programme, in programme order.
    pub modules: Vec<TimetableModule>,
    /// Every session ever scheduled (cancelled ones included), sorted by `starts_at` (UTC)
    /// then `session_id`.
    pub sessions: Vec<TimetableSession>,
}

/// One module's budget and progress, in half-days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimetableModule {
    /// The module.
    pub module_id: String,
    /// The programme's budget for the module, in half-days.
    pub planned_half_days: u32,
    /// Sum of the half-days of the module's sessions that are not cancelled (held included).
    pub scheduled_half_days: u32,
    /// Sum of the half-days of the module's held sessions.
    pub held_half_days: u32,
}

/// One session of the timetable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimetableSession {
    /// The session.
    pub session_id: String,
    /// Its module.
    pub module_id: String,
    /// Its unit, `null` when none.
    pub unit_id: Option<String>,
    /// `course`, `reflexive_accompaniment`, `critical_debate`, `field_work` or `defence`.
    pub kind: SessionKind,
    /// Current start, RFC 3339 UTC (`2025-09-15T07:00:00Z`).
    pub starts_at: String,
    /// Current end, RFC 3339 UTC.
    pub ends_at: String,
    /// Current start as Europe/Paris wall time, no offset (`2025-09-15T09:00:00`).
    pub starts_at_local: String,
    /// 1 or 2 half-days.
    pub half_days: u32,
    /// `scheduled`, `held` or `cancelled`.
    pub status: SessionStatus,
    /// Who leads it.
    pub facilitator: String,
    /// Every earlier slot, oldest first.
    pub previous_slots: Vec<PreviousSlot>,
}

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// On the timetable, not yet held.
    Scheduled,
    /// Took place (attendance recorded).
    Held,
    /// Cancelled: counts for nothing.
    Cancelled,
}

/// A slot a session was moved away from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSlot {
    /// Its start, RFC 3339 UTC.
    pub starts_at: String,
    /// Its end, RFC 3339 UTC.
    pub ends_at: String,
    /// Why the session moved away from it.
    pub reason: String,
}

/// A session as the fold keeps it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SessionState {
    pub module_id: String,
    pub unit_id: Option<String>,
    pub kind: SessionKind,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub half_days: u32,
    pub status: SessionStatus,
    pub facilitator: String,
    pub previous_slots: Vec<PreviousSlot>,
    /// Once held: the module and half-days the `session_held` event counted.
    pub held: Option<(String, u32)>,
    /// Once held: each counted learner's current status (corrections included).
    pub attendance: BTreeMap<String, AttendanceStatus>,
}

impl SessionState {
    /// Moves the session to a new slot, keeping the old one.
    pub fn reschedule(&mut self, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, reason: &str) {
        self.previous_slots.push(PreviousSlot {
            starts_at: utc(&self.starts_at),
            ends_at: utc(&self.ends_at),
            reason: reason.to_owned(),
        });
        self.starts_at = starts_at;
        self.ends_at = ends_at;
    }

    fn render(&self, session_id: &str) -> TimetableSession {
        TimetableSession {
            session_id: session_id.to_owned(),
            module_id: self.module_id.clone(),
            unit_id: self.unit_id.clone(),
            kind: self.kind,
            starts_at: utc(&self.starts_at),
            ends_at: utc(&self.ends_at),
            starts_at_local: paris_local(&self.starts_at),
            half_days: self.half_days,
            status: self.status,
            facilitator: self.facilitator.clone(),
            previous_slots: self.previous_slots.clone(),
        }
    }
}

/// A programme module's id and budget in half-days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlannedModule {
    pub module_id: String,
    pub half_days: u32,
}

/// Builds the timetable of a cohort from its sessions and its programme's modules.
pub(crate) fn render(
    cohort_id: &str,
    modules: &[PlannedModule],
    sessions: &BTreeMap<String, SessionState>,
) -> Timetable {
    let mut scheduled: BTreeMap<&str, u32> = BTreeMap::new();
    let mut held: BTreeMap<&str, u32> = BTreeMap::new();
    for session in sessions.values() {
        if session.status != SessionStatus::Cancelled {
            let sum = scheduled.entry(session.module_id.as_str()).or_default();
            *sum = sum.saturating_add(session.half_days);
        }
        if let Some((module_id, half_days)) = &session.held {
            let sum = held.entry(module_id.as_str()).or_default();
            *sum = sum.saturating_add(*half_days);
        }
    }
    let modules = modules
        .iter()
        .map(|m| TimetableModule {
            module_id: m.module_id.clone(),
            planned_half_days: m.half_days,
            scheduled_half_days: scheduled.get(m.module_id.as_str()).copied().unwrap_or(0),
            held_half_days: held.get(m.module_id.as_str()).copied().unwrap_or(0),
        })
        .collect();
    let mut ordered: Vec<(&String, &SessionState)> = sessions.iter().collect();
    ordered
        .sort_by(|(a_id, a), (b_id, b)| a.starts_at.cmp(&b.starts_at).then_with(|| a_id.cmp(b_id)));
    Timetable {
        cohort_id: cohort_id.to_owned(),
        modules,
        sessions: ordered.into_iter().map(|(id, s)| s.render(id)).collect(),
    }
}
