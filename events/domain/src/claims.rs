//! Claims: the rules that span aggregates, as reservations the journal keeps next to the events.
//!
//! Two rules of FORMAT.md cannot be decided by one aggregate alone, because two commands on two
//! different streams can each pass their own aggregate's checks at the same instant:
//!
//! - a learner is in at most one field study of their cohort (`form_field_study` members,
//!   `change_members` joiners; `conflict`);
//! - a learner holds at most one certificate in force per cohort (`award_certificate`;
//!   `already_exists`; a revoked certificate gives its claim back).
//!
//! Each event *takes* or *releases* [`Claim`]s ([`claims`], a pure function of the event). The
//! journal writes them to its reservation table (primary key `(claim_kind, claim_key)`) in the
//! same transaction as the event, so of two commands taking the same claim only one commits;
//! the other gets [`Claim::refusal`]. The aggregates' own checks (through
//! [`crate::Lookups`]) still run first and give the usual answer in the common case; the
//! reservation is the guarantee under concurrency and across servers.
//!
//! A journal written before the reservations existed gets them by folding its events in
//! global-log order through a [`ClaimFold`]: the same rule, so both backends, the backfill and
//! a journal copy agree.

use crate::error::Rejection;
use crate::event::{AnyEvent, CohortEvent, FieldStudyEvent, StreamKind};
use std::collections::{BTreeMap, HashMap};

/// The event types that take or release claims: what a rebuild of the reservations reads.
pub const CLAIM_EVENT_TYPES: &[&str] = &[
    "field_study_formed",
    "members_changed",
    "learner_withdrew",
    "certificate_awarded",
    "certificate_revoked",
];

/// What is claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimKind {
    /// A learner's place in a field study of their cohort (held by the field study's stream).
    FieldStudyMember,
    /// A learner's certificate in a cohort (held by the cohort's stream).
    Certificate,
}

impl ClaimKind {
    /// The kind as stored in the reservation table: `field_study_member` or `certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::FieldStudyMember => "field_study_member",
            ClaimKind::Certificate => "certificate",
        }
    }

    /// The kind stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "field_study_member" => Some(ClaimKind::FieldStudyMember),
            "certificate" => Some(ClaimKind::Certificate),
            _ => None,
        }
    }
}

/// One claim: a kind and a key, `<cohort_id>/<learner_id>` for both kinds (ids cannot
/// contain `/`, see [`crate::Id`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Claim {
    /// What is claimed.
    pub kind: ClaimKind,
    /// `<cohort_id>/<learner_id>`.
    pub key: String,
}

impl Claim {
    /// The place of `learner_id` in a field study of `cohort_id`.
    pub fn field_study_member(cohort_id: &str, learner_id: &str) -> Self {
        Self {
            kind: ClaimKind::FieldStudyMember,
            key: format!("{cohort_id}/{learner_id}"),
        }
    }

    /// The certificate of `learner_id` in `cohort_id`.
    pub fn certificate(cohort_id: &str, learner_id: &str) -> Self {
        Self {
            kind: ClaimKind::Certificate,
            key: format!("{cohort_id}/{learner_id}"),
        }
    }

    /// `(cohort_id, learner_id)` of the key.
    pub fn cohort_and_learner(&self) -> (&str, &str) {
        self.key.split_once('/').unwrap_or(("", &self.key))
    }

    /// The rejection of a command whose event would take this claim while `holder` (a stream,
    /// `type/id`) holds it: FORMAT.md's code for the rule (`conflict` for a learner already in
    /// a field study, `already_exists` for a certificate already awarded) and a sentence naming
    /// the learner and the holder.
    pub fn refusal(&self, holder: &str) -> Rejection {
        let (cohort_id, learner_id) = self.cohort_and_learner();
        match self.kind {
            ClaimKind::FieldStudyMember => {
                let study = holder
                    .strip_prefix("field_study/")
                    .unwrap_or(if holder.is_empty() {
                        "another field study"
                    } else {
                        holder
                    });
                Rejection::conflict(format!(
                    "learner {learner_id} is already in field study {study} of cohort {cohort_id} \
                     (a learner belongs to one field study at a time)"
                ))
            }
            ClaimKind::Certificate => Rejection::already_exists(format!(
                "the certificate is already awarded to learner {learner_id} in cohort {cohort_id}"
            )),
        }
    }
}

/// What an event does to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimChange {
    /// Takes the claim for the event's stream; refused if it is held (by any stream: a second
    /// certificate would come from the same cohort stream as the first).
    Take(Claim),
    /// Releases the claim if the event's stream holds it (a learner leaving a group).
    Release(Claim),
    /// Releases the claim whoever holds it (a learner withdrawing from the cohort gives up
    /// their place in any field study of it).
    ReleaseAny(Claim),
    /// Takes the claim for the event's stream from the stream named (`type/id`): refused if
    /// another stream holds it; moved if that stream holds it; taken if nobody does (a study
    /// formed by a split takes its members' places from the study it split from).
    TakeFrom(Claim, String),
}

impl ClaimChange {
    /// The claim taken or released.
    pub fn claim(&self) -> &Claim {
        match self {
            ClaimChange::Take(c)
            | ClaimChange::Release(c)
            | ClaimChange::ReleaseAny(c)
            | ClaimChange::TakeFrom(c, _) => c,
        }
    }
}

/// Whether [`claims`] needs the cohort of the field study `event` belongs to (a
/// `members_changed` event does not carry it; the study's `field_study_formed` does).
pub fn needs_study_cohort(event: &AnyEvent) -> bool {
    matches!(
        event,
        AnyEvent::FieldStudy(FieldStudyEvent::MembersChanged { .. })
    )
}

/// The claims `event` takes and releases, releases first (no I/O). `study_cohort` is the
/// cohort of the event's field study, needed when [`needs_study_cohort`] says so; without it
/// such an event changes no claim.
///
/// - `field_study_formed`: takes [`ClaimKind::FieldStudyMember`] for each member (from the
///   study it split from, when `split_from` names one: [`ClaimChange::TakeFrom`]);
/// - `members_changed`: releases each leaver's, takes each joiner's;
/// - `learner_withdrew`: releases the learner's place in any field study of the cohort;
/// - `certificate_awarded`: takes [`ClaimKind::Certificate`];
/// - `certificate_revoked`: releases it (a later award may take it again);
/// - every other event: nothing (`field_study_split` included: the new study's
///   `field_study_formed`, in the same append, moves the places).
pub fn claims(event: &AnyEvent, study_cohort: Option<&str>) -> Vec<ClaimChange> {
    match event {
        AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed {
            cohort_id,
            members,
            split_from,
            ..
        }) => members
            .iter()
            .map(|l| {
                let claim = Claim::field_study_member(cohort_id.as_str(), l.as_str());
                match split_from {
                    Some(from) => {
                        ClaimChange::TakeFrom(claim, format!("{}/{from}", StreamKind::FIELD_STUDY))
                    }
                    None => ClaimChange::Take(claim),
                }
            })
            .collect(),
        AnyEvent::FieldStudy(FieldStudyEvent::MembersChanged { join, leave, .. }) => {
            let Some(cohort_id) = study_cohort else {
                return Vec::new();
            };
            leave
                .iter()
                .map(|l| ClaimChange::Release(Claim::field_study_member(cohort_id, l.as_str())))
                .chain(
                    join.iter().map(|l| {
                        ClaimChange::Take(Claim::field_study_member(cohort_id, l.as_str()))
                    }),
                )
                .collect()
        }
        AnyEvent::Cohort(CohortEvent::LearnerWithdrew {
            cohort_id,
            learner_id,
            ..
        }) => vec![ClaimChange::ReleaseAny(Claim::field_study_member(
            cohort_id.as_str(),
            learner_id.as_str(),
        ))],
        AnyEvent::Cohort(CohortEvent::CertificateAwarded {
            cohort_id,
            learner_id,
        }) => vec![ClaimChange::Take(Claim::certificate(
            cohort_id.as_str(),
            learner_id.as_str(),
        ))],
        AnyEvent::Cohort(CohortEvent::CertificateRevoked {
            cohort_id,
            learner_id,
            ..
        }) => vec![ClaimChange::Release(Claim::certificate(
            cohort_id.as_str(),
            learner_id.as_str(),
        ))],
        _ => Vec::new(),
    }
}

/// Who holds a claim: the stream (`type/id`) and the global position of the event that took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// `type/id` of the holding stream (e.g. `field_study/fs25-a`).
    pub stream: String,
    /// Global position of the event that took the claim.
    pub position: i64,
}

/// The reservations as a fold of events in global-log order (no I/O): what a journal written
/// before the reservation table gets, and what a copied journal is given.
///
/// A take of a claim another stream already holds cannot commit on a live journal; in a
/// journal written before the rule was enforced it may be there, and the fold keeps the first
/// holder (the earlier event in the log) and counts the later take in
/// [`ClaimFold::clashes`].
#[derive(Clone, Debug, Default)]
pub struct ClaimFold {
    held: BTreeMap<Claim, Holder>,
    study_cohorts: HashMap<String, String>,
    clashes: u64,
}

impl ClaimFold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event of stream `stream_type/stream_id` at global `position`.
    pub fn apply(&mut self, stream_type: &str, stream_id: &str, position: i64, event: &AnyEvent) {
        if let AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed { cohort_id, .. }) = event {
            self.study_cohorts
                .insert(stream_id.to_owned(), cohort_id.as_str().to_owned());
        }
        let study_cohort = (stream_type == StreamKind::FIELD_STUDY)
            .then(|| self.study_cohorts.get(stream_id).cloned())
            .flatten();
        let stream = format!("{stream_type}/{stream_id}");
        for change in claims(event, study_cohort.as_deref()) {
            match change {
                ClaimChange::Take(claim) => match self.held.get(&claim) {
                    Some(h) if h.stream != stream => self.clashes += 1,
                    Some(_) => {}
                    None => {
                        self.held.insert(
                            claim,
                            Holder {
                                stream: stream.clone(),
                                position,
                            },
                        );
                    }
                },
                ClaimChange::Release(claim) => {
                    if self.held.get(&claim).is_some_and(|h| h.stream == stream) {
                        self.held.remove(&claim);
                    }
                }
                ClaimChange::ReleaseAny(claim) => {
                    self.held.remove(&claim);
                }
                ClaimChange::TakeFrom(claim, from) => match self.held.get(&claim) {
                    Some(h) if h.stream != from && h.stream != stream => self.clashes += 1,
                    Some(h) if h.stream == stream => {}
                    _ => {
                        self.held.insert(
                            claim,
                            Holder {
                                stream: stream.clone(),
                                position,
                            },
                        );
                    }
                },
            }
        }
    }

    /// The claims held, sorted by kind then key.
    pub fn held(&self) -> impl Iterator<Item = (&Claim, &Holder)> {
        self.held.iter()
    }

    /// Number of claims held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no claim is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Takes that met a claim another stream held (only in a journal written before the
    /// rule was enforced); the first holder kept it.
    pub fn clashes(&self) -> u64 {
        self.clashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Organisation;
    use crate::ids::{Id, Reason};

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn formed(study: &str, members: &[&str]) -> AnyEvent {
        AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed {
            field_study_id: id(study),
            cohort_id: id("c1"),
            members: members.iter().map(|m| id(m)).collect(),
            organisation: serde_json::from_value::<Organisation>(
                serde_json::json!({"name": "o", "sector": "s"}),
            )
            .unwrap(),
            split_from: None,
        })
    }

    fn split_off(study: &str, from: &str, members: &[&str]) -> AnyEvent {
        let AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed {
            field_study_id,
            cohort_id,
            members,
            organisation,
            ..
        }) = formed(study, members)
        else {
            unreachable!("formed gives a field_study_formed")
        };
        AnyEvent::FieldStudy(FieldStudyEvent::FieldStudyFormed {
            field_study_id,
            cohort_id,
            members,
            organisation,
            split_from: Some(id(from)),
        })
    }

    fn changed(study: &str, join: &[&str], leave: &[&str]) -> AnyEvent {
        AnyEvent::FieldStudy(FieldStudyEvent::MembersChanged {
            field_study_id: id(study),
            join: join.iter().map(|m| id(m)).collect(),
            leave: leave.iter().map(|m| id(m)).collect(),
            reason: Reason::try_from("r".to_owned()).unwrap(),
            members: vec![],
        })
    }

    fn withdrew(learner: &str) -> AnyEvent {
        AnyEvent::Cohort(CohortEvent::LearnerWithdrew {
            cohort_id: id("c1"),
            learner_id: id(learner),
            reason: Reason::try_from("r".to_owned()).unwrap(),
        })
    }

    fn holders(fold: &ClaimFold) -> Vec<(String, String)> {
        fold.held()
            .map(|(c, h)| (c.key.clone(), h.stream.clone()))
            .collect()
    }

    #[test]
    fn each_event_takes_and_releases_its_claims() {
        assert_eq!(
            claims(&formed("fs1", &["a", "b"]), None),
            vec![
                ClaimChange::Take(Claim::field_study_member("c1", "a")),
                ClaimChange::Take(Claim::field_study_member("c1", "b")),
            ]
        );
        assert_eq!(
            claims(&changed("fs1", &["d"], &["a"]), Some("c1")),
            vec![
                ClaimChange::Release(Claim::field_study_member("c1", "a")),
                ClaimChange::Take(Claim::field_study_member("c1", "d")),
            ]
        );
        assert!(needs_study_cohort(&changed("fs1", &["d"], &[])));
        assert_eq!(claims(&changed("fs1", &["d"], &[]), None), vec![]);
        assert_eq!(
            claims(&withdrew("a"), None),
            vec![ClaimChange::ReleaseAny(Claim::field_study_member(
                "c1", "a"
            ))]
        );
        let award = AnyEvent::Cohort(CohortEvent::CertificateAwarded {
            cohort_id: id("c1"),
            learner_id: id("a"),
        });
        assert_eq!(
            claims(&award, None),
            vec![ClaimChange::Take(Claim::certificate("c1", "a"))]
        );
        let closed = AnyEvent::Cohort(CohortEvent::CohortClosed {
            cohort_id: id("c1"),
        });
        assert_eq!(claims(&closed, None), vec![]);
    }

    #[test]
    fn the_fold_keeps_the_first_holder_and_follows_releases() {
        let mut fold = ClaimFold::new();
        fold.apply("field_study", "fs1", 1, &formed("fs1", &["a", "b", "c"]));
        // Written before the rule: a second study listing `a` does not take it.
        fold.apply("field_study", "fs2", 2, &formed("fs2", &["a", "d", "e"]));
        assert_eq!(fold.clashes(), 1);
        // fs2 letting `a` go does not release fs1's claim.
        fold.apply("field_study", "fs2", 3, &changed("fs2", &[], &["a"]));
        fold.apply("field_study", "fs1", 4, &changed("fs1", &["f"], &["b"]));
        fold.apply("cohort", "c1", 5, &withdrew("c"));
        assert_eq!(
            holders(&fold),
            vec![
                ("c1/a".to_owned(), "field_study/fs1".to_owned()),
                ("c1/d".to_owned(), "field_study/fs2".to_owned()),
                ("c1/e".to_owned(), "field_study/fs2".to_owned()),
                ("c1/f".to_owned(), "field_study/fs1".to_owned()),
            ]
        );
        // `b` left fs1: fs2 may take them.
        fold.apply("field_study", "fs2", 6, &changed("fs2", &["b"], &[]));
        assert_eq!(fold.len(), 5);
        assert_eq!(fold.clashes(), 1);
    }

    #[test]
    fn a_split_moves_places_and_a_revocation_gives_the_certificate_back() {
        assert_eq!(
            claims(&split_off("fs2", "fs1", &["a"]), None),
            vec![ClaimChange::TakeFrom(
                Claim::field_study_member("c1", "a"),
                "field_study/fs1".to_owned()
            )]
        );
        let mut fold = ClaimFold::new();
        fold.apply(
            "field_study",
            "fs1",
            1,
            &formed("fs1", &["a", "b", "c", "d"]),
        );
        fold.apply("field_study", "fs3", 2, &formed("fs3", &["e", "f", "g"]));
        fold.apply(
            "field_study",
            "fs2",
            3,
            &split_off("fs2", "fs1", &["a", "b"]),
        );
        // A study split from fs1 cannot take a place fs3 holds.
        fold.apply("field_study", "fs4", 4, &split_off("fs4", "fs1", &["e"]));
        assert_eq!(fold.clashes(), 1);
        let held: Vec<(String, String, i64)> = fold
            .held()
            .map(|(c, h)| (c.key.clone(), h.stream.clone(), h.position))
            .collect();
        assert_eq!(
            held[..4],
            [
                ("c1/a".to_owned(), "field_study/fs2".to_owned(), 3),
                ("c1/b".to_owned(), "field_study/fs2".to_owned(), 3),
                ("c1/c".to_owned(), "field_study/fs1".to_owned(), 1),
                ("c1/d".to_owned(), "field_study/fs1".to_owned(), 1),
            ]
        );
        let award = AnyEvent::Cohort(CohortEvent::CertificateAwarded {
            cohort_id: id("c1"),
            learner_id: id("a"),
        });
        let revoke = AnyEvent::Cohort(CohortEvent::CertificateRevoked {
            cohort_id: id("c1"),
            learner_id: id("a"),
            reason: Reason::try_from("erreur du jury".to_owned()).unwrap(),
        });
        assert_eq!(
            claims(&revoke, None),
            vec![ClaimChange::Release(Claim::certificate("c1", "a"))]
        );
        fold.apply("cohort", "c1", 5, &award);
        fold.apply("cohort", "c1", 6, &revoke);
        fold.apply("cohort", "c1", 7, &award);
        let certificate = fold
            .held()
            .find(|(c, _)| c.kind == ClaimKind::Certificate)
            .map(|(_, h)| h.position);
        assert_eq!(certificate, Some(7));
        assert_eq!(fold.clashes(), 1);
    }

    #[test]
    fn refusals_name_the_learner_and_the_holder_with_format_codes() {
        let r = Claim::field_study_member("c1", "a").refusal("field_study/fs9");
        assert_eq!(r.code, crate::Code::Conflict);
        assert!(r
            .message
            .contains("learner a is already in field study fs9"));
        let r = Claim::certificate("c1", "a").refusal("cohort/c1");
        assert_eq!(r.code, crate::Code::AlreadyExists);
        assert!(r.message.contains("learner a"), "{}", r.message);
    }
}
