//! The evaluation history of a field study: the tentative path, nothing overwritten.

use crate::recorded::RecordedEvent;
use crate::summary::summary;
use crate::time::utc;
use fieldtrail_domain::FieldStudyEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The evaluation history of a field study (FORMAT.md, "Read models"). Document kind
/// `history`, keyed by the field study id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The field study.
    pub field_study_id: String,
    /// Its cohort.
    pub cohort_id: String,
    /// The current members (learner ids), in the order the last formation, change or split
    /// gave.
    pub members: Vec<String>,
    /// The field study this one split from (absent unless it came from a split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_from: Option<String>,
    /// Where members went when this study split, in order (absent unless it split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split_into: Vec<SplitInto>,
    /// The commission and every version of it.
    pub commission: Commission,
    /// Every hypothesis, in the order they were stated.
    pub hypotheses: Vec<HypothesisTrail>,
    /// Every version of the written production, in the order submitted.
    pub productions: Vec<Production>,
    /// Every event of the field study's stream, in global-log order.
    pub entries: Vec<HistoryEntry>,
}

/// A split of a field study: who left, to form which study, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitInto {
    /// The new field study.
    pub field_study_id: String,
    /// Its members (who left this study).
    pub members: Vec<String>,
    /// When the split happened, RFC 3339 UTC.
    pub occurred_at: String,
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
    /// For a revision of the path (commission, hypothesis, membership, production, defence
    /// result): the value it replaced (`null` for a first version, a first statement or
    /// another event). Shapes: commission `{"version", "brief", "deliverables"[,
    /// "negotiated_with"]}` or `{"agreed_version"}`; hypothesis `{"hypothesis_id", "status",
    /// "text"}`; membership (change or split) `{"members"}`; production `{"version", "title",
    /// "pages"}`; rectified result `{"defence_id", "learner_id", "result"}`.
    #[serde(default)]
    pub previous: Option<Value>,
    /// For a revision (or a first version): the value from then on, same shapes as
    /// `previous`; `null` for other events.
    #[serde(default)]
    pub new: Option<Value>,
    /// Why, when the event gives a reason (renegotiation, revision, abandonment, member
    /// change, split, recusal, rectification); `null` otherwise.
    #[serde(default)]
    pub reason: Option<String>,
}

impl History {
    /// A history just formed.
    pub(crate) fn formed(field_study_id: &str, cohort_id: &str, members: Vec<String>) -> Self {
        Self {
            field_study_id: field_study_id.to_owned(),
            cohort_id: cohort_id.to_owned(),
            members,
            split_from: None,
            split_into: Vec::new(),
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
        let (previous, new, reason) = self.revision(event);
        match event {
            E::MembersChanged { members, .. } => {
                self.members = members.iter().map(ToString::to_string).collect();
            }
            E::FieldStudyFormed { split_from, .. } => {
                self.split_from = split_from.as_ref().map(ToString::to_string);
            }
            E::FieldStudySplit {
                new_field_study_id,
                members,
                remaining,
                ..
            } => {
                self.members = remaining.iter().map(ToString::to_string).collect();
                self.split_into.push(SplitInto {
                    field_study_id: new_field_study_id.to_string(),
                    members: members.iter().map(ToString::to_string).collect(),
                    occurred_at: utc(&recorded.occurred_at),
                });
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
            E::InterventionLogged { .. }
            | E::ReflexiveNoteRecorded { .. }
            | E::DefenceScheduled { .. }
            | E::DefencePassed { .. }
            | E::DefenceDeferred { .. }
            | E::DefenceFailed { .. }
            | E::JuryMemberRecused { .. }
            | E::JuryMemberAppointed { .. }
            | E::DefenceResultRectified { .. }
            | E::DefenceCancelled { .. } => {}
        }
        self.entries.push(HistoryEntry {
            position: recorded.position,
            event: recorded.event_type.clone(),
            occurred_at: utc(&recorded.occurred_at),
            recorded_at: utc(&recorded.recorded_at),
            actor: recorded.actor.clone(),
            summary: summary(event),
            previous,
            new,
            reason,
        });
    }

    /// The `new` value of the latest entry that `matches`.
    fn last_new(&self, matches: impl Fn(&HistoryEntry) -> bool) -> Option<Value> {
        self.entries
            .iter()
            .rev()
            .find(|e| matches(e))
            .and_then(|e| e.new.clone())
    }

    /// `(previous, new, reason)` of an entry, computed before `event` is applied.
    fn revision(&self, event: &FieldStudyEvent) -> (Option<Value>, Option<Value>, Option<String>) {
        use FieldStudyEvent as E;
        let is_commission = |e: &HistoryEntry| {
            matches!(
                e.event.as_str(),
                "commission_negotiated" | "commission_renegotiated"
            )
        };
        fn hypothesis(id: &str) -> impl Fn(&HistoryEntry) -> bool + '_ {
            move |e: &HistoryEntry| {
                e.event.starts_with("hypothesis_")
                    && e.new.as_ref().is_some_and(|n| n["hypothesis_id"] == id)
            }
        }
        match event {
            E::FieldStudyFormed { members, .. } => (None, Some(json!({"members": members})), None),
            E::MembersChanged {
                members, reason, ..
            } => (
                Some(json!({"members": self.members})),
                Some(json!({"members": members})),
                Some(reason.as_str().to_owned()),
            ),
            E::CommissionNegotiated {
                version,
                brief,
                deliverables,
                negotiated_with,
                ..
            } => (
                self.last_new(is_commission),
                Some(
                    json!({"version": version, "brief": brief, "deliverables": deliverables,
                            "negotiated_with": negotiated_with}),
                ),
                None,
            ),
            E::CommissionRenegotiated {
                version,
                brief,
                deliverables,
                reason,
                ..
            } => (
                self.last_new(is_commission),
                Some(json!({"version": version, "brief": brief, "deliverables": deliverables})),
                Some(reason.as_str().to_owned()),
            ),
            E::CommissionAgreed { version, .. } => (
                Some(json!({"agreed_version": self.commission.agreed_version})),
                Some(json!({"agreed_version": version})),
                None,
            ),
            E::HypothesisStated {
                hypothesis_id,
                text,
                ..
            } => (
                self.last_new(hypothesis(hypothesis_id.as_str())),
                Some(json!({"hypothesis_id": hypothesis_id, "status": "open", "text": text})),
                None,
            ),
            E::HypothesisRevised {
                hypothesis_id,
                text,
                reason,
                ..
            } => {
                let previous = self.last_new(hypothesis(hypothesis_id.as_str()));
                let status = previous
                    .as_ref()
                    .map_or(Value::from("open"), |p| p["status"].clone());
                (
                    previous,
                    Some(json!({"hypothesis_id": hypothesis_id, "status": status, "text": text})),
                    Some(reason.as_str().to_owned()),
                )
            }
            E::HypothesisAbandoned {
                hypothesis_id,
                reason,
                ..
            } => {
                let previous = self.last_new(hypothesis(hypothesis_id.as_str()));
                let text = previous.as_ref().map_or(Value::Null, |p| p["text"].clone());
                (
                    previous,
                    Some(
                        json!({"hypothesis_id": hypothesis_id, "status": "abandoned", "text": text}),
                    ),
                    Some(reason.as_str().to_owned()),
                )
            }
            E::ProductionSubmitted {
                version,
                title,
                pages,
                ..
            } => (
                self.last_new(|e| e.event == "production_submitted"),
                Some(json!({"version": version, "title": title, "pages": pages})),
                None,
            ),
            E::FieldStudySplit {
                remaining, reason, ..
            } => (
                Some(json!({"members": self.members})),
                Some(json!({"members": remaining})),
                Some(reason.as_str().to_owned()),
            ),
            E::DefenceResultRectified {
                defence_id,
                learner_id,
                previous_result,
                result,
                reason,
                ..
            } => (
                Some(
                    json!({"defence_id": defence_id, "learner_id": learner_id, "result": previous_result}),
                ),
                Some(json!({"defence_id": defence_id, "learner_id": learner_id, "result": result})),
                Some(reason.as_str().to_owned()),
            ),
            E::JuryMemberRecused { reason, .. } | E::DefenceCancelled { reason, .. } => {
                (None, None, Some(reason.as_str().to_owned()))
            }
            E::InterventionLogged { .. }
            | E::ReflexiveNoteRecorded { .. }
            | E::DefenceScheduled { .. }
            | E::DefencePassed { .. }
            | E::DefenceDeferred { .. }
            | E::DefenceFailed { .. }
            | E::JuryMemberAppointed { .. } => (None, None, None),
        }
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
