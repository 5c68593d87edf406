//! The transcript of a learner in a cohort: attendance per module, field study, defences,
//! certificate.

use crate::timetable::PlannedModule;
use fieldtrail_domain::command::{AttendanceStatus, DefenceResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The transcript of a learner in a cohort (FORMAT.md, "Read models"). Document kind
/// `transcript`, keyed by `cohort_id/learner_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The cohort.
    pub cohort_id: String,
    /// The learner.
    pub learner_id: String,
    /// `active` or `withdrawn`.
    pub status: LearnerStatus,
    /// Every module of the cohort's programme, in programme order (zeros when nothing held).
    pub modules: Vec<TranscriptModule>,
    /// The field study the learner belongs to now, or last belonged to; `null` if none.
    pub field_study_id: Option<String>,
    /// The learner's defence results, in the order they were recorded; a rectified result
    /// replaces the one it corrects, in its place.
    pub defences: Vec<DefenceEntry>,
    /// Europe/Paris calendar date (`YYYY-MM-DD`) of the `occurred_at` of the award in force;
    /// `null` if none (never awarded, or revoked since).
    pub certificate_awarded_on: Option<String>,
    /// Whether the certificate in force was credited toward the learner's DEIS (`false` after
    /// a revocation).
    pub deis_credit: bool,
}

/// Whether a learner still follows the cohort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerStatus {
    /// Enrolled and not withdrawn.
    Active,
    /// Withdrew: counts nothing for sessions recorded afterwards.
    Withdrawn,
}

/// A learner's attendance in one module, in half-days.
///
/// `held_half_days` = `attended_half_days` + `excused_half_days` + `absent_half_days`: the
/// half-days of every held session of the module the learner was counted in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptModule {
    /// The module.
    pub module_id: String,
    /// Half-days of held sessions the learner was counted in.
    pub held_half_days: u32,
    /// Of which present.
    pub attended_half_days: u32,
    /// Of which excused.
    pub excused_half_days: u32,
    /// Of which absent (neither present nor excused).
    pub absent_half_days: u32,
}

/// One defence result of a learner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceEntry {
    /// The defence.
    pub defence_id: String,
    /// `passed`, `deferred` or `failed`.
    pub result: DefenceResult,
}

/// Half-day buckets of one module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Buckets {
    held: u32,
    present: u32,
    excused: u32,
    absent: u32,
}

impl Buckets {
    fn bucket(&mut self, status: AttendanceStatus) -> &mut u32 {
        match status {
            AttendanceStatus::Present => &mut self.present,
            AttendanceStatus::Excused => &mut self.excused,
            AttendanceStatus::Absent => &mut self.absent,
        }
    }
}

/// A learner as the fold keeps them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LearnerState {
    pub status: LearnerStatus,
    pub modules: BTreeMap<String, Buckets>,
    pub field_study_id: Option<String>,
    /// Each result with the field study of its defence (a rectification replaces it in place).
    pub defences: Vec<(String, DefenceEntry)>,
    pub certificate_awarded_on: Option<String>,
    pub deis_credit: bool,
}

impl LearnerState {
    /// A learner just enrolled.
    pub fn enrolled() -> Self {
        Self {
            status: LearnerStatus::Active,
            modules: BTreeMap::new(),
            field_study_id: None,
            defences: Vec::new(),
            certificate_awarded_on: None,
            deis_credit: false,
        }
    }

    /// Counts a held session: its half-days go to `held` and to the bucket of `status`.
    pub fn count(&mut self, module_id: &str, half_days: u32, status: AttendanceStatus) {
        let buckets = self.modules.entry(module_id.to_owned()).or_default();
        buckets.held = buckets.held.saturating_add(half_days);
        let bucket = buckets.bucket(status);
        *bucket = bucket.saturating_add(half_days);
    }

    /// Records a defence result (in the order recorded).
    pub fn defended(&mut self, field_study_id: &str, defence_id: &str, result: DefenceResult) {
        self.defences.push((
            field_study_id.to_owned(),
            DefenceEntry {
                defence_id: defence_id.to_owned(),
                result,
            },
        ));
    }

    /// Replaces the result recorded at a defence of a field study (a rectification).
    pub fn rectify(&mut self, field_study_id: &str, defence_id: &str, result: DefenceResult) {
        if let Some((_, entry)) = self
            .defences
            .iter_mut()
            .find(|(study, d)| study == field_study_id && d.defence_id == defence_id)
        {
            entry.result = result;
        }
    }

    /// Moves a held session's half-days from the bucket of `from` to the bucket of `to`.
    pub fn correct(
        &mut self,
        module_id: &str,
        half_days: u32,
        from: AttendanceStatus,
        to: AttendanceStatus,
    ) {
        if from == to {
            return;
        }
        let buckets = self.modules.entry(module_id.to_owned()).or_default();
        let old = buckets.bucket(from);
        *old = old.saturating_sub(half_days);
        let new = buckets.bucket(to);
        *new = new.saturating_add(half_days);
    }

    /// Builds the transcript document.
    pub fn render(
        &self,
        cohort_id: &str,
        learner_id: &str,
        modules: &[PlannedModule],
    ) -> Transcript {
        Transcript {
            cohort_id: cohort_id.to_owned(),
            learner_id: learner_id.to_owned(),
            status: self.status,
            modules: modules
                .iter()
                .map(|m| {
                    let b = self.modules.get(&m.module_id).copied().unwrap_or_default();
                    TranscriptModule {
                        module_id: m.module_id.clone(),
                        held_half_days: b.held,
                        attended_half_days: b.present,
                        excused_half_days: b.excused,
                        absent_half_days: b.absent,
                    }
                })
                .collect(),
            field_study_id: self.field_study_id.clone(),
            defences: self.defences.iter().map(|(_, d)| d.clone()).collect(),
            certificate_awarded_on: self.certificate_awarded_on.clone(),
            deis_credit: self.deis_credit,
        }
    }
}
