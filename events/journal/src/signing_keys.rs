//! The public signing keys kept beside the journal (table `signing_keys`: PostgreSQL migrations
//! V6 and V10, SQLite `schema.sql` user_versions 4 and 6): every key the services ever signed
//! with, its id, its public JWK, its dates and its endorsement by the key before it, so that
//! the published keys (JWK Set, DID document) survive the loss of the keys directory. Public
//! parts only: a private key never reaches the database. A key is never deleted and never
//! changed, except once: its retirement time is set when it is retired (triggers refuse
//! anything else). A row is not trusted for being here: the services publish only the keys
//! whose endorsements lead back to a key they trust from outside the database
//! (`fieldtrail::signing::published`). The keys themselves are made and used by the services
//! (`fieldtrail::signing`); this module only stores and lists.

use crate::JournalError;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One public signing key, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedKey {
    /// The key id (its RFC 7638 JWK thumbprint, base64url).
    pub kid: String,
    /// The public key as a JWK (`kty` `OKP`, `crv` `Ed25519`, `x`, `kid`, ...).
    pub public_jwk: Value,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was retired (UTC); `None` while in force.
    pub retired_at: Option<DateTime<Utc>>,
    /// The endorsement of this key by the key in force before it (a JWS compact
    /// serialization, checked by the services); `None` for a first key (a root) and for keys
    /// recorded before keys were endorsed.
    pub endorsement: Option<String>,
}

impl PublishedKey {
    /// Whether the key would be stored: a base64url id, a JWK object naming the same id
    /// with an `x` (what [`crate::Backend::publish_keys`] checks).
    pub fn is_well_formed(&self) -> bool {
        check(self).is_ok()
    }
}

/// Checks a key before it is stored: a base64url id, a JWK object naming the same id.
///
/// # Errors
/// [`JournalError::Other`] naming what is wrong.
pub(crate) fn check(key: &PublishedKey) -> Result<(), JournalError> {
    let id_ok = !key.kid.is_empty()
        && key.kid.len() <= 128
        && key
            .kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let jwk_ok = key.public_jwk.is_object()
        && key.public_jwk.get("x").is_some_and(Value::is_string)
        && key.public_jwk.get("kid").and_then(Value::as_str) == Some(key.kid.as_str());
    if !id_ok || !jwk_ok {
        return Err(JournalError::Other(format!(
            "a published key needs a base64url id and a public JWK with that kid and an x (key {:.40})",
            key.kid
        )));
    }
    Ok(())
}

pub(crate) mod pg {
    use super::PublishedKey;
    use crate::JournalError;
    use deadpool_postgres::Pool;

    /// Stores each key not stored yet, and the retirement of each stored one that was in
    /// force; changes nothing else (one transaction).
    pub(crate) async fn publish(pool: &Pool, keys: &[PublishedKey]) -> Result<(), JournalError> {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        for k in keys {
            tx.execute(
                "INSERT INTO signing_keys (kid, public_jwk, created_at, retired_at, endorsement)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kid) DO UPDATE SET retired_at = excluded.retired_at
                 WHERE signing_keys.retired_at IS NULL AND excluded.retired_at IS NOT NULL",
                &[
                    &k.kid,
                    &k.public_jwk,
                    &k.created_at,
                    &k.retired_at,
                    &k.endorsement,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every key, oldest first (of keys created the same second, the retired ones first).
    pub(crate) async fn list(pool: &Pool) -> Result<Vec<PublishedKey>, JournalError> {
        let client = pool.get().await?;
        let rows = client
            .query(
                "SELECT kid, public_jwk, created_at, retired_at, endorsement FROM signing_keys
                 ORDER BY created_at, retired_at IS NULL, retired_at, kid",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PublishedKey {
                kid: r.get(0),
                public_jwk: r.get(1),
                created_at: r.get(2),
                retired_at: r.get(3),
                endorsement: r.get(4),
            })
            .collect())
    }
}

pub(crate) mod sqlite {
    use super::PublishedKey;
    use crate::sqlite::{instant, micros};
    use crate::JournalError;
    use rusqlite::{params, Transaction};

    /// As [`super::pg::publish`], under the write lock.
    pub(crate) fn publish(tx: &Transaction<'_>, keys: &[PublishedKey]) -> Result<(), JournalError> {
        for k in keys {
            tx.execute(
                "INSERT INTO signing_keys (kid, public_jwk, created_at, retired_at, endorsement)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kid) DO UPDATE SET retired_at = excluded.retired_at
                 WHERE signing_keys.retired_at IS NULL AND excluded.retired_at IS NOT NULL",
                params![
                    k.kid,
                    k.public_jwk.to_string(),
                    micros(&k.created_at),
                    k.retired_at.as_ref().map(micros),
                    k.endorsement
                ],
            )?;
        }
        Ok(())
    }

    /// Every key, oldest first.
    pub(crate) fn list(tx: &Transaction<'_>) -> Result<Vec<PublishedKey>, JournalError> {
        let mut statement = tx.prepare(
            "SELECT kid, public_jwk, created_at, retired_at, endorsement FROM signing_keys
             ORDER BY created_at, retired_at IS NULL, retired_at, kid",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (kid, jwk, created, retired, endorsement) = row?;
            let public_jwk = serde_json::from_str(&jwk).map_err(|e| {
                JournalError::Other(format!(
                    "signing key {kid}: its stored JWK does not parse: {e}"
                ))
            })?;
            keys.push(PublishedKey {
                kid,
                public_jwk,
                created_at: instant(created),
                retired_at: retired.map(instant),
                endorsement,
            });
        }
        Ok(keys)
    }
}
