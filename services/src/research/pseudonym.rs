//! Keyed pseudonyms and date shifts (HMAC-SHA256 with a secret the operator keeps).
//!
//! A pseudonym is `<prefix>-` followed by the first 16 lower-case hex digits (64 bits) of
//! HMAC-SHA256(key, `<kind>:<id>`):
//!
//! | kind | prefix | input |
//! |---|---|---|
//! | learner | `L-` | `learner:<learner id>` (the same learner id gives the same pseudonym in every cohort) |
//! | facilitator | `F-` | `facilitator:<name>` (a session's `facilitator:...` and an actor `facilitator:...` agree) |
//! | jury member | `J-` | `jury:<name>` (a jury member's name, or an actor `jury:...`) |
//! | staff | `S-` | `staff:<name>` (actors only) |
//! | other actor | `X-` | `actor:<role:name>` |
//! | cohort | `C-` | `cohort:<cohort id>` |
//! | field study | `G-` | `field_study:<field study id>` |
//! | hypothesis | `H-` | `hypothesis:<field study id>/<hypothesis id>` |
//!
//! The same key gives the same pseudonyms in every export (so exports can be joined); another
//! key gives unrelated ones. Ids are easy to guess (`l25-01`), so the key is the only
//! protection: it must be at least [`MIN_KEY_BYTES`] bytes, kept secret, and never sent with
//! an export. The [`Pseudonymiser::key_id`] (also an HMAC) names the key in an export's
//! metadata without revealing it.
//!
//! Date shift (`--dates shifted`): each learner's dates move by the same whole number of days,
//! from −[`MAX_SHIFT_DAYS`] to +[`MAX_SHIFT_DAYS`], taken from HMAC(key, `shift:<learner id>`).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// The environment variable holding the key (when no `--key-file` is given).
pub const KEY_ENV: &str = "FIELDTRAIL_PSEUDONYM_KEY";
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// The largest date shift, in days (either way).
pub const MAX_SHIFT_DAYS: i64 = 90;
/// Hex digits kept of each HMAC (16 = 64 bits).
pub const PSEUDONYM_HEX_DIGITS: usize = 16;

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither a key file nor the environment variable.
    #[error("no pseudonym key: pass --key-file PATH or set {KEY_ENV} (a secret of at least {MIN_KEY_BYTES} bytes, e.g. `head -c 32 /dev/urandom | base64`); research exports are never made without one")]
    Missing,
    /// The key file could not be read.
    #[error("cannot read the pseudonym key file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Too short to resist guessing.
    #[error("the pseudonym key is {0} bytes long; at least {MIN_KEY_BYTES} are needed")]
    TooShort(usize),
}

/// The secret key (bytes; surrounding white space removed).
#[derive(Clone)]
pub struct PseudonymKey(Vec<u8>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

impl PseudonymKey {
    /// A key from bytes (white space at both ends removed).
    ///
    /// # Errors
    /// [`KeyError::TooShort`] under [`MIN_KEY_BYTES`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, KeyError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(trimmed.len()));
        }
        Ok(Self(trimmed.to_vec()))
    }

    /// The key from `file` if given, else from the environment variable [`KEY_ENV`].
    ///
    /// # Errors
    /// [`KeyError::Missing`] with neither, [`KeyError::Unreadable`], [`KeyError::TooShort`].
    pub fn load(file: Option<&Path>) -> Result<Self, KeyError> {
        match file {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| KeyError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Self::new(&bytes)
            }
            None => Self::from_env(),
        }
    }

    /// The key from the environment variable [`KEY_ENV`].
    ///
    /// # Errors
    /// [`KeyError::Missing`] when unset or empty, [`KeyError::TooShort`].
    pub fn from_env() -> Result<Self, KeyError> {
        match std::env::var_os(KEY_ENV) {
            Some(v) if !v.is_empty() => Self::new(v.as_encoded_bytes()),
            _ => Err(KeyError::Missing),
        }
    }
}

/// Makes pseudonyms and date shifts with one key.
#[derive(Clone, Debug)]
pub struct Pseudonymiser {
    key: PseudonymKey,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Pseudonymiser {
    /// A pseudonymiser with `key`.
    pub fn new(key: PseudonymKey) -> Self {
        Self { key }
    }

    fn mac(&self, input: &str) -> [u8; 32] {
        // HMAC accepts keys of any length: this cannot fail.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0) {
            Ok(mut mac) => {
                mac.update(input.as_bytes());
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; 32],
        }
    }

    fn code(&self, prefix: &str, input: &str) -> String {
        let mac = self.mac(input);
        let mut out = String::with_capacity(prefix.len() + 1 + PSEUDONYM_HEX_DIGITS);
        out.push_str(prefix);
        out.push('-');
        for byte in mac.iter().take(PSEUDONYM_HEX_DIGITS / 2) {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// `L-…` for a learner id.
    pub fn learner(&self, id: &str) -> String {
        self.code("L", &format!("learner:{id}"))
    }

    /// `C-…` for a cohort id.
    pub fn cohort(&self, id: &str) -> String {
        self.code("C", &format!("cohort:{id}"))
    }

    /// `G-…` for a field study id.
    pub fn field_study(&self, id: &str) -> String {
        self.code("G", &format!("field_study:{id}"))
    }

    /// `H-…` for a hypothesis of a field study.
    pub fn hypothesis(&self, field_study_id: &str, hypothesis_id: &str) -> String {
        self.code("H", &format!("hypothesis:{field_study_id}/{hypothesis_id}"))
    }

    /// `F-…` for a facilitator as recorded on a session (`facilitator:name` or a bare name).
    pub fn facilitator(&self, recorded: &str) -> String {
        let name = recorded.strip_prefix("facilitator:").unwrap_or(recorded);
        self.code("F", &format!("facilitator:{name}"))
    }

    /// `J-…` for a jury member's name.
    pub fn jury(&self, name: &str) -> String {
        self.code("J", &format!("jury:{name}"))
    }

    /// The role and pseudonym of an actor `role:name`: `learner` → `L-`, `facilitator` →
    /// `F-`, `jury` → `J-`, `staff` → `S-`; any other role (or no role) gives role `other`
    /// and `X-`. The role names kept are those four and `other`, never the raw text.
    pub fn actor(&self, actor: &str) -> (&'static str, String) {
        match actor.split_once(':') {
            Some(("learner", id)) => ("learner", self.learner(id)),
            Some(("facilitator", name)) => ("facilitator", self.facilitator(name)),
            Some(("jury", name)) => ("jury", self.jury(name)),
            Some(("staff", name)) => ("staff", self.code("S", &format!("staff:{name}"))),
            _ => ("other", self.code("X", &format!("actor:{actor}"))),
        }
    }

    /// The learner's date shift in days, in −[`MAX_SHIFT_DAYS`]..=[`MAX_SHIFT_DAYS`].
    pub fn shift_days(&self, learner_id: &str) -> i64 {
        let mac = self.mac(&format!("shift:{learner_id}"));
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        let span = u64::try_from(2 * MAX_SHIFT_DAYS + 1).unwrap_or(1);
        let offset = i64::try_from(u64::from_be_bytes(first) % span).unwrap_or(0);
        offset - MAX_SHIFT_DAYS
    }

    /// A name for the key that does not reveal it (8 hex digits of HMAC(key, `key-id`)):
    /// exports with the same key id can be joined on their pseudonyms.
    pub fn key_id(&self) -> String {
        let code = self.code("K", "key-id");
        code.chars().skip(2).take(8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str) -> Pseudonymiser {
        Pseudonymiser::new(PseudonymKey::new(key.as_bytes()).unwrap())
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
        let a = with("a secret of sixteen bytes or more");
        let b = with("another secret, also long enough");
        assert_eq!(a.learner("l25-01"), a.learner("l25-01"));
        assert_ne!(a.learner("l25-01"), b.learner("l25-01"));
        assert_ne!(a.learner("l25-01"), a.learner("l25-02"));
        let p = a.learner("l25-01");
        assert!(p.starts_with("L-") && p.len() == 18, "{p}");
        assert!(p[2..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(a.actor("learner:l25-01"), ("learner", p));
        assert_eq!(
            a.actor("facilitator:intervenant-a").1,
            a.facilitator("facilitator:intervenant-a")
        );
        assert_eq!(
            a.facilitator("intervenant-a"),
            a.facilitator("facilitator:intervenant-a")
        );
        assert_eq!(a.actor("jury:president").0, "jury");
        assert!(a.actor("staff:direction").1.starts_with("S-"));
        assert_eq!(a.actor("nobody").0, "other");
        // Kinds are separated: the same text as a cohort and as a learner differ.
        assert_ne!(a.cohort("x")[2..], a.learner("x")[2..]);
    }

    #[test]
    fn keys_must_be_long_enough_and_whitespace_is_trimmed() {
        assert!(matches!(
            PseudonymKey::new(b"short"),
            Err(KeyError::TooShort(5))
        ));
        let k1 = with("0123456789abcdef\n");
        let k2 = with("  0123456789abcdef");
        assert_eq!(k1.learner("x"), k2.learner("x"));
        assert_eq!(k1.key_id().len(), 8);
    }

    #[test]
    fn shifts_stay_within_bounds_and_vary() {
        let a = with("a secret of sixteen bytes or more");
        let shifts: std::collections::BTreeSet<i64> =
            (0..200).map(|i| a.shift_days(&format!("l{i}"))).collect();
        assert!(shifts
            .iter()
            .all(|d| (-MAX_SHIFT_DAYS..=MAX_SHIFT_DAYS).contains(d)));
        assert!(shifts.len() > 50);
    }
}
