//! The read models split by cohort, for a projector that keeps only some of them in memory.
//!
//! Every document depends on the events of one cohort's **partition** (the cohort's stream,
//! the streams of the field studies formed in it, its programme's stream), never on another
//! cohort's: the fold of a partition's events alone gives that cohort's state exactly as the
//! fold of the whole log does. So a projector may forget a cohort (its state, its field
//! studies' histories) and fold it again from the journal when one of its events comes back;
//! [`ReadModels::absorb`] puts such a fold in place. A programme is defined once, before any
//! cohort opens on it (the cohort aggregate refuses an unknown programme): programmes are
//! small and never forgotten ([`ReadModels::forget_cohorts`] keeps them), and a projector that
//! did not fold a programme's definition itself folds it from the journal when a cohort opens
//! on it ([`Home::Cohort::opened_on`]).

use super::{cohort_of, field_study_of, ReadModels};
use crate::recorded::RecordedEvent;
use fieldtrail_domain::{AnyEvent, CohortEvent, FieldStudyEvent};

/// Where an event's fold lands: whose partition it needs in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home<'a> {
    /// Nothing to load: a programme's event (programmes stay in memory) or an erasure.
    Everywhere,
    /// The cohort `id`; `opened_on` when the event is its `cohort_opened` (nothing of the
    /// cohort can precede it, so there is nothing of it to load; only its programme).
    Cohort {
        /// The cohort id.
        id: &'a str,
        /// The programme, when this event opens the cohort.
        opened_on: Option<&'a str>,
    },
    /// The field study `id`, whose cohort the event names when it is the study's formation.
    FieldStudy {
        /// The field study id.
        id: &'a str,
        /// The cohort, when the event says it (`field_study_formed`).
        cohort: Option<&'a str>,
    },
}

impl ReadModels {
    /// Whose partition `event` folds into.
    pub fn home(event: &RecordedEvent) -> Home<'_> {
        match &event.event {
            AnyEvent::Programme(_) | AnyEvent::Subject(_) => Home::Everywhere,
            AnyEvent::Cohort(e) => Home::Cohort {
                id: cohort_of(e).as_str(),
                opened_on: match e {
                    CohortEvent::CohortOpened { programme_id, .. } => Some(programme_id.as_str()),
                    _ => None,
                },
            },
            AnyEvent::FieldStudy(e) => Home::FieldStudy {
                id: field_study_of(e).as_str(),
                cohort: match e {
                    FieldStudyEvent::FieldStudyFormed { cohort_id, .. } => Some(cohort_id.as_str()),
                    _ => None,
                },
            },
        }
    }

    /// The cohort of a field study held in memory, `None` when it is not held.
    pub fn cohort_of_field_study(&self, field_study_id: &str) -> Option<&str> {
        self.field_studies
            .get(field_study_id)
            .map(|h| h.cohort_id.as_str())
    }

    /// Takes in the fold `part` of some partitions' events (up to the same point of the log
    /// as this state): its programmes, cohorts and field studies that this state does not
    /// hold yet. What this state holds is kept as it is.
    pub fn absorb(&mut self, part: ReadModels) {
        for (id, modules) in part.programmes {
            self.programmes.entry(id).or_insert(modules);
        }
        for (id, cohort) in part.cohorts {
            self.cohorts.entry(id).or_insert(cohort);
        }
        for (id, history) in part.field_studies {
            self.field_studies.entry(id).or_insert(history);
        }
        self.last_position = match (self.last_position, part.last_position) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Forgets the cohort `cohort_id` and the histories of the field studies formed in it
    /// (programmes are kept). Their documents stay stored; folding the partition again
    /// gives the same state back.
    pub fn forget_cohort(&mut self, cohort_id: &str) {
        self.cohorts.remove(cohort_id);
        self.field_studies.retain(|_, h| h.cohort_id != cohort_id);
    }

    /// Forgets every cohort and field study; the programmes and the last position stay.
    pub fn forget_cohorts(&mut self) {
        self.cohorts.clear();
        self.field_studies.clear();
    }

    /// Whether the programme `programme_id` is held.
    pub fn holds_programme(&self, programme_id: &str) -> bool {
        self.programmes.contains_key(programme_id)
    }

    /// How many cohorts are held.
    pub fn cohort_count(&self) -> usize {
        self.cohorts.len()
    }
}
