//! Cohort trajectories for research: each learner's milestones in each cohort, and cohort
//! summaries, as a pure fold over the global log (no I/O, no clock).
//!
//! Two folds, both over [`RecordedEvent`]s in global-log order:
//!
//! - [`LogIndex`] (first pass): for each cohort, the global position of its last event (its
//!   own stream's and its field studies'), its number of enrolled learners and of events. It
//!   keeps one small entry per cohort and one per field study (a few dozen bytes each).
//! - [`TrajectoryFold`] (second pass): routes each event to its cohort's [`CohortFold`] and,
//!   when the event is the cohort's last one according to the index, finishes the cohort and
//!   hands back its [`CohortTrajectory`], dropping its state.
//!
//! **Memory bound.** The second pass holds the state of the cohorts whose events are still
//! to come *and* have begun: the cohorts "open" at the current point of the log (for cohorts
//! recorded one after the other, one at a time; for cohorts running in parallel, those
//! running together), plus the index's entry per cohort. A cohort's state is bounded by its
//! own size (learners × held sessions, and its milestones). So the memory of an export does not
//! grow with the number of cohorts beyond the index's few dozen bytes per cohort.
//! [`TrajectoryFold::peak_open`] tells how many cohorts were open at once.
//!
//! The milestones ([`MilestoneKind`]): enrolled; first and last session attended; the
//! attendance in each module at each month end; field study joined and left; the commission's
//! versions (negotiated, renegotiated with a reason category, agreed); hypotheses stated,
//! revised, abandoned; productions submitted; each defence attempt and its result; the
//! certificate; the DEIS credit; the withdrawal with a reason category. Events of a field
//! study go to the learners who are members of it when the event is recorded.

mod milestones;
pub mod reasons;
mod summary;
#[cfg(test)]
mod tests;

pub use milestones::{
    calendar_days, session_kind_name, CohortFold, CohortTrajectory, FieldStudyOutline, HalfDays,
    LearnerTrajectory, Milestone, MilestoneKind,
};
pub use summary::{median, CohortSummary, Distribution};

use crate::RecordedEvent;
use fieldtrail_domain::{AnyEvent, FieldStudyEvent, StreamKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What the first pass learns about one cohort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// Global position of the cohort's last event (its stream's or its field studies').
    pub last_position: i64,
    /// Learners enrolled (withdrawn ones included): the cohort's size.
    pub learners: u32,
    /// Events of the cohort (its stream and its field studies').
    pub events: u64,
}

/// The first pass: per cohort, where its events end in the log and how large it is; and the
/// reason categories kept by erasures ([`reasons::KeptCategories`]).
#[derive(Clone, Debug, Default)]
pub struct LogIndex {
    cohorts: BTreeMap<String, IndexEntry>,
    studies: HashMap<String, String>,
    kept: reasons::KeptCategories,
    events: u64,
}

/// The cohort an event belongs to: the stream id for a cohort's stream; for a field study's
/// stream, the cohort named when it was formed (looked up in `studies`, which it extends).
fn cohort_of<'a>(
    event: &'a RecordedEvent,
    studies: &'a HashMap<String, String>,
) -> Option<&'a str> {
    match event.stream_type.as_str() {
        StreamKind::COHORT => Some(event.stream_id.as_str()),
        StreamKind::FIELD_STUDY => match &event.event {
            AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed { cohort_id, .. }) => {
                Some(cohort_id.as_str())
            }
            _ => studies.get(&event.stream_id).map(String::as_str),
        },
        _ => None,
    }
}

impl LogIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes one event (global-log order).
    pub fn apply(&mut self, event: &RecordedEvent) {
        self.events = self.events.saturating_add(1);
        self.kept.apply(&event.event);
        let Some(cohort) = cohort_of(event, &self.studies).map(str::to_owned) else {
            return;
        };
        if let AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed { .. }) = &event.event {
            self.studies
                .entry(event.stream_id.clone())
                .or_insert_with(|| cohort.clone());
        }
        let entry = self.cohorts.entry(cohort).or_default();
        entry.last_position = event.position;
        entry.events = entry.events.saturating_add(1);
        if let AnyEvent::Cohort(fieldtrail_domain::CohortEvent::LearnerEnrolled { .. }) =
            &event.event
        {
            entry.learners = entry.learners.saturating_add(1);
        }
    }

    /// Every cohort seen, by id.
    pub fn cohorts(&self) -> &BTreeMap<String, IndexEntry> {
        &self.cohorts
    }

    /// Events seen (of any stream).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The reason categories kept by the erasures seen.
    pub fn kept_categories(&self) -> &reasons::KeptCategories {
        &self.kept
    }
}

/// A flushed cohort's entry in [`TrajectoryFold`]'s table of last positions.
const FLUSHED: i64 = i64::MIN;

/// The second pass: every wanted cohort's [`CohortFold`], each finished as soon as its last
/// event (per the [`LogIndex`]) has been applied.
#[derive(Clone, Debug, Default)]
pub struct TrajectoryFold {
    wanted: Option<BTreeSet<String>>,
    last: HashMap<String, i64>,
    open: BTreeMap<String, CohortFold>,
    studies: HashMap<String, String>,
    kept: Arc<reasons::KeptCategories>,
    peak_open: usize,
}

impl TrajectoryFold {
    /// A fold of the cohorts in `wanted` (every cohort when `None`) that finishes cohorts only
    /// at [`TrajectoryFold::finish`].
    pub fn new(wanted: Option<BTreeSet<String>>) -> Self {
        Self {
            wanted,
            ..Self::default()
        }
    }

    /// A fold that hands back each cohort as soon as the event at its index's last position
    /// has been applied, and reads an erased reason as the category its erasure kept.
    pub fn with_index(index: &LogIndex, wanted: Option<BTreeSet<String>>) -> Self {
        let last = index
            .cohorts()
            .iter()
            .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(*id)))
            .map(|(id, entry)| (id.clone(), entry.last_position))
            .collect();
        Self {
            wanted,
            last,
            kept: Arc::new(index.kept_categories().clone()),
            ..Self::default()
        }
    }

    /// Folds one event; returns the cohort it completed, if any.
    pub fn apply(&mut self, event: &RecordedEvent) -> Option<CohortTrajectory> {
        let cohort = cohort_of(event, &self.studies)?.to_owned();
        if let Some(wanted) = &self.wanted {
            if !wanted.contains(&cohort) {
                return None;
            }
        }
        if self.last.get(&cohort) == Some(&FLUSHED) {
            return None;
        }
        if let AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed { .. }) = &event.event {
            self.studies
                .entry(event.stream_id.clone())
                .or_insert_with(|| cohort.clone());
        }
        self.open
            .entry(cohort.clone())
            .or_insert_with(|| CohortFold::with_kept(&cohort, self.kept.clone()))
            .apply(event);
        self.peak_open = self.peak_open.max(self.open.len());
        if self.last.get(&cohort) != Some(&event.position) {
            return None;
        }
        self.last.insert(cohort.clone(), FLUSHED);
        let fold = self.open.remove(&cohort)?;
        for study in fold.field_study_ids() {
            self.studies.remove(study);
        }
        Some(fold.finish())
    }

    /// The cohorts still open (all of them for a fold without index), by cohort id.
    pub fn finish(self) -> Vec<CohortTrajectory> {
        self.open.into_values().map(CohortFold::finish).collect()
    }

    /// The most cohorts held open at once so far.
    pub fn peak_open(&self) -> usize {
        self.peak_open
    }

    /// Cohorts held open now.
    pub fn open(&self) -> usize {
        self.open.len()
    }
}
