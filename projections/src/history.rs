//! The evaluation history of a field study: the tentative path, nothing overwritten.

use crate::recorded::RecordedEvent;
use crate::summary::summary;
use crate::time::utc;
use fieldtrail_domain::FieldStudyEvent;
use serde::{Deserialize, Serialize};

/// The evaluation history of a field study (FORMAT.md, "Read models"). Document kind
/// `history`, keyed by the field study id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The field study.
    pub field_study_id: String,
    /// Its cohort.
    pub cohort_id: String,
    /// The current members (learner ids), in the order the last formation or change gave.
    pub members: Vec<String>,
    /// The commission and every version of it.
    pub commission: Commission,
    /// Every hypothesis, in the order they were stated.
    pub hypotheses: Vec<HypothesisTrail>,
    /// Every version of the written production, in the order submitted.
    pub productions: Vec<Production>,
    /// Every event of the field study's stream, in global-log order.
    pub entries: Vec<HistoryEntry>,
}

/// The commission of a field study.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commission {
    /// The latest version negotiated, `null` before the first.
    pub latest_version: Option<u32>,
    /// The version last agreed, `null` if none was.
    pub agreed_version: Option<u32>,
    /// Every version, in the order negotiated (version 1 first).
    pub versions: Vec<CommissionVersion>,
}

/// One version of a commission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionVersion {
    /// 1, 2, ...
    pub version: u32,
    /// What is asked.
    pub brief: String,
    /// Why it was renegotiated; `null` for version 1.
    pub reason: Option<String>,
    /// When it was negotiated, RFC 3339 UTC.
    pub occurred_at: String,
}

/// A hypothesis and every text it had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypothesisTrail {
    /// The hypothesis.
    pub hypothesis_id: String,
    /// `open` or `abandoned`.
    pub status: HypothesisStatus,
    /// Every text, first to last.
    pub texts: Vec<String>,
}

/// Whether a hypothesis is still worked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisStatus {
    /// Stated (and possibly revised), not abandoned.
    Open,
    /// Abandoned.
    Abandoned,
}

/// One version of the written production.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Production {
    /// 1, 2, ...
    pub version: u32,
    /// Title.
    pub title: String,
}

/// One event of the field study's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its place in the global log.
    pub position: i64,
    /// Its event type, e.g. `commission_renegotiated`.
    pub event: String,
    /// When it happened in the world, RFC 3339 UTC.
    pub occurred_at: String,
    /// When the server recorded it, RFC 3339 UTC.
    pub recorded_at: String,
    /// Who issued it, `role:name`.
    pub actor: String,
    /// A short sentence built from the payload.
    pub summary: String,
}

impl History {
    /// A history just formed.
    pub(crate) fn formed(field_study_id: &str, cohort_id: &str, members: Vec<String>) -> Self {
        Self {
            field_study_id: field_study_id.to_owned(),
            cohort_id: cohort_id.to_owned(),
            members,
            commission: Commission::default(),
            hypotheses: Vec::new(),
            productions: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Applies one event of this field study's stream (`field_study_formed` included: it
    /// only adds its entry).
    pub(crate) fn apply(&mut self, event: &FieldStudyEvent, recorded: &RecordedEvent) {
        use FieldStudyEvent as E;
        match event {
            E::MembersChanged { members, .. } => {
                self.members = members.iter().map(ToString::to_string).collect();
            }
            E::CommissionNegotiated { version, brief, .. } => {
                self.add_version(*version, brief, None, recorded)
            }
            E::CommissionRenegotiated {
                version,
                brief,
                reason,
                ..
            } => {
                self.add_version(*version, brief, Some(reason.as_str().to_owned()), recorded);
            }
            E::CommissionAgreed { version, .. } => self.commission.agreed_version = Some(*version),
            E::HypothesisStated {
                hypothesis_id,
                text,
                ..
            } => {
                if self.hypothesis(hypothesis_id.as_str()).is_none() {
                    self.hypotheses.push(HypothesisTrail {
                        hypothesis_id: hypothesis_id.to_string(),
                        status: HypothesisStatus::Open,
                        texts: vec![text.clone()],
                    });
                }
            }
            E::HypothesisRevised {
                hypothesis_id,
                text,
                ..
            } => {
                if let Some(h) = self.hypothesis(hypothesis_id.as_str()) {
                    h.texts.push(text.clone());
                }
            }
            E::HypothesisAbandoned { hypothesis_id, .. } => {
                if let Some(h) = self.hypothesis(hypothesis_id.as_str()) {
                    h.status = HypothesisStatus::Abandoned;
                }
            }
            E::ProductionSubmitted { version, title, .. } => {
                self.productions.push(Production {
                    version: *version,
                    title: title.clone(),
                });
            }
            E::FieldStudyFormed { .. }
            | E::InterventionLogged { .. }
            | E::ReflexiveNoteRecorded { .. }
            | E::DefenceScheduled { .. }
            | E::DefencePassed { .. }
            | E::DefenceDeferred { .. }
            | E::DefenceFailed { .. } => {}
        }
        self.entries.push(HistoryEntry {
            position: recorded.position,
            event: recorded.event_type.clone(),
            occurred_at: utc(&recorded.occurred_at),
            recorded_at: utc(&recorded.recorded_at),
            actor: recorded.actor.clone(),
            summary: summary(event),
        });
    }

    fn add_version(
        &mut self,
        version: u32,
        brief: &str,
        reason: Option<String>,
        recorded: &RecordedEvent,
    ) {
        self.commission.latest_version = Some(
            self.commission
                .latest_version
                .map_or(version, |v| v.max(version)),
        );
        self.commission.versions.push(CommissionVersion {
            version,
            brief: brief.to_owned(),
            reason,
            occurred_at: utc(&recorded.occurred_at),
        });
    }

    fn hypothesis(&mut self, hypothesis_id: &str) -> Option<&mut HypothesisTrail> {
        self.hypotheses
            .iter_mut()
            .find(|h| h.hypothesis_id == hypothesis_id)
    }
}
