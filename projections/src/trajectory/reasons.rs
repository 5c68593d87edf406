//! Reason categories: the free text of a reason is never exported; a small, fixed category
//! derived from the event kind and a keyword classifier is exported instead.
//!
//! The text is lower-cased and its French accents removed, then the first rule of the event
//! kind's list whose keyword occurs in it gives the category; no match gives `other`. Only the
//! category name (one of [`CATEGORIES`]) leaves this module, never a part of the text.
//!
//! | event kind | categories, in the order they are tried |
//! |---|---|
//! | withdrawal (`learner_withdrew`) | `health`, `family`, `professional`, `relocation`, `financial`, `other` |
//! | commission renegotiated | `commissioner_priorities`, `field_findings`, `scope`, `other` |
//! | hypothesis revised or abandoned | `evidence`, `reframing`, `other` |
//! | left a field study (`members_changed`) | `withdrawal`, `regrouping`, `other` |
//! | left a field study to form another, or joined one so formed (`field_study_split`) | `split` (the reason's text is not read) |
//!
//! **After an erasure.** A personal reason (a withdrawal's, a `members_changed`'s) reads as
//! the erasure marker once its subject is erased. So that research exports read the same
//! after the erasure, the service that handles `erase_subject` classifies the subject's
//! reasons while they are still in clear ([`CLASSIFIED`], [`category`]) and records the
//! categories in the `subject_erased` event; [`KeptCategories`] collects them from the log,
//! and the fold uses the kept category of a reason that reads as the marker.

use fieldtrail_domain::{AnyEvent, SubjectEvent};
use fieldtrail_journal::sealing::ERASED;
use std::collections::HashMap;

/// The kind of event a reason belongs to: each has its own list of categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasonKind {
    /// `learner_withdrew`.
    Withdrawal,
    /// `commission_renegotiated`.
    Renegotiation,
    /// `hypothesis_revised` and `hypothesis_abandoned`.
    Hypothesis,
    /// A learner leaving a field study (`members_changed`).
    Leave,
}

/// Every category name the classifier can give (the dictionary lists them).
pub const CATEGORIES: &[&str] = &[
    "health",
    "family",
    "professional",
    "relocation",
    "financial",
    "commissioner_priorities",
    "field_findings",
    "scope",
    "evidence",
    "reframing",
    "withdrawal",
    "regrouping",
    "split",
    "other",
];

/// The category of leaving a field study by a split, and of joining the study it formed.
pub const SPLIT: &str = "split";

type Rules = &'static [(&'static str, &'static [&'static str])];

const WITHDRAWAL: Rules = &[
    (
        "health",
        &["sante", "malad", "medic", "hospital", "health", "sick"],
    ),
    (
        "family",
        &["famil", "enfant", "parental", "family", "child"],
    ),
    (
        "professional",
        &[
            "poste",
            "emploi",
            "travail",
            "employeur",
            "mutation",
            "professionn",
            "job",
            "work",
        ],
    ),
    (
        "relocation",
        &["demenag", "region", "relocat", "moving", "move"],
    ),
    (
        "financial",
        &["financ", "cout", "argent", "funding", "cost", "money"],
    ),
];

const RENEGOTIATION: Rules = &[
    (
        "commissioner_priorities",
        &[
            "direction",
            "priorit",
            "conseil",
            "commanditaire",
            "financeur",
            "commissioner",
            "board",
        ],
    ),
    (
        "field_findings",
        &[
            "entretien",
            "observation",
            "terrain",
            "enquete",
            "atelier",
            "diagnostic",
            "findings",
            "interview",
            "field",
        ],
    ),
    (
        "scope",
        &[
            "perimetre",
            "elarg",
            "recentr",
            "calendrier",
            "delai",
            "scope",
            "deadline",
        ],
    ),
];

const HYPOTHESIS: Rules = &[
    (
        "evidence",
        &[
            "observation",
            "montre",
            "confirm",
            "donnees",
            "entretien",
            "atelier",
            "terrain",
            "evidence",
            "data",
        ],
    ),
    (
        "reframing",
        &["commande", "question", "recentr", "reformul", "reframe"],
    ),
];

const LEAVE: Rules = &[
    ("withdrawal", &["retrait", "abandon", "withdr", "depart"]),
    (
        "regrouping",
        &["regroup", "reequilibr", "rebalanc", "groupe", "group"],
    ),
];

/// The reason fields the research export classifies: `(event type, payload field, kind)`.
pub const CLASSIFIED: &[(&str, &str, ReasonKind)] = &[
    ("learner_withdrew", "reason", ReasonKind::Withdrawal),
    ("members_changed", "reason", ReasonKind::Leave),
    (
        "commission_renegotiated",
        "reason",
        ReasonKind::Renegotiation,
    ),
    ("hypothesis_revised", "reason", ReasonKind::Hypothesis),
    ("hypothesis_abandoned", "reason", ReasonKind::Hypothesis),
];

/// The kind of the reason field `field` of events of `event_type`, when the research export
/// classifies it ([`CLASSIFIED`]).
pub fn classified(event_type: &str, field: &str) -> Option<ReasonKind> {
    CLASSIFIED
        .iter()
        .find(|(t, f, _)| *t == event_type && *f == field)
        .map(|(_, _, kind)| *kind)
}

/// The listed category named `name` ([`CATEGORIES`]), `None` for any other text.
pub fn known(name: &str) -> Option<&'static str> {
    CATEGORIES.iter().copied().find(|c| *c == name)
}

/// The categories that `subject_erased` events kept for the reasons they erased, by
/// `(event id, field)`: filled from the whole log before the research fold runs (a
/// `subject_erased` comes after the events it erases), a few dozen bytes per erased reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeptCategories(HashMap<(String, String), &'static str>);

impl KeptCategories {
    /// Notes the categories an event keeps (only `subject_erased` keeps any; a name that is
    /// not a listed category is ignored).
    pub fn apply(&mut self, event: &AnyEvent) {
        if let AnyEvent::Subject(SubjectEvent::SubjectErased {
            reason_categories, ..
        }) = event
        {
            for kept in reason_categories {
                if let Some(category) = known(&kept.category) {
                    self.0
                        .insert((kept.event_id.clone(), kept.field.clone()), category);
                }
            }
        }
    }

    /// The category of the reason field `field` of the event `event_id`: the kept one when
    /// the text reads as the erasure marker and one was kept, else the text's own
    /// ([`category`]).
    pub fn category(
        &self,
        kind: ReasonKind,
        event_id: &str,
        field: &str,
        text: &str,
    ) -> &'static str {
        if text == ERASED {
            if let Some(kept) = self.0.get(&(event_id.to_owned(), field.to_owned())) {
                return kept;
            }
        }
        category(kind, text)
    }

    /// Reasons with a kept category.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no category is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Lower case, French accents removed (`é` → `e`, `ç` → `c`, ...).
fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            'œ' => 'o',
            other => other,
        })
        .collect()
}

/// The category of a reason of `kind` (one of [`CATEGORIES`]; `other` when no keyword
/// matches).
pub fn category(kind: ReasonKind, text: &str) -> &'static str {
    let rules = match kind {
        ReasonKind::Withdrawal => WITHDRAWAL,
        ReasonKind::Renegotiation => RENEGOTIATION,
        ReasonKind::Hypothesis => HYPOTHESIS,
        ReasonKind::Leave => LEAVE,
    };
    let text = fold(text);
    rules
        .iter()
        .find(|(_, keywords)| keywords.iter().any(|k| text.contains(k)))
        .map_or("other", |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_reasons_get_their_categories() {
        use ReasonKind::*;
        assert_eq!(
            category(Withdrawal, "Changement de poste, départ de la région"),
            "professional"
        );
        assert_eq!(
            category(
                Renegotiation,
                "La direction a revu ses priorités après le conseil d'administration"
            ),
            "commissioner_priorities"
        );
        assert_eq!(
            category(
                Renegotiation,
                "Les premiers entretiens ont déplacé la question"
            ),
            "field_findings"
        );
        assert_eq!(
            category(
                Hypothesis,
                "Les observations montrent le rôle décisif des salariés"
            ),
            "evidence"
        );
        assert_eq!(
            category(Hypothesis, "Non confirmée par les trois ateliers"),
            "evidence"
        );
        assert_eq!(category(Leave, "Retrait de la formation"), "withdrawal");
        assert_eq!(category(Withdrawal, ""), "other");
        assert_eq!(category(Leave, "ÉÇ\u{0}🙂"), "other");
    }

    #[test]
    fn an_erased_reason_reads_as_its_kept_category() {
        let mut kept = KeptCategories::default();
        let erased = |category: &str| {
            AnyEvent::Subject(SubjectEvent::SubjectErased {
                subject_id: "learner:l1".to_owned(),
                reason: fieldtrail_domain::ids::Reason::try_from("demande".to_owned()).unwrap(),
                reason_categories: vec![fieldtrail_domain::ErasedReasonCategory {
                    event_id: "e1".to_owned(),
                    field: "reason".to_owned(),
                    category: category.to_owned(),
                }],
            })
        };
        kept.apply(&erased("health"));
        // A name that is no listed category is not kept.
        kept.apply(&AnyEvent::Subject(match erased("secret text") {
            AnyEvent::Subject(SubjectEvent::SubjectErased {
                subject_id,
                reason,
                mut reason_categories,
            }) => {
                reason_categories[0].event_id = "e2".to_owned();
                SubjectEvent::SubjectErased {
                    subject_id,
                    reason,
                    reason_categories,
                }
            }
            other => panic!("{other:?}"),
        }));
        assert_eq!(kept.len(), 1);
        use ReasonKind::Withdrawal;
        assert_eq!(kept.category(Withdrawal, "e1", "reason", ERASED), "health");
        assert_eq!(kept.category(Withdrawal, "e2", "reason", ERASED), "other");
        // A reason still in clear is classified from its text.
        assert_eq!(
            kept.category(Withdrawal, "e1", "reason", "famille"),
            "family"
        );
        assert_eq!(
            classified("members_changed", "reason"),
            Some(ReasonKind::Leave)
        );
        assert_eq!(classified("members_changed", "members"), None);
    }

    #[test]
    fn every_rule_names_a_listed_category() {
        for rules in [WITHDRAWAL, RENEGOTIATION, HYPOTHESIS, LEAVE] {
            for (name, _) in rules {
                assert!(CATEGORIES.contains(name), "{name}");
            }
        }
    }
}
