//! fieldtrail's records in the formats other systems already read. Pure renderers: each takes
//! the events of a few streams (as [`RecordedEvent`]s, in stream order) and, for the transcript,
//! the transcript document, and returns text or JSON; no I/O, no clock, no panic on any input.
//!
//! - [`ics`]: a cohort's timetable as an iCalendar object (RFC 5545), for calendar
//!   applications (one `VEVENT` per session, `VTIMEZONE` Europe/Paris).
//! - [`clr`]: a learner's transcript as a 1EdTech Comprehensive Learner Record 2.0
//!   `ClrCredential` (JSON-LD, with Open Badges 3.0 `AchievementCredential`s inside), issued by
//!   the publisher's `did:web`; the services secure it as a VC-JWT.
//! - [`xapi`]: a field study's evaluative events as xAPI 1.0.3 statements, corrections as
//!   voiding statements.
//! - [`status`]: a cohort's certificates as a W3C Bitstring Status List (revocation), the
//!   list credential and each certificate's `BitstringStatusListEntry`.
//!
//! Identifiers that must be IRIs (achievements, activities, the issuer, accounts' home page) are
//! built under a [`Publisher`]'s base URL, so that a deployment can put them under its own
//! domain; the output of a renderer depends only on its inputs (same events, same bytes).

pub mod clr;
pub mod ics;
pub mod status;
pub mod xapi;

use crate::RecordedEvent;
use chrono::{DateTime, NaiveDate, Utc};
use fieldtrail_domain::command::ModulePlan;
use fieldtrail_domain::{AnyEvent, CohortEvent, ProgrammeEvent};
use uuid::Uuid;

/// The name space of every UUID the renderers derive (UUID version 5, RFC 9562 5.5): credential
/// ids of the CLR, statement ids and registrations of xAPI. A constant, so that the same
/// record always gets the same id.
pub const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x43c9_61bb_ff32_4429_9fe0_8c93_534a_13a1);

/// The UUID version 5 of `name` in [`UUID_NAMESPACE`].
pub fn derived_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes())
}

/// The base URL used when none is configured. `.example` is reserved (RFC 2606): it names no
/// real host, so that nothing published under it can be mistaken for a resolvable address.
pub const DEFAULT_BASE_URL: &str = "https://fieldtrail.example/";

/// The issuer name used when none is configured.
pub const DEFAULT_ISSUER_NAME: &str = "fieldtrail";

/// Who publishes the exports: the base URL under which achievement, activity and issuer IRIs
/// are minted (always ending with `/`), and the issuing organisation's display name (the CLR
/// `issuer.name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    /// Absolute `http`/`https` URL ending with `/`, e.g. `https://fieldtrail.example/`.
    pub base_url: String,
    /// Display name of the issuing organisation, e.g. `Centre de formation`.
    pub name: String,
}

impl Default for Publisher {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            name: DEFAULT_ISSUER_NAME.to_owned(),
        }
    }
}

impl Publisher {
    /// A publisher under `base_url` (a `/` is appended when missing) named `name`.
    ///
    /// # Errors
    /// A sentence when `base_url` is not an absolute `http://` or `https://` URL with a host
    /// and without spaces, query or fragment, or when `name` is blank.
    pub fn new(base_url: &str, name: &str) -> Result<Self, String> {
        let rest = base_url
            .strip_prefix("https://")
            .or_else(|| base_url.strip_prefix("http://"));
        let valid = rest.is_some_and(|r| {
            let host = r.split('/').next().unwrap_or_default();
            !host.is_empty()
                && !r.contains(['?', '#'])
                && !r.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        if !valid {
            return Err(format!(
                "{base_url:?} is not an absolute http(s) URL (e.g. https://training.example.org/)"
            ));
        }
        if name.trim().is_empty() {
            return Err("the issuer name must not be empty".to_owned());
        }
        let mut base_url = base_url.to_owned();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Ok(Self {
            base_url,
            name: name.to_owned(),
        })
    }

    /// `base_url` followed by `path` (which must not start with `/`).
    pub fn iri(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path.trim_start_matches('/'))
    }

    /// The issuer's DID by the `did:web` method (W3C CCG "did:web Method Specification",
    /// section 3.2): `did:web:` and the base URL's host, a port's `:` written `%3A`, then each
    /// path segment after a `:`. `https://training.example.org/` gives
    /// `did:web:training.example.org`; `http://127.0.0.1:8080/` gives `did:web:127.0.0.1%3A8080`.
    pub fn did(&self) -> String {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        let mut parts = rest.split('/').filter(|p| !p.is_empty());
        let host = parts.next().unwrap_or_default().replace(':', "%3A");
        let mut did = format!("did:web:{host}");
        for segment in parts {
            did.push(':');
            did.push_str(segment);
        }
        did
    }

    /// Where a `did:web` resolver fetches the issuer's DID document: `/.well-known/did.json`
    /// under a base URL without a path, else `did.json` under it.
    pub fn did_document_url(&self) -> String {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        if rest.trim_end_matches('/').contains('/') {
            self.iri("did.json")
        } else {
            self.iri(".well-known/did.json")
        }
    }
}

/// What an export needs of a programme: its title and modules (with their units' titles and
/// budgets in half-days), from its `programme_defined` event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgrammeOutline {
    /// Programme id (empty when unknown).
    pub programme_id: String,
    /// Title.
    pub title: String,
    /// Modules in programme order.
    pub modules: Vec<ModulePlan>,
}

impl ProgrammeOutline {
    /// The outline from a programme stream's events (the first `programme_defined`); an empty
    /// outline when there is none.
    pub fn from_events(events: &[RecordedEvent]) -> Self {
        events
            .iter()
            .find_map(|e| match &e.event {
                AnyEvent::Programme(ProgrammeEvent::ProgrammeDefined {
                    programme_id,
                    title,
                    modules,
                }) => Some(Self {
                    programme_id: programme_id.to_string(),
                    title: title.clone(),
                    modules: modules.clone(),
                }),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// A module's title, if the programme has the module.
    pub fn module_title(&self, module_id: &str) -> Option<&str> {
        self.modules
            .iter()
            .find(|m| m.module_id.as_str() == module_id)
            .map(|m| m.title.as_str())
    }

    /// A unit's title, if one of the programme's modules has the unit.
    pub fn unit_title(&self, unit_id: &str) -> Option<&str> {
        self.modules
            .iter()
            .flat_map(|m| m.units.iter())
            .find(|u| u.unit_id.as_str() == unit_id)
            .map(|u| u.title.as_str())
    }
}

/// What an export needs of a cohort: its `cohort_opened` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CohortOutline {
    /// Cohort id.
    pub cohort_id: String,
    /// The programme it follows.
    pub programme_id: String,
    /// Title, e.g. `Promotion 2025-2026`.
    pub title: String,
    /// First day (Europe/Paris calendar date).
    pub starts_on: NaiveDate,
    /// Last day (Europe/Paris calendar date).
    pub ends_on: NaiveDate,
}

impl CohortOutline {
    /// The outline from a cohort stream's events (its `cohort_opened`), `None` without one.
    pub fn from_events(events: &[RecordedEvent]) -> Option<Self> {
        events.iter().find_map(|e| match &e.event {
            AnyEvent::Cohort(CohortEvent::CohortOpened {
                cohort_id,
                programme_id,
                title,
                starts_on,
                ends_on,
            }) => Some(Self {
                cohort_id: cohort_id.to_string(),
                programme_id: programme_id.to_string(),
                title: title.clone(),
                starts_on: *starts_on,
                ends_on: *ends_on,
            }),
            _ => None,
        })
    }
}

/// The latest `recorded_at` among `events`, `None` when there are none.
pub(crate) fn latest_recorded<'a, I: IntoIterator<Item = &'a RecordedEvent>>(
    events: I,
) -> Option<DateTime<Utc>> {
    events.into_iter().map(|e| e.recorded_at).max()
}

#[cfg(test)]
pub(crate) mod testlog;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_checks_and_normalises_its_base() {
        let p = Publisher::new("https://training.example.org", "Centre").unwrap();
        assert_eq!(p.base_url, "https://training.example.org/");
        assert_eq!(
            p.iri("/cohorts/c1"),
            "https://training.example.org/cohorts/c1"
        );
        assert!(Publisher::new("training.example.org", "C").is_err());
        assert!(Publisher::new("https://", "C").is_err());
        assert!(Publisher::new("https://a.example/?q", "C").is_err());
        assert!(Publisher::new("https://a b.example/", "C").is_err());
        assert!(Publisher::new("https://a.example/", " ").is_err());
        assert_eq!(Publisher::default().base_url, DEFAULT_BASE_URL);
    }

    #[test]
    fn the_did_web_of_a_base_url_follows_the_method() {
        // The examples of the did:web specification, section 3.2.
        let did = |url: &str| Publisher::new(url, "C").unwrap();
        let plain = did("https://w3c-ccg.github.io/");
        assert_eq!(plain.did(), "did:web:w3c-ccg.github.io");
        assert_eq!(
            plain.did_document_url(),
            "https://w3c-ccg.github.io/.well-known/did.json"
        );
        let path = did("https://w3c-ccg.github.io/user/alice");
        assert_eq!(path.did(), "did:web:w3c-ccg.github.io:user:alice");
        assert_eq!(
            path.did_document_url(),
            "https://w3c-ccg.github.io/user/alice/did.json"
        );
        assert_eq!(
            did("https://example.com:3000/").did(),
            "did:web:example.com%3A3000"
        );
    }
}
