//! A cohort's certificates as a W3C Bitstring Status List v1.0 (<https://www.w3.org/TR/vc-bitstring-status-list/>)
//! for revocation: each certificate credential carries a `BitstringStatusListEntry` naming its
//! index in its cohort's list; the list itself is a `BitstringStatusListCredential` whose
//! `encodedList` has the bit of every revoked certificate set.
//!
//! **Index.** A certificate's index is the stream version of its `certificate_awarded` event in
//! the cohort's stream: stable (the event never changes), unique in the list, never reused (a
//! new award after a revocation is a new event, so a new index). One list per cohort, at
//! `<base>credentials/status/<cohort id>`, of at least [`MIN_BITS`] bits (the specification's
//! minimum, for group privacy), in steps of [`MIN_BITS`] when a stream is longer.
//!
//! **Revocation** is read from one place, [`revoked_learner`]: the event that revokes a learner's
//! certificate in force. Pure: no I/O, no clock.

use crate::formats::{latest_recorded, Publisher};
use crate::RecordedEvent;
use chrono::SecondsFormat;
use fieldtrail_domain::{AnyEvent, CohortEvent};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write as _;

/// The smallest list (bits): 16 KiB uncompressed, the specification's minimum.
pub const MIN_BITS: u64 = 131_072;

/// The `statusPurpose` of fieldtrail's lists.
pub const PURPOSE: &str = "revocation";

/// The learner whose certificate in force `event` revokes, if it revokes one.
///
/// This is the one place revocation is read from: everything below follows from what it
/// answers (`certificate_revoked`, the event of `revoke_certificate`).
pub fn revoked_learner(event: &AnyEvent) -> Option<&str> {
    match event {
        AnyEvent::Cohort(CohortEvent::CertificateRevoked { learner_id, .. }) => {
            Some(learner_id.as_str())
        }
        _ => None,
    }
}

/// One certificate awarded in a cohort.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateStatus {
    /// The learner.
    pub learner_id: String,
    /// Its index in the cohort's list (the award's stream version).
    pub index: u64,
    /// Whether it was revoked since ([`revoked_learner`]).
    pub revoked: bool,
}

/// Every certificate of a cohort's stream (its events in stream order), by index.
pub fn certificates(cohort: &[RecordedEvent]) -> BTreeMap<u64, CertificateStatus> {
    let mut all: BTreeMap<u64, CertificateStatus> = BTreeMap::new();
    let mut in_force: BTreeMap<String, u64> = BTreeMap::new();
    for e in cohort {
        if let AnyEvent::Cohort(CohortEvent::CertificateAwarded { learner_id, .. }) = &e.event {
            let index = u64::try_from(e.stream_version).unwrap_or_default();
            in_force.insert(learner_id.to_string(), index);
            all.insert(
                index,
                CertificateStatus {
                    learner_id: learner_id.to_string(),
                    index,
                    revoked: false,
                },
            );
        } else if let Some(learner) = revoked_learner(&e.event) {
            if let Some(index) = in_force.remove(learner) {
                if let Some(c) = all.get_mut(&index) {
                    c.revoked = true;
                }
            }
        }
    }
    all
}

/// The index of the learner's latest certificate in the cohort, if they were ever awarded one.
pub fn certificate_index(cohort: &[RecordedEvent], learner_id: &str) -> Option<u64> {
    certificates(cohort)
        .values()
        .rev()
        .find(|c| c.learner_id == learner_id)
        .map(|c| c.index)
}

/// The URL of a cohort's list credential.
pub fn list_url(publisher: &Publisher, cohort_id: &str) -> String {
    publisher.iri(&format!("credentials/status/{cohort_id}"))
}

/// The `credentialStatus` of the certificate at `index` in `cohort_id`'s list.
pub fn entry(publisher: &Publisher, cohort_id: &str, index: u64) -> Value {
    let list = list_url(publisher, cohort_id);
    json!({
        "id": format!("{list}#{index}"),
        "type": "BitstringStatusListEntry",
        "statusPurpose": PURPOSE,
        "statusListIndex": index.to_string(),
        "statusListCredential": list,
    })
}

/// The bitstring with the bits at `set` on, at least [`MIN_BITS`] long (multiples of it):
/// index 0 is the most significant bit of the first byte (the specification's order).
pub fn bitstring(set: impl IntoIterator<Item = u64> + Clone) -> Vec<u8> {
    let highest = set.clone().into_iter().max().unwrap_or(0);
    let bits = (highest / MIN_BITS + 1) * MIN_BITS;
    let mut bytes = vec![0u8; usize::try_from(bits / 8).unwrap_or(0)];
    for index in set {
        if let Some(byte) = usize::try_from(index / 8)
            .ok()
            .and_then(|i| bytes.get_mut(i))
        {
            *byte |= 0x80 >> (index % 8);
        }
    }
    bytes
}

/// The `encodedList` of a bitstring: GZIP (RFC 1952), then base64url without padding, with the
/// multibase prefix `u`.
pub fn encode_list(bits: &[u8]) -> String {
    use base64::Engine as _;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = gzip.write_all(bits);
    let compressed = gzip.finish().unwrap_or_default();
    format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(compressed)
    )
}

/// The cohort's `BitstringStatusListCredential` (unsigned: the caller secures it), issued by
/// `publisher`'s DID, valid from the latest `recorded_at` of the cohort's events.
pub fn list_credential(publisher: &Publisher, cohort_id: &str, cohort: &[RecordedEvent]) -> Value {
    let revoked = certificates(cohort)
        .into_values()
        .filter(|c| c.revoked)
        .map(|c| c.index)
        .collect::<Vec<u64>>();
    let url = list_url(publisher, cohort_id);
    let valid_from = latest_recorded(cohort).map_or_else(
        || "1970-01-01T00:00:00Z".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    json!({
        "@context": [crate::formats::clr::CONTEXT_VC],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": publisher.did(),
        "validFrom": valid_from,
        "credentialSubject": {
            "id": format!("{url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": PURPOSE,
            "encodedList": encode_list(&bitstring(revoked)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testlog::scenario;
    use std::io::Read as _;

    fn decode(encoded: &str) -> Vec<u8> {
        use base64::Engine as _;
        let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.strip_prefix('u').unwrap())
            .unwrap();
        let mut bits = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut bits)
            .unwrap();
        bits
    }

    #[test]
    fn each_award_gets_its_stream_version_as_index_and_none_is_revoked() {
        let log = scenario();
        let all = certificates(&log.cohort);
        assert!(!all.is_empty());
        for c in all.values() {
            assert!(!c.revoked);
            let award = log
                .cohort
                .iter()
                .find(|e| {
                    e.event_type == "certificate_awarded" && e.stream_version as u64 == c.index
                })
                .unwrap();
            assert_eq!(award.stream_version as u64, c.index);
        }
        let l1 = certificate_index(&log.cohort, "l1").unwrap();
        assert_eq!(all[&l1].learner_id, "l1");
        assert_eq!(certificate_index(&log.cohort, "nobody"), None);
        let list = list_credential(&Publisher::default(), "c1", &log.cohort);
        assert_eq!(
            list["id"],
            "https://fieldtrail.example/credentials/status/c1"
        );
        assert_eq!(list["issuer"], "did:web:fieldtrail.example");
        let bits = decode(list["credentialSubject"]["encodedList"].as_str().unwrap());
        assert_eq!(bits.len() as u64, MIN_BITS / 8);
        assert!(bits.iter().all(|b| *b == 0));
        assert_eq!(
            entry(&Publisher::default(), "c1", 41)["statusListIndex"],
            "41"
        );
    }

    #[test]
    fn a_revocation_sets_the_bit_of_the_award_it_revokes_and_a_new_award_gets_a_new_index() {
        let mut log = scenario();
        let first = certificate_index(&log.cohort, "l1").unwrap();
        log.push(
            "cohort",
            "certificate_revoked",
            "2026-07-01T09:00:00+02:00",
            "staff:direction",
            serde_json::json!({"cohort_id": "c1", "learner_id": "l1", "reason": "erreur du jury"}),
        );
        let all = certificates(&log.cohort);
        assert!(all[&first].revoked);
        assert_eq!(all.values().filter(|c| c.revoked).count(), 1);
        let list = list_credential(&Publisher::default(), "c1", &log.cohort);
        let bits = decode(list["credentialSubject"]["encodedList"].as_str().unwrap());
        assert_eq!(bits, bitstring([first]));
        log.push(
            "cohort",
            "certificate_awarded",
            "2026-07-02T09:00:00+02:00",
            "staff:direction",
            serde_json::json!({"cohort_id": "c1", "learner_id": "l1"}),
        );
        let again = certificate_index(&log.cohort, "l1").unwrap();
        assert!(again > first);
        let all = certificates(&log.cohort);
        assert!(all[&first].revoked && !all[&again].revoked);
    }

    #[test]
    fn a_revoked_index_is_its_bit_counted_from_the_left() {
        let bits = bitstring([0, 9, MIN_BITS - 1]);
        assert_eq!(bits.len() as u64, MIN_BITS / 8);
        assert_eq!((bits[0], bits[1]), (0x80, 0x40));
        assert_eq!(bits[bits.len() - 1], 0x01);
        assert_eq!(bitstring([MIN_BITS]).len() as u64, 2 * MIN_BITS / 8);
        assert_eq!(decode(&encode_list(&bits)), bits);
    }
}
