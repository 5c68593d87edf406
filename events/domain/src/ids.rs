//! Checked identifiers and texts: an unchecked string never reaches an aggregate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A client-chosen identifier (programme, cohort, learner, session, field study, hypothesis,
/// intervention, note, defence, module, unit).
///
/// Shape: `[a-z0-9][a-z0-9-]{0,62}` (FORMAT.md, "Ids are client-chosen"). Deserializing a string
/// that breaks the pattern fails with a message naming the pattern.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// Checks `s` against the id pattern.
    ///
    /// # Errors
    /// A sentence naming the rule when `s` is empty, longer than 63 characters, or holds a
    /// character outside `a-z`, `0-9` and `-` (or starts with `-`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_lowercase() || b.is_ascii_digit() || (b == b'-' && i > 0));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            let shown: String = s.chars().take(70).collect();
            Err(format!(
                "{shown:?} is not a valid id: ids match [a-z0-9][a-z0-9-]{{0,62}}"
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl schemars::JsonSchema for Id {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Id".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
            "description": "A client-chosen identifier."
        })
    }
}

impl schemars::JsonSchema for Reason {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Reason".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "pattern": "\\S",
            "description": "Why; never empty."
        })
    }
}

impl TryFrom<String> for Id {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A reason, which FORMAT.md requires to be non-empty (after trimming white space).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            Err("a reason must not be empty".to_owned())
        } else {
            Ok(Self(s))
        }
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> String {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_pattern() {
        for ok in ["a", "l25-01", "cohort-2025", "0", &"a".repeat(63)] {
            assert!(Id::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "Bad Id!", "a_b", "é", &"a".repeat(64)] {
            assert!(Id::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_reasons_are_refused() {
        assert!(Reason::try_from("  ".to_owned()).is_err());
        assert_eq!(
            Reason::try_from("Grève".to_owned()).unwrap().as_str(),
            "Grève"
        );
    }
}
