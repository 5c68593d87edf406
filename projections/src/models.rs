//! [`ReadModels`]: the whole projection state, its fold and its documents.

use crate::cohort::CohortState;
use crate::complaints::ComplaintsRegister;
use crate::history::History;
use crate::recorded::RecordedEvent;
use crate::timetable::{self, PlannedModule, Timetable};
use crate::transcript::Transcript;
use fieldtrail_domain::{AnyEvent, CohortEvent, FieldStudyEvent, Id, ProgrammeEvent};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

mod partition;
pub use partition::Home;

/// The kinds of document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocKind {
    /// A cohort's [`Timetable`]; key: the cohort id.
    Timetable,
    /// A learner's [`Transcript`]; key: `cohort_id/learner_id`.
    Transcript,
    /// A field study's [`History`]; key: the field study id.
    History,
    /// A cohort's [`ComplaintsRegister`]; key: the cohort id. Stored once the cohort has a
    /// complaint; [`ReadModels::document`] gives an empty register for a cohort without one.
    Complaints,
}

impl DocKind {
    /// `timetable`, `transcript`, `history` or `complaints`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timetable => "timetable",
            Self::Transcript => "transcript",
            Self::History => "history",
            Self::Complaints => "complaints",
        }
    }

    /// The kind named `name` (as given by [`DocKind::as_str`]), if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "timetable" => Some(Self::Timetable),
            "transcript" => Some(Self::Transcript),
            "history" => Some(Self::History),
            "complaints" => Some(Self::Complaints),
            _ => None,
        }
    }
}

/// Names one document: its kind and its key (the cohort id, `cohort_id/learner_id`, or the
/// field study id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocKey {
    /// The document's kind.
    pub kind: DocKind,
    /// The document's key within its kind.
    pub key: String,
}

impl DocKey {
    /// The timetable of `cohort_id`.
    pub fn timetable(cohort_id: &str) -> Self {
        Self {
            kind: DocKind::Timetable,
            key: cohort_id.to_owned(),
        }
    }

    /// The transcript of `learner_id` in `cohort_id` (key `cohort_id/learner_id`).
    pub fn transcript(cohort_id: &str, learner_id: &str) -> Self {
        Self {
            kind: DocKind::Transcript,
            key: format!("{cohort_id}/{learner_id}"),
        }
    }

    /// The history of `field_study_id`.
    pub fn history(field_study_id: &str) -> Self {
        Self {
            kind: DocKind::History,
            key: field_study_id.to_owned(),
        }
    }

    /// The complaints register of `cohort_id`.
    pub fn complaints(cohort_id: &str) -> Self {
        Self {
            kind: DocKind::Complaints,
            key: cohort_id.to_owned(),
        }
    }
}

/// The whole in-memory state of the read models: a pure fold over the global log.
///
/// Feed it every event in global-log order, once, with [`ReadModels::apply`]; read documents
/// with [`ReadModels::timetable`], [`ReadModels::transcript`], [`ReadModels::history`],
/// [`ReadModels::document`] or [`ReadModels::documents`]. Folding the same events, at once or
/// in several runs, gives the same state and the same documents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadModels {
    last_position: Option<i64>,
    programmes: BTreeMap<String, Vec<PlannedModule>>,
    cohorts: BTreeMap<String, CohortState>,
    field_studies: BTreeMap<String, History>,
}

fn to_json<T: Serialize>(doc: &T) -> Value {
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

impl ReadModels {
    /// An empty state: nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fold of `events` from an empty state (events in global-log order).
    pub fn fold<'a, I: IntoIterator<Item = &'a RecordedEvent>>(events: I) -> Self {
        let mut models = Self::new();
        for event in events {
            models.apply(event);
        }
        models
    }

    /// The highest global position applied so far, `None` before the first event.
    pub fn last_position(&self) -> Option<i64> {
        self.last_position
    }

    /// Applies one event (the next one in global-log order) and returns the documents it may
    /// have changed (those that exist after it; see [`ReadModels::touched`]). An event about
    /// something unknown changes nothing but `last_position`.
    pub fn apply(&mut self, e: &RecordedEvent) -> Vec<DocKey> {
        self.last_position = Some(
            self.last_position
                .map_or(e.position, |last| last.max(e.position)),
        );
        match &e.event {
            AnyEvent::Programme(ProgrammeEvent::ProgrammeDefined {
                programme_id,
                modules,
                ..
            }) => {
                self.programmes
                    .entry(programme_id.to_string())
                    .or_insert_with(|| {
                        modules
                            .iter()
                            .map(|m| PlannedModule {
                                module_id: m.module_id.to_string(),
                                half_days: m.half_days,
                            })
                            .collect()
                    });
            }
            AnyEvent::Cohort(CohortEvent::CohortOpened {
                cohort_id,
                programme_id,
                ..
            }) => {
                self.cohorts
                    .entry(cohort_id.to_string())
                    .or_insert_with(|| CohortState::opened(programme_id));
            }
            AnyEvent::Cohort(event) => {
                if let Some(cohort) = self.cohorts.get_mut(cohort_of(event).as_str()) {
                    cohort.apply(event, &e.occurred_at);
                }
            }
            AnyEvent::FieldStudy(event) => self.apply_field_study(event, e),
            // An erasure is not folded: the projector rebuilds every document from the
            // journal, whose erased fields now read as the marker (`runner`).
            AnyEvent::Subject(_) => {}
        }
        self.touched(e)
    }

    fn apply_field_study(&mut self, event: &FieldStudyEvent, e: &RecordedEvent) {
        use FieldStudyEvent as E;
        let field_study_id = field_study_of(event).to_string();
        if let E::FieldStudyFormed {
            cohort_id, members, ..
        } = event
        {
            if self.field_studies.contains_key(&field_study_id) {
                return;
            }
            let members = members.iter().map(ToString::to_string).collect();
            self.field_studies.insert(
                field_study_id.clone(),
                History::formed(&field_study_id, cohort_id.as_str(), members),
            );
        }
        let Some(history) = self.field_studies.get_mut(&field_study_id) else {
            return;
        };
        history.apply(event, e);
        let Some(cohort) = self.cohorts.get_mut(&history.cohort_id) else {
            return;
        };
        let joined: &[Id] = match event {
            E::FieldStudyFormed { members, .. } => members,
            E::MembersChanged { join, .. } => join,
            _ => &[],
        };
        for learner_id in joined {
            if let Some(learner) = cohort.learners.get_mut(learner_id.as_str()) {
                learner.field_study_id = Some(field_study_id.clone());
            }
        }
        if let Some((defence_id, learner_id, result)) = event.defence_result() {
            if let Some(learner) = cohort.learners.get_mut(learner_id.as_str()) {
                learner.defended(&field_study_id, defence_id.as_str(), result);
            }
        }
        if let E::DefenceResultRectified {
            defence_id,
            learner_id,
            result,
            ..
        } = event
        {
            if let Some(learner) = cohort.learners.get_mut(learner_id.as_str()) {
                learner.rectify(&field_study_id, defence_id.as_str(), *result);
            }
        }
    }

    /// The documents that `e` may have changed, among those that exist now. Call it after
    /// applying `e`; [`ReadModels::apply`] returns the same list. Sorted, without duplicates.
    pub fn touched(&self, e: &RecordedEvent) -> Vec<DocKey> {
        let mut keys = Vec::new();
        match &e.event {
            AnyEvent::Programme(ProgrammeEvent::ProgrammeDefined { programme_id, .. }) => {
                for (cohort_id, cohort) in &self.cohorts {
                    if cohort.programme_id == programme_id.as_str() {
                        keys.push(DocKey::timetable(cohort_id));
                        keys.extend(
                            cohort
                                .learners
                                .keys()
                                .map(|l| DocKey::transcript(cohort_id, l)),
                        );
                    }
                }
            }
            AnyEvent::Cohort(event) => self.touched_by_cohort_event(event, &mut keys),
            AnyEvent::FieldStudy(event) => {
                use FieldStudyEvent as E;
                let field_study_id = field_study_of(event);
                keys.push(DocKey::history(field_study_id.as_str()));
                if let Some(history) = self.field_studies.get(field_study_id.as_str()) {
                    let learners: Vec<&Id> = match event {
                        E::FieldStudyFormed { members, .. } => members.iter().collect(),
                        E::MembersChanged { join, leave, .. } => join.iter().chain(leave).collect(),
                        E::DefenceResultRectified { learner_id, .. } => vec![learner_id],
                        _ => event
                            .defence_result()
                            .map(|(_, learner_id, _)| learner_id)
                            .into_iter()
                            .collect(),
                    };
                    keys.extend(
                        learners
                            .into_iter()
                            .map(|l| DocKey::transcript(&history.cohort_id, l.as_str())),
                    );
                }
            }
            AnyEvent::Subject(_) => {}
        }
        keys.retain(|key| self.exists(key));
        keys.sort();
        keys.dedup();
        keys
    }

    fn touched_by_cohort_event(&self, event: &CohortEvent, keys: &mut Vec<DocKey>) {
        use CohortEvent as E;
        let cohort_id = cohort_of(event).as_str();
        match event {
            E::CohortOpened { .. }
            | E::SessionScheduled { .. }
            | E::SessionRescheduled { .. }
            | E::SessionCancelled { .. } => keys.push(DocKey::timetable(cohort_id)),
            E::SessionHeld { session_id, .. } => {
                keys.push(DocKey::timetable(cohort_id));
                if let Some(cohort) = self.cohorts.get(cohort_id) {
                    keys.extend(
                        cohort
                            .counted_in(session_id)
                            .iter()
                            .map(|l| DocKey::transcript(cohort_id, l)),
                    );
                }
            }
            E::LearnerEnrolled { learner_id, .. }
            | E::LearnerWithdrew { learner_id, .. }
            | E::AttendanceCorrected { learner_id, .. }
            | E::CertificateAwarded { learner_id, .. }
            | E::DeisCreditRecorded { learner_id, .. }
            | E::CertificateRevoked { learner_id, .. } => {
                keys.push(DocKey::transcript(cohort_id, learner_id.as_str()))
            }
            E::ComplaintFiled { .. } | E::ComplaintAnswered { .. } => {
                keys.push(DocKey::complaints(cohort_id))
            }
            E::CohortClosed { .. } => {}
        }
    }

    /// Whether the document named by `key` exists.
    pub fn exists(&self, key: &DocKey) -> bool {
        match key.kind {
            DocKind::Timetable => self.cohorts.contains_key(&key.key),
            DocKind::Transcript => key
                .key
                .split_once('/')
                .and_then(|(c, l)| {
                    self.cohorts
                        .get(c)
                        .map(|cohort| cohort.learners.contains_key(l))
                })
                .unwrap_or(false),
            DocKind::History => self.field_studies.contains_key(&key.key),
            DocKind::Complaints => self
                .cohorts
                .get(&key.key)
                .is_some_and(|c| !c.complaints.is_empty()),
        }
    }

    fn modules_of(&self, cohort: &CohortState) -> &[PlannedModule] {
        self.programmes
            .get(&cohort.programme_id)
            .map_or(&[], Vec::as_slice)
    }

    /// The timetable of a cohort, `None` for a cohort not opened.
    pub fn timetable(&self, cohort_id: &str) -> Option<Timetable> {
        let cohort = self.cohorts.get(cohort_id)?;
        Some(timetable::render(
            cohort_id,
            self.modules_of(cohort),
            &cohort.sessions,
        ))
    }

    /// The transcript of a learner in a cohort, `None` unless the learner enrolled in it.
    pub fn transcript(&self, cohort_id: &str, learner_id: &str) -> Option<Transcript> {
        let cohort = self.cohorts.get(cohort_id)?;
        let learner = cohort.learners.get(learner_id)?;
        Some(learner.render(cohort_id, learner_id, self.modules_of(cohort)))
    }

    /// The evaluation history of a field study, `None` for a field study not formed.
    pub fn history(&self, field_study_id: &str) -> Option<History> {
        self.field_studies.get(field_study_id).cloned()
    }

    /// The complaints register of a cohort (empty while it has no complaint), `None` for a
    /// cohort not opened.
    pub fn complaints(&self, cohort_id: &str) -> Option<ComplaintsRegister> {
        Some(self.cohorts.get(cohort_id)?.complaints.render(cohort_id))
    }

    /// The document named by `key` as JSON, `None` if it does not exist (a complaints
    /// register exists as soon as its cohort does).
    pub fn document(&self, key: &DocKey) -> Option<Value> {
        match key.kind {
            DocKind::Timetable => self.timetable(&key.key).map(|d| to_json(&d)),
            DocKind::Transcript => {
                let (cohort_id, learner_id) = key.key.split_once('/')?;
                self.transcript(cohort_id, learner_id).map(|d| to_json(&d))
            }
            DocKind::History => self.history(&key.key).map(|d| to_json(&d)),
            DocKind::Complaints => self.complaints(&key.key).map(|d| to_json(&d)),
        }
    }

    /// Every document as `(kind, key, json)`: timetables, then transcripts, then histories,
    /// then the complaints registers of the cohorts that have a complaint, each by key.
    pub fn documents(&self) -> Vec<(&'static str, String, Value)> {
        let mut docs = Vec::new();
        for cohort_id in self.cohorts.keys() {
            if let Some(d) = self.timetable(cohort_id) {
                docs.push((DocKind::Timetable.as_str(), cohort_id.clone(), to_json(&d)));
            }
        }
        for (cohort_id, cohort) in &self.cohorts {
            for learner_id in cohort.learners.keys() {
                if let Some(d) = self.transcript(cohort_id, learner_id) {
                    docs.push((
                        DocKind::Transcript.as_str(),
                        format!("{cohort_id}/{learner_id}"),
                        to_json(&d),
                    ));
                }
            }
        }
        for (field_study_id, history) in &self.field_studies {
            docs.push((
                DocKind::History.as_str(),
                field_study_id.clone(),
                to_json(history),
            ));
        }
        for (cohort_id, cohort) in &self.cohorts {
            if !cohort.complaints.is_empty() {
                docs.push((
                    DocKind::Complaints.as_str(),
                    cohort_id.clone(),
                    to_json(&cohort.complaints.render(cohort_id)),
                ));
            }
        }
        docs
    }
}

fn cohort_of(event: &CohortEvent) -> &Id {
    use CohortEvent as E;
    match event {
        E::CohortOpened { cohort_id, .. }
        | E::LearnerEnrolled { cohort_id, .. }
        | E::LearnerWithdrew { cohort_id, .. }
        | E::SessionScheduled { cohort_id, .. }
        | E::SessionRescheduled { cohort_id, .. }
        | E::SessionCancelled { cohort_id, .. }
        | E::SessionHeld { cohort_id, .. }
        | E::AttendanceCorrected { cohort_id, .. }
        | E::CohortClosed { cohort_id }
        | E::CertificateAwarded { cohort_id, .. }
        | E::DeisCreditRecorded { cohort_id, .. }
        | E::CertificateRevoked { cohort_id, .. }
        | E::ComplaintFiled { cohort_id, .. }
        | E::ComplaintAnswered { cohort_id, .. } => cohort_id,
    }
}

fn field_study_of(event: &FieldStudyEvent) -> &Id {
    use FieldStudyEvent as E;
    match event {
        E::FieldStudyFormed { field_study_id, .. }
        | E::MembersChanged { field_study_id, .. }
        | E::CommissionNegotiated { field_study_id, .. }
        | E::CommissionRenegotiated { field_study_id, .. }
        | E::CommissionAgreed { field_study_id, .. }
        | E::HypothesisStated { field_study_id, .. }
        | E::HypothesisRevised { field_study_id, .. }
        | E::HypothesisAbandoned { field_study_id, .. }
        | E::InterventionLogged { field_study_id, .. }
        | E::ReflexiveNoteRecorded { field_study_id, .. }
        | E::ProductionSubmitted { field_study_id, .. }
        | E::DefenceScheduled { field_study_id, .. }
        | E::DefencePassed { field_study_id, .. }
        | E::DefenceDeferred { field_study_id, .. }
        | E::DefenceFailed { field_study_id, .. }
        | E::JuryMemberRecused { field_study_id, .. }
        | E::JuryMemberAppointed { field_study_id, .. }
        | E::FieldStudySplit { field_study_id, .. }
        | E::DefenceResultRectified { field_study_id, .. }
        | E::DefenceCancelled { field_study_id, .. } => field_study_id,
    }
}
