//! Rejections: the four codes of FORMAT.md and the sentence that goes with them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a command was refused (FORMAT.md). Over HTTP: `not_found` 404, `already_exists` and
/// `conflict` 409, `invalid` 422.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// A field is missing, of the wrong type, unknown or out of range; or a rule on the data fails.
    Invalid,
    /// The programme, cohort, learner, session, field study, hypothesis or defence acted on does not exist.
    NotFound,
    /// What the command creates exists already.
    AlreadyExists,
    /// The command contradicts the current state (or lost a race with a concurrent command).
    Conflict,
}

impl Code {
    /// The code as written in FORMAT.md (`invalid`, `not_found`, `already_exists`, `conflict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Invalid => "invalid",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::Conflict => "conflict",
        }
    }

    /// The code written `text` (as [`Code::as_str`] gives it), if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Code::Invalid,
            Code::NotFound,
            Code::AlreadyExists,
            Code::Conflict,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: its code and a sentence that names the field or the rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// The FORMAT.md code.
    pub code: Code,
    /// A sentence for a person, naming the field or the rule.
    pub message: String,
}

impl Rejection {
    /// `invalid` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: Code::Invalid,
            message: message.into(),
        }
    }
    /// `not_found` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: Code::NotFound,
            message: message.into(),
        }
    }
    /// `already_exists` with `message`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self {
            code: Code::AlreadyExists,
            message: message.into(),
        }
    }
    /// `conflict` with `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            code: Code::Conflict,
            message: message.into(),
        }
    }
}

/// The error type of every aggregate's `handle`: either the command is refused by a rule, or a
/// look-up in another aggregate failed for a technical reason (the database is away), which is
/// not the client's fault and must not be reported as a rejection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// Refused by a rule of FORMAT.md.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A look-up through [`crate::Lookups`] failed.
    #[error("look-up failed: {0}")]
    Lookup(String),
}

impl From<crate::LookupError> for DecideError {
    fn from(e: crate::LookupError) -> Self {
        DecideError::Lookup(e.0)
    }
}
