//! The events: the facts fieldtrail keeps for ever. This is a compatibility boundary: change a
//! shape only by adding a version and an upcaster.
//!
//! On the wire and in the journal, an event is its `event_type` (snake_case, past tense), its
//! `event_version` and its payload: the variant's fields as a JSON object (no type tag inside).
//! The serde form of the enums below carries the tag in a `type` field; [`AnyEvent::decode`] and
//! [`AnyEvent::payload`] convert between the two.

use crate::command::{
    AttendanceStatus, DefenceResult, JuryMember, JuryRole, ModulePlan, Organisation, SessionKind,
};
use crate::ids::{Id, Reason};
use chrono::{DateTime, FixedOffset, NaiveDate};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The first version of every event type.
pub const EVENT_VERSION: &str = "1";

/// The version of `event_type` this build writes and reads (older rows are upcast to it by
/// [`crate::upcast::upcast`]). Changes: `session_scheduled` 2 (gains `room`),
/// `field_study_formed` 2 (gains `split_from`).
pub fn current_version(event_type: &str) -> &'static str {
    match event_type {
        "session_scheduled" | "field_study_formed" => "2",
        _ => EVENT_VERSION,
    }
}

/// Events of a programme's stream (`programme/<programme_id>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProgrammeEvent {
    /// The programme and its modules and units, with their budgets in half-days.
    ProgrammeDefined {
        /// Programme id.
        programme_id: Id,
        /// Title.
        title: String,
        /// Modules in programme order.
        modules: Vec<ModulePlan>,
    },
}

/// Events of a cohort's stream (`cohort/<cohort_id>`): enrolment, the timetable, attendance and
/// the learners' outcomes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CohortEvent {
    /// A cohort opened on a programme.
    CohortOpened {
        /// Cohort id.
        cohort_id: Id,
        /// The programme it follows.
        programme_id: Id,
        /// Title.
        title: String,
        /// First day (calendar date, Europe/Paris).
        starts_on: NaiveDate,
        /// Last day (calendar date, Europe/Paris).
        ends_on: NaiveDate,
    },
    /// A learner enrolled.
    LearnerEnrolled {
        /// Cohort id.
        cohort_id: Id,
        /// Learner id.
        learner_id: Id,
        /// The learner's name (personal data).
        name: String,
        /// Whether the learner follows the DEIS pathway.
        deis_pathway: bool,
    },
    /// A learner withdrew; they count nothing for sessions recorded afterwards.
    LearnerWithdrew {
        /// Cohort id.
        cohort_id: Id,
        /// Learner id.
        learner_id: Id,
        /// Why.
        reason: Reason,
    },
    /// A session was put on the timetable.
    SessionScheduled {
        /// Cohort id.
        cohort_id: Id,
        /// Session id.
        session_id: Id,
        /// Module of the programme.
        module_id: Id,
        /// Unit of that module, if any.
        unit_id: Option<Id>,
        /// What kind of session.
        kind: SessionKind,
        /// Start, RFC 3339 with the offset the client gave.
        starts_at: DateTime<FixedOffset>,
        /// End, after `starts_at`.
        ends_at: DateTime<FixedOffset>,
        /// 1 or 2 half-days.
        half_days: u8,
        /// Who leads it.
        facilitator: String,
        /// Where it takes place, if known (added in version 2; version 1 rows read as `null`).
        #[serde(default)]
        room: Option<String>,
    },
    /// A session moved to a new slot; the old slot stays in the history.
    SessionRescheduled {
        /// Cohort id.
        cohort_id: Id,
        /// Session id.
        session_id: Id,
        /// New start.
        starts_at: DateTime<FixedOffset>,
        /// New end.
        ends_at: DateTime<FixedOffset>,
        /// Why.
        reason: Reason,
    },
    /// A session was cancelled; it counts for nothing.
    SessionCancelled {
        /// Cohort id.
        cohort_id: Id,
        /// Session id.
        session_id: Id,
        /// Why.
        reason: Reason,
    },
    /// A session took place. Every learner active at that point is in exactly one of
    /// `present`, `excused`, `absent` (the aggregate fills `absent`).
    SessionHeld {
        /// Cohort id.
        cohort_id: Id,
        /// Session id.
        session_id: Id,
        /// The session's module (copied so that readers need no join).
        module_id: Id,
        /// The session's half-days (copied likewise).
        half_days: u8,
        /// Learners present.
        present: Vec<Id>,
        /// Learners excused.
        excused: Vec<Id>,
        /// Learners active in the cohort but neither present nor excused.
        absent: Vec<Id>,
    },
    /// One learner's attendance at a held session was corrected; the original record stays.
    AttendanceCorrected {
        /// Cohort id.
        cohort_id: Id,
        /// Session id.
        session_id: Id,
        /// Learner id.
        learner_id: Id,
        /// The status before this correction.
        previous_status: AttendanceStatus,
        /// The status from now on.
        status: AttendanceStatus,
        /// Why.
        reason: Reason,
    },
    /// The cohort closed: no more enrolments or sessions.
    CohortClosed {
        /// Cohort id.
        cohort_id: Id,
    },
    /// A learner was awarded the certificate (the date is the event's `occurred_at`).
    CertificateAwarded {
        /// Cohort id.
        cohort_id: Id,
        /// Learner id.
        learner_id: Id,
    },
    /// The certificate was credited toward the learner's DEIS.
    DeisCreditRecorded {
        /// Cohort id.
        cohort_id: Id,
        /// Learner id.
        learner_id: Id,
        /// Free text.
        note: String,
    },
    /// The learner's certificate was revoked: it is no longer in force, nor is its DEIS
    /// credit; a later `certificate_awarded` may follow when the rule holds again.
    CertificateRevoked {
        /// Cohort id.
        cohort_id: Id,
        /// Learner id.
        learner_id: Id,
        /// Why.
        reason: Reason,
    },
    /// A complaint was received (Qualiopi indicator 31: every complaint gets an answer and an
    /// action). The filing time is the event's `occurred_at`.
    ComplaintFiled {
        /// Cohort id.
        cohort_id: Id,
        /// Complaint id.
        complaint_id: Id,
        /// Who complains, `role:name` (`learner:<learner_id>` for a learner of the cohort).
        from: String,
        /// What it is about.
        subject: String,
        /// The complaint as received (personal data).
        text: String,
    },
    /// A complaint was answered, with the action taken. The answer's time is the event's
    /// `occurred_at`.
    ComplaintAnswered {
        /// Cohort id.
        cohort_id: Id,
        /// Complaint id.
        complaint_id: Id,
        /// The answer given.
        answer: String,
        /// The action taken.
        action: String,
    },
}

/// Events of a field study's stream (`field_study/<field_study_id>`): the tentative path of a
/// group's study, from the commission to the defence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldStudyEvent {
    /// A group formed to answer an organisation: 3 or 4 learners, or 2 to 4 when it comes from
    /// a split (`split_from`).
    FieldStudyFormed {
        /// Field study id.
        field_study_id: Id,
        /// Cohort id.
        cohort_id: Id,
        /// Members.
        members: Vec<Id>,
        /// The commissioning organisation.
        organisation: Organisation,
        /// The field study it split from (its `field_study_split` names this study), `null`
        /// for a study formed by `form_field_study` (added in version 2; version 1 rows read
        /// as `null`).
        #[serde(default)]
        split_from: Option<Id>,
    },
    /// Learners joined or left the group.
    MembersChanged {
        /// Field study id.
        field_study_id: Id,
        /// Who joined.
        join: Vec<Id>,
        /// Who left.
        leave: Vec<Id>,
        /// Why.
        reason: Reason,
        /// The members after the change.
        members: Vec<Id>,
    },
    /// Commission version 1.
    CommissionNegotiated {
        /// Field study id.
        field_study_id: Id,
        /// Always 1.
        version: u32,
        /// What is asked.
        brief: String,
        /// What will be delivered.
        deliverables: Vec<String>,
        /// With whom it was negotiated.
        negotiated_with: String,
    },
    /// Commission version n+1.
    CommissionRenegotiated {
        /// Field study id.
        field_study_id: Id,
        /// The new version number.
        version: u32,
        /// What is asked now.
        brief: String,
        /// What will be delivered now.
        deliverables: Vec<String>,
        /// Why.
        reason: Reason,
    },
    /// The latest commission version was agreed.
    CommissionAgreed {
        /// Field study id.
        field_study_id: Id,
        /// The version agreed.
        version: u32,
    },
    /// A hypothesis was stated.
    HypothesisStated {
        /// Field study id.
        field_study_id: Id,
        /// Hypothesis id.
        hypothesis_id: Id,
        /// Its text.
        text: String,
    },
    /// A hypothesis was revised; the earlier text stays in the history.
    HypothesisRevised {
        /// Field study id.
        field_study_id: Id,
        /// Hypothesis id.
        hypothesis_id: Id,
        /// The new text.
        text: String,
        /// Why.
        reason: Reason,
    },
    /// A hypothesis was abandoned.
    HypothesisAbandoned {
        /// Field study id.
        field_study_id: Id,
        /// Hypothesis id.
        hypothesis_id: Id,
        /// Why.
        reason: Reason,
    },
    /// An intervention in the field.
    InterventionLogged {
        /// Field study id.
        field_study_id: Id,
        /// Intervention id.
        intervention_id: Id,
        /// Free text (e.g. "entretien collectif").
        kind: String,
        /// Summary.
        summary: String,
        /// Number of participants.
        participants: u32,
    },
    /// A reflexive note.
    ReflexiveNoteRecorded {
        /// Field study id.
        field_study_id: Id,
        /// Note id.
        note_id: Id,
        /// The session it relates to, if any.
        session_id: Option<Id>,
        /// Its text.
        text: String,
    },
    /// A version of the written production.
    ProductionSubmitted {
        /// Field study id.
        field_study_id: Id,
        /// 1, 2, ...
        version: u32,
        /// Title.
        title: String,
        /// Number of pages.
        pages: u32,
    },
    /// A defence was scheduled before a jury.
    DefenceScheduled {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// When.
        at: DateTime<FixedOffset>,
        /// The jury.
        jury: Vec<JuryMember>,
    },
    /// A learner passed a defence.
    DefencePassed {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// Learner id.
        learner_id: Id,
        /// The jury's remarks.
        remarks: String,
    },
    /// A learner's defence was deferred: they are due at the next one.
    DefenceDeferred {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// Learner id.
        learner_id: Id,
        /// The jury's remarks.
        remarks: String,
    },
    /// A learner failed a defence.
    DefenceFailed {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// Learner id.
        learner_id: Id,
        /// The jury's remarks.
        remarks: String,
    },
    /// A member of a defence's jury stepped aside; the jury sits without them.
    JuryMemberRecused {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// The member's name, as on the jury.
        name: String,
        /// Why.
        reason: Reason,
    },
    /// A member joined a defence's jury (or a recused member came back, in this role).
    JuryMemberAppointed {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// The member's name.
        name: String,
        /// `professional` or `training_centre`.
        role: JuryRole,
    },
    /// Some members left this study to form a new one (`new_field_study_id`, whose first
    /// event is its `field_study_formed` with `split_from` = this study, in the same append).
    FieldStudySplit {
        /// Field study id (the study that split).
        field_study_id: Id,
        /// The cohort of both studies.
        cohort_id: Id,
        /// The new study.
        new_field_study_id: Id,
        /// Who left to form the new study (its members).
        members: Vec<Id>,
        /// This study's members after the split.
        remaining: Vec<Id>,
        /// The new study's commissioning organisation.
        organisation: Organisation,
        /// Why.
        reason: Reason,
    },
    /// A learner's result at a recorded defence was corrected (a jury's error found after
    /// the fact); `result` replaces `previous_result` at that defence. The outcome event stays.
    DefenceResultRectified {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// Learner id.
        learner_id: Id,
        /// The result in force before.
        previous_result: DefenceResult,
        /// The result from now on.
        result: DefenceResult,
        /// Why.
        reason: Reason,
    },
    /// A scheduled defence will not sit (`cancel_defence`): it records no outcome, and the
    /// next defence is due for whom it would have been.
    DefenceCancelled {
        /// Field study id.
        field_study_id: Id,
        /// Defence id.
        defence_id: Id,
        /// Why.
        reason: Reason,
    },
}

/// Events of a data subject's stream (`subject/<subject_id>`, the subject id of
/// [`crate::personal::Subject::id`]): what became of a person's personal data (RGPD).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubjectEvent {
    /// The subject's key was destroyed: every personal field sealed with it reads as
    /// `[effacé]` from now on, and what is given for the subject later is not kept. Holds no
    /// personal data (the reason names a request or a rule, not the person).
    SubjectErased {
        /// The data subject (`learner:<id>`, `field_study:<id>`, `jury:<id>`,
        /// `complaint:<cohort_id>:<complaint_id>`).
        subject_id: String,
        /// Why (e.g. the request's reference, or the retention rule).
        reason: Reason,
        /// The research export's category of each reason of the subject's that the erasure
        /// turns into the marker, classified from the text while it was still in clear (README
        /// "Personal data"), so that research exports read the same after the erasure. Filled
        /// by the service that handles `erase_subject`; absent (empty) in erasures recorded
        /// before it was kept, and when the subject had no such reason.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reason_categories: Vec<ErasedReasonCategory>,
    },
}

/// One reason's research category kept by a `subject_erased` event: derived, non-personal
/// data (one of the fixed category names of the research export's data dictionary).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasedReasonCategory {
    /// The id (a UUID as text) of the event whose reason it is.
    pub event_id: String,
    /// The payload field of that event (`reason`).
    pub field: String,
    /// The category (`health`, `family`, `withdrawal`, `regrouping`, `other`, ...).
    pub category: String,
}

impl FieldStudyEvent {
    /// The new field study's first event when this event is a split (the other half of the
    /// split's append: `field_study_formed` with `split_from`), as `(new_field_study_id, event)`.
    pub fn split_companion(&self) -> Option<(Id, FieldStudyEvent)> {
        match self {
            Self::FieldStudySplit {
                field_study_id,
                cohort_id,
                new_field_study_id,
                members,
                organisation,
                ..
            } => Some((
                new_field_study_id.clone(),
                Self::FieldStudyFormed {
                    field_study_id: new_field_study_id.clone(),
                    cohort_id: cohort_id.clone(),
                    members: members.clone(),
                    organisation: organisation.clone(),
                    split_from: Some(field_study_id.clone()),
                },
            )),
            _ => None,
        }
    }

    /// The defence outcome this event records, if it is one.
    pub fn defence_result(&self) -> Option<(&Id, &Id, DefenceResult)> {
        match self {
            Self::DefencePassed {
                defence_id,
                learner_id,
                ..
            } => Some((defence_id, learner_id, DefenceResult::Passed)),
            Self::DefenceDeferred {
                defence_id,
                learner_id,
                ..
            } => Some((defence_id, learner_id, DefenceResult::Deferred)),
            Self::DefenceFailed {
                defence_id,
                learner_id,
                ..
            } => Some((defence_id, learner_id, DefenceResult::Failed)),
            _ => None,
        }
    }
}

fn type_tag<T: Serialize>(event: &T) -> String {
    match serde_json::to_value(event) {
        Ok(Value::Object(map)) => map
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

macro_rules! domain_event {
    ($t:ty) => {
        impl DomainEvent for $t {
            fn event_type(&self) -> String {
                type_tag(self)
            }
            fn event_version(&self) -> String {
                current_version(&self.event_type()).to_owned()
            }
        }
    };
}
domain_event!(ProgrammeEvent);
domain_event!(CohortEvent);
domain_event!(FieldStudyEvent);
domain_event!(SubjectEvent);

/// An event of any stream, as read from the global log.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyEvent {
    /// From a `programme` stream.
    Programme(ProgrammeEvent),
    /// From a `cohort` stream.
    Cohort(CohortEvent),
    /// From a `field_study` stream.
    FieldStudy(FieldStudyEvent),
    /// From a `subject` stream.
    Subject(SubjectEvent),
}

/// An event row that this version cannot read: an unknown stream type, event type or version,
/// or a payload of the wrong shape. Readers stop at it rather than skip it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read event {stream_type}/{event_type} v{event_version}: {reason}")]
pub struct DecodeError {
    /// The row's stream type.
    pub stream_type: String,
    /// The row's event type.
    pub event_type: String,
    /// The row's event version.
    pub event_version: String,
    /// What is wrong.
    pub reason: String,
}

impl AnyEvent {
    /// Rebuilds an event from a journal row's stream type, event type, version and payload.
    ///
    /// # Errors
    /// [`DecodeError`] for a stream type other than `programme`, `cohort`, `field_study`, an
    /// event type unknown to that stream, a version other than [`EVENT_VERSION`], or a payload
    /// that does not fit.
    pub fn decode(
        stream_type: &str,
        event_type: &str,
        event_version: &str,
        payload: &Value,
    ) -> Result<Self, DecodeError> {
        Self::decode_owned(stream_type, event_type, event_version, payload.clone())
    }

    /// As [`AnyEvent::decode`], taking the payload: its fields are moved into the event, not
    /// copied (the path of every fold over the global log).
    ///
    /// # Errors
    /// As [`AnyEvent::decode`].
    pub fn decode_owned(
        stream_type: &str,
        event_type: &str,
        event_version: &str,
        payload: Value,
    ) -> Result<Self, DecodeError> {
        let fail = |reason: String| DecodeError {
            stream_type: stream_type.to_owned(),
            event_type: event_type.to_owned(),
            event_version: event_version.to_owned(),
            reason,
        };
        let payload = if event_version == current_version(event_type) {
            payload
        } else {
            crate::upcast::upcast(event_type, event_version, payload)
                .map_err(fail)?
                .1
        };
        let mut tagged = match payload {
            Value::Object(map) => map,
            _ => return Err(fail("payload is not a JSON object".to_owned())),
        };
        tagged.insert("type".to_owned(), Value::String(event_type.to_owned()));
        let tagged = Value::Object(tagged);
        let parsed = match stream_type {
            StreamKind::PROGRAMME => serde_json::from_value(tagged).map(AnyEvent::Programme),
            StreamKind::COHORT => serde_json::from_value(tagged).map(AnyEvent::Cohort),
            StreamKind::FIELD_STUDY => serde_json::from_value(tagged).map(AnyEvent::FieldStudy),
            StreamKind::SUBJECT => serde_json::from_value(tagged).map(AnyEvent::Subject),
            other => return Err(fail(format!("unknown stream type {other:?}"))),
        };
        parsed.map_err(|e| fail(e.to_string()))
    }

    /// The event's type, e.g. `session_held`.
    pub fn event_type(&self) -> String {
        match self {
            AnyEvent::Programme(e) => e.event_type(),
            AnyEvent::Cohort(e) => e.event_type(),
            AnyEvent::FieldStudy(e) => e.event_type(),
            AnyEvent::Subject(e) => e.event_type(),
        }
    }

    /// The payload as stored: the fields without the `type` tag.
    pub fn payload(&self) -> Value {
        let value = match self {
            AnyEvent::Programme(e) => serde_json::to_value(e),
            AnyEvent::Cohort(e) => serde_json::to_value(e),
            AnyEvent::FieldStudy(e) => serde_json::to_value(e),
            AnyEvent::Subject(e) => serde_json::to_value(e),
        };
        strip_tag(value.unwrap_or(Value::Null))
    }
}

/// Removes the `type` tag from a serialized event, giving the stored payload.
pub fn strip_tag(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            map.remove("type");
            Value::Object(map)
        }
        other => other,
    }
}

/// The stream types' names as stored in the journal and used in NATS subjects.
pub struct StreamKind;

impl StreamKind {
    /// `programme`
    pub const PROGRAMME: &'static str = "programme";
    /// `cohort`
    pub const COHORT: &'static str = "cohort";
    /// `field_study`
    pub const FIELD_STUDY: &'static str = "field_study";
    /// `subject` (a data subject's stream: its erasure)
    pub const SUBJECT: &'static str = "subject";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_without_its_tag() {
        let event = AnyEvent::Cohort(CohortEvent::CohortClosed {
            cohort_id: Id::parse("c1").unwrap(),
        });
        assert_eq!(event.event_type(), "cohort_closed");
        let payload = event.payload();
        assert_eq!(payload, serde_json::json!({"cohort_id": "c1"}));
        assert_eq!(
            AnyEvent::decode("cohort", "cohort_closed", "1", &payload).unwrap(),
            event
        );
    }

    #[test]
    fn unknown_types_are_refused_by_name() {
        let err =
            AnyEvent::decode("cohort", "cohort_merged", "1", &serde_json::json!({})).unwrap_err();
        assert_eq!(err.event_type, "cohort_merged");
        assert!(AnyEvent::decode(
            "cohort",
            "cohort_closed",
            "2",
            &serde_json::json!({"cohort_id": "c1"})
        )
        .is_err());
        assert!(AnyEvent::decode(
            "invoice",
            "cohort_closed",
            "1",
            &serde_json::json!({"cohort_id": "c1"})
        )
        .is_err());
    }
}
