//! The public keys as published: every key of the keys directory's manifest and every key the
//! journal keeps (`signing_keys`, [`fieldtrail_journal::signing_keys`]), merged by key id. The
//! directory holds the key in force and may be lost; the journal keeps the public part of every
//! key that was ever recorded (by `keys init`, `keys rotate`, `serve` at start, and every signed
//! digest), so the JWK Set and the DID document still list the keys old credentials and
//! digests name when the directory is gone.
//!
//! **Trust.** A row of `signing_keys` is not published for being in the database: one INSERT
//! would otherwise publish anyone's key. The keys trusted from outside the database are the
//! keys directory's (its manifest) and the pinned roots (`FIELDTRAIL_SIGNING_ROOT`: key ids,
//! for a server without the directory, or one whose directory was lost); a key the journal
//! keeps is trusted when its endorsement ([`crate::signing::keys::endorse`], made by
//! `keys rotate` with the key before it) verifies with a trusted key, and so on down the
//! chain. The others are left out of the JWK Set and the DID document, logged, and listed by
//! `fieldtrail keys list` as untrusted ([`Union::untrusted`]).

use crate::signing::keys::{thumbprint, KeyError, KeyRecord, KeyStore};
use chrono::{DateTime, SubsecRound, Utc};
use fieldtrail_journal::signing_keys::PublishedKey;
use fieldtrail_journal::{Journal, JournalError};
use std::collections::{BTreeMap, BTreeSet};

impl KeyRecord {
    /// The record as the journal keeps it (public parts only).
    pub fn to_published(&self) -> PublishedKey {
        PublishedKey {
            kid: self.kid.clone(),
            public_jwk: self.jwk(),
            created_at: self.created_at,
            retired_at: self.retired_at,
            endorsement: self.endorsement.clone(),
        }
    }

    /// The record of a key the journal keeps.
    ///
    /// # Errors
    /// [`KeyError::Damaged`] when its JWK holds no 32-byte Ed25519 key whose thumbprint is
    /// its id.
    pub fn from_published(key: &PublishedKey) -> Result<Self, KeyError> {
        let damaged = |why: &str| KeyError::Damaged(format!("published key {}: {why}", key.kid));
        let x = key
            .public_jwk
            .get("x")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| damaged("its JWK has no x"))?;
        let record = KeyRecord {
            kid: key.kid.clone(),
            created_at: key.created_at,
            retired_at: key.retired_at,
            x: x.to_owned(),
            endorsement: key.endorsement.clone(),
        };
        if thumbprint(&record.public_key()?) != record.kid {
            return Err(damaged("its id is not the thumbprint of its public key"));
        }
        Ok(record)
    }
}

/// One published key and where it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The key (the directory's record when it has one; retired when either says so).
    pub record: KeyRecord,
    /// Listed in the keys directory's manifest.
    pub in_dir: bool,
    /// Kept by the journal.
    pub in_journal: bool,
}

/// The keys of the directory and of the journal merged by id, oldest first (of keys created
/// the same second, the retired ones first). A key is retired when either side says so (the
/// earlier time when both do).
pub fn merge(dir: &[KeyRecord], journal: &[KeyRecord]) -> Vec<Published> {
    let mut by_kid: BTreeMap<String, Published> = BTreeMap::new();
    for k in dir {
        by_kid.insert(
            k.kid.clone(),
            Published {
                record: k.clone(),
                in_dir: true,
                in_journal: false,
            },
        );
    }
    for k in journal {
        let entry = by_kid.entry(k.kid.clone()).or_insert_with(|| Published {
            record: k.clone(),
            in_dir: false,
            in_journal: false,
        });
        entry.in_journal = true;
        entry.record.retired_at = match (entry.record.retired_at, k.retired_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let mut keys: Vec<Published> = by_kid.into_values().collect();
    // Oldest first; of keys created the same second (a rotation right after `init`), the
    // retired ones first, as the journal lists them.
    let order = |k: &Published| {
        (
            k.record.created_at,
            k.record.retired_at.is_none(),
            k.record.retired_at,
            k.record.kid.clone(),
        )
    };
    keys.sort_by_key(order);
    keys
}

/// A key the journal keeps that is not published: no chain of endorsements leads from a
/// trusted key to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untrusted {
    /// The key as the journal keeps it.
    pub record: KeyRecord,
    /// Why it is not trusted, in a sentence.
    pub reason: String,
}

/// Of the keys the journal keeps, those trusted (see the module documentation) and those not:
/// `dir` are the keys directory's, `roots` the pinned key ids.
pub fn trusted(
    dir: &[KeyRecord],
    roots: &[String],
    journal: &[KeyRecord],
) -> (Vec<KeyRecord>, Vec<Untrusted>) {
    let mut anchors: Vec<KeyRecord> = dir.to_vec();
    let (mut kept, mut pending): (Vec<KeyRecord>, Vec<KeyRecord>) = journal
        .iter()
        .cloned()
        .partition(|k| roots.contains(&k.kid) || dir.iter().any(|d| d.kid == k.kid));
    anchors.extend(kept.iter().cloned());
    // Each pass trusts the keys endorsed by one trusted so far: down the chain, whatever the
    // order the rows come in.
    loop {
        let (endorsed, rest): (Vec<KeyRecord>, Vec<KeyRecord>) = pending
            .into_iter()
            .partition(|k| crate::signing::keys::endorser(k, &anchors).is_ok());
        pending = rest;
        if endorsed.is_empty() {
            break;
        }
        anchors.extend(endorsed.iter().cloned());
        kept.extend(endorsed);
    }
    let untrusted = pending
        .into_iter()
        .map(|k| {
            let reason = match crate::signing::keys::endorser(&k, journal) {
                Ok(by) => format!("it is endorsed by key {by}, which is not trusted"),
                Err(e) => e,
            };
            Untrusted {
                reason: format!(
                    "{reason}: no chain of endorsements leads to it from the keys directory or a pinned root (FIELDTRAIL_SIGNING_ROOT)"
                ),
                record: k,
            }
        })
        .collect();
    (kept, untrusted)
}

/// The published keys, and what could not be read on the way.
#[derive(Debug, Default)]
pub struct Union {
    /// Every trusted key, oldest first ([`merge`]).
    pub keys: Vec<Published>,
    /// The keys the journal keeps that are not trusted, hence not published ([`trusted`]).
    pub untrusted: Vec<Untrusted>,
    /// Why the keys directory could not be read (its keys are then missing from `keys`); a
    /// directory without a manifest is no error, it holds no key.
    pub dir_error: Option<KeyError>,
    /// Why the journal's keys could not be read, or which of them are damaged (left out).
    pub journal_errors: Vec<String>,
}

impl Union {
    /// The records alone, oldest first.
    pub fn records(&self) -> Vec<KeyRecord> {
        self.keys.iter().map(|k| k.record.clone()).collect()
    }

    /// The JWK Set of every key (RFC 7517 section 5).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.keys.iter().map(|k| k.record.jwk()).collect::<Vec<_>>()})
    }
}

/// The keys the journal keeps, damaged ones left out and named.
async fn journal_keys(journal: &Journal) -> Result<(Vec<KeyRecord>, Vec<String>), JournalError> {
    let mut damaged = Vec::new();
    let keys = journal
        .published_keys()
        .await?
        .iter()
        .filter_map(|k| {
            KeyRecord::from_published(k)
                .map_err(|e| damaged.push(e.to_string()))
                .ok()
        })
        .collect();
    Ok((keys, damaged))
}

/// The published keys: the directory's and the trusted ones of the journal's, merged. Neither
/// failing stops the other: what could not be read is said in [`Union::dir_error`] /
/// [`Union::journal_errors`]; the journal's keys not trusted are in [`Union::untrusted`].
pub async fn union(journal: &Journal, store: &KeyStore) -> Union {
    let (dir, dir_error) = match store.list() {
        Ok(keys) => (keys, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let (kept, journal_errors) = match journal_keys(journal).await {
        Ok(found) => found,
        Err(e) => (
            Vec::new(),
            vec![format!("the journal's published keys cannot be read: {e}")],
        ),
    };
    let (kept, untrusted) = trusted(&dir, store.roots(), &kept);
    Union {
        keys: merge(&dir, &kept),
        untrusted,
        dir_error,
        journal_errors,
    }
}

/// Records the keys of the directory in the journal (new keys, and the retirement of those
/// it kept in force), then answers [`union`].
///
/// # Errors
/// The directory's errors, then the journal's.
pub async fn record(journal: &Journal, store: &KeyStore) -> anyhow::Result<Union> {
    let dir = store.list()?;
    let published: Vec<PublishedKey> = dir.iter().map(KeyRecord::to_published).collect();
    journal.publish_keys(&published).await?;
    Ok(union(journal, store).await)
}

/// The keys the journal keeps as in force that the directory does not list: their private
/// keys are lost with the directory that held them. Records them as retired `at`; returns
/// their ids.
///
/// # Errors
/// The directory's and the journal's errors.
pub async fn retire_lost(
    journal: &Journal,
    store: &KeyStore,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let dir: BTreeSet<String> = store.list()?.into_iter().map(|k| k.kid).collect();
    let (kept, _) = journal_keys(journal).await?;
    let lost: Vec<PublishedKey> = kept
        .into_iter()
        .filter(|k| k.retired_at.is_none() && !dir.contains(&k.kid))
        .map(|mut k| {
            k.retired_at = Some(at.trunc_subsecs(0));
            k.to_published()
        })
        .collect();
    journal.publish_keys(&lost).await?;
    Ok(lost.into_iter().map(|k| k.kid).collect())
}

/// The key ids that signed digests the journal keeps but that no published key has: the
/// digests they signed can no longer be checked against the issuer's published keys.
///
/// # Errors
/// The journal's errors.
pub async fn unknown_digest_keys(
    journal: &Journal,
    union: &Union,
) -> Result<Vec<String>, JournalError> {
    let known: BTreeSet<&str> = union.keys.iter().map(|k| k.record.kid.as_str()).collect();
    let signers: BTreeSet<String> = journal
        .digests()
        .await?
        .into_iter()
        .map(|d| d.key_id)
        .collect();
    Ok(signers
        .into_iter()
        .filter(|kid| !known.contains(kid.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8, retired: Option<i64>) -> KeyRecord {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        let public = signing.verifying_key();
        KeyRecord {
            kid: thumbprint(&public),
            created_at: DateTime::from_timestamp(1_700_000_000 + i64::from(n), 0).unwrap(),
            retired_at: retired.map(|t| DateTime::from_timestamp(t, 0).unwrap()),
            x: base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                public.as_bytes(),
            ),
            endorsement: None,
        }
    }

    #[test]
    fn the_union_keeps_each_key_once_retired_when_either_side_says_so() {
        let (a, b, c) = (key(1, None), key(2, None), key(3, None));
        let mut b_retired = b.clone();
        b_retired.retired_at = Some(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let merged = merge(&[b.clone(), c.clone()], &[a.clone(), b_retired.clone()]);
        let kids: Vec<(&str, bool, bool)> = merged
            .iter()
            .map(|k| (k.record.kid.as_str(), k.in_dir, k.in_journal))
            .collect();
        assert_eq!(
            kids,
            vec![
                (a.kid.as_str(), false, true),
                (b.kid.as_str(), true, true),
                (c.kid.as_str(), true, false)
            ]
        );
        assert_eq!(merged[1].record.retired_at, b_retired.retired_at);
        assert_eq!(merged[2].record.retired_at, None);
    }

    #[test]
    fn of_keys_created_the_same_second_the_retired_one_comes_first() {
        let (mut old, new) = (key(1, Some(1_700_000_000)), key(2, None));
        old.created_at = new.created_at;
        for (dir, kept) in [
            (vec![new.clone()], vec![old.clone()]),
            (vec![old.clone()], vec![new.clone()]),
        ] {
            let merged = merge(&dir, &kept);
            assert_eq!(merged[0].record.kid, old.kid);
            assert_eq!(merged[1].record.kid, new.kid);
        }
    }

    #[test]
    fn only_keys_endorsed_down_from_a_trusted_key_are_trusted() {
        // One installation: a root and two rotations (each key endorsed by the one before).
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        store.init().unwrap();
        store.rotate().unwrap();
        store.rotate().unwrap();
        let chain = store.list().unwrap();
        assert!(chain[0].endorsement.is_none());
        assert!(chain[1..].iter().all(|k| k.endorsement.is_some()));
        // Another one's keys: its root, unendorsed, and its second key endorsed by it.
        let other = KeyStore::new(dir.path().join("other"));
        other.init().unwrap();
        other.rotate().unwrap();
        let forged = other.list().unwrap();
        // A copy of a genuine endorsement on another key proves nothing.
        let mut stolen = key(9, None);
        stolen.endorsement = chain[1].endorsement.clone();
        let mut journal: Vec<KeyRecord> = forged.clone();
        journal.push(stolen.clone());
        journal.extend(chain.iter().rev().cloned());
        let kids = |keys: &[KeyRecord]| {
            let mut kids: Vec<String> = keys.iter().map(|k| k.kid.clone()).collect();
            kids.sort();
            kids
        };
        // Trusted from the pinned root alone (no directory), in whatever order the rows come.
        let (kept, untrusted) = trusted(&[], &[chain[0].kid.clone()], &journal);
        assert_eq!(kids(&kept), kids(&chain));
        let left: Vec<KeyRecord> = untrusted.iter().map(|u| u.record.clone()).collect();
        assert_eq!(
            kids(&left),
            kids(&[forged[0].clone(), forged[1].clone(), stolen])
        );
        let reason = |kid: &str| {
            untrusted
                .iter()
                .find(|u| u.record.kid == kid)
                .unwrap()
                .reason
                .clone()
        };
        assert!(reason(&forged[0].kid).starts_with("it carries no endorsement"));
        assert!(
            reason(&forged[1].kid).contains("which is not trusted"),
            "{}",
            reason(&forged[1].kid)
        );
        assert!(reason(&key(9, None).kid).contains("names another key"));
        // From the keys directory's keys (the last one only, say): its chain's later keys.
        let (kept, _) = trusted(&chain[2..], &[], &journal);
        assert_eq!(kids(&kept), kids(&chain[2..]));
        // Nothing trusted outside the database: nothing trusted.
        let (kept, untrusted) = trusted(&[], &[], &journal);
        assert!(kept.is_empty());
        assert_eq!(untrusted.len(), journal.len());
    }

    #[test]
    fn a_published_key_round_trips_and_a_damaged_one_is_refused() {
        let k = key(7, Some(1_800_000_000));
        assert_eq!(KeyRecord::from_published(&k.to_published()).unwrap(), k);
        let mut wrong = k.to_published();
        wrong.kid = key(8, None).kid;
        let e = KeyRecord::from_published(&wrong).unwrap_err().to_string();
        assert!(e.contains("not the thumbprint"), "{e}");
    }
}
