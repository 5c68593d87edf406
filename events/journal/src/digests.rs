//! The signed digests kept beside the journal (table `signed_digests`: PostgreSQL migration
//! V5, SQLite `schema.sql` user_version 3): what `fieldtrail audit digest` and `serve`'s
//! periodic job signed. Append-only, like the events (triggers refuse UPDATE and DELETE). The
//! signature itself is made and checked by the services (`fieldtrail::signing`); this module
//! only stores and lists.

use crate::JournalError;
use chrono::{DateTime, Utc};

/// One signed digest of the journal's head, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignedDigest {
    /// Its number (assigned when stored; 0 before; a digest stored with a number, as
    /// `fieldtrail copy` does, keeps it).
    pub digest_id: i64,
    /// The transaction id of the cut's last row where it was signed (advisory: a copy of
    /// the journal to another database gives its rows other transaction ids).
    pub tx_id: u64,
    /// The global position of the cut's last row, which names the cut: the cut is every row
    /// up to this one in the global log's order (positions are kept by every copy).
    pub position: i64,
    /// Events in the cut.
    pub events: i64,
    /// The journal digest of the cut (RFC 6962 Merkle root of the stream heads), hex.
    pub digest: String,
    /// The hash of the cut's last event, hex.
    pub head_hash: String,
    /// When it was signed (UTC, microseconds).
    pub signed_at: DateTime<Utc>,
    /// The key that signed it (its JWK thumbprint).
    pub key_id: String,
    /// The signed statement (JWS compact serialization).
    pub jws: String,
}

pub(crate) mod pg {
    use super::SignedDigest;
    use crate::JournalError;
    use deadpool_postgres::Pool;

    /// Stores `d` (under its own number when it has one: a copied digest); returns its
    /// number.
    pub(crate) async fn store(pool: &Pool, d: &SignedDigest) -> Result<i64, JournalError> {
        let mut client = pool.get().await?;
        let tx_id = i64::try_from(d.tx_id).unwrap_or(i64::MAX);
        if d.digest_id > 0 {
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO signed_digests (digest_id, tx_id, position, events, digest, head_hash, signed_at, key_id, jws)
                 OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&d.digest_id, &tx_id, &d.position, &d.events, &d.digest, &d.head_hash, &d.signed_at, &d.key_id, &d.jws],
            )
            .await?;
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('signed_digests', 'digest_id'), (SELECT max(digest_id) FROM signed_digests))",
                &[],
            )
            .await?;
            tx.commit().await?;
            return Ok(d.digest_id);
        }
        let row = client
            .query_one(
                "INSERT INTO signed_digests (tx_id, position, events, digest, head_hash, signed_at, key_id, jws)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING digest_id",
                &[&tx_id, &d.position, &d.events, &d.digest, &d.head_hash, &d.signed_at, &d.key_id, &d.jws],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Every digest, oldest first.
    pub(crate) async fn list(pool: &Pool) -> Result<Vec<SignedDigest>, JournalError> {
        let client = pool.get().await?;
        let rows = client
            .query(
                "SELECT digest_id, tx_id, position, events, digest, head_hash, signed_at, key_id, jws
                 FROM signed_digests ORDER BY digest_id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SignedDigest {
                digest_id: r.get(0),
                tx_id: u64::try_from(r.get::<_, i64>(1)).unwrap_or_default(),
                position: r.get(2),
                events: r.get(3),
                digest: r.get(4),
                head_hash: r.get(5),
                signed_at: r.get(6),
                key_id: r.get(7),
                jws: r.get(8),
            })
            .collect())
    }
}

pub(crate) mod sqlite {
    use super::SignedDigest;
    use crate::sqlite::{instant, micros};
    use crate::JournalError;
    use rusqlite::{params, Transaction};

    /// Stores `d` (under its own number when it has one); returns its number.
    pub(crate) fn store(tx: &Transaction<'_>, d: &SignedDigest) -> Result<i64, JournalError> {
        tx.execute(
            "INSERT INTO signed_digests (digest_id, tx_id, position, events, digest, head_hash, signed_at, key_id, jws)
             VALUES (?9, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                i64::try_from(d.tx_id).unwrap_or(i64::MAX),
                d.position,
                d.events,
                d.digest,
                d.head_hash,
                micros(&d.signed_at),
                d.key_id,
                d.jws,
                (d.digest_id > 0).then_some(d.digest_id)
            ],
        )?;
        Ok(tx.last_insert_rowid())
    }

    /// Every digest, oldest first.
    pub(crate) fn list(tx: &Transaction<'_>) -> Result<Vec<SignedDigest>, JournalError> {
        let mut statement = tx.prepare(
            "SELECT digest_id, tx_id, position, events, digest, head_hash, signed_at, key_id, jws
             FROM signed_digests ORDER BY digest_id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(SignedDigest {
                digest_id: r.get(0)?,
                tx_id: u64::try_from(r.get::<_, i64>(1)?).unwrap_or_default(),
                position: r.get(2)?,
                events: r.get(3)?,
                digest: r.get(4)?,
                head_hash: r.get(5)?,
                signed_at: instant(r.get(6)?),
                key_id: r.get(7)?,
                jws: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Checks a digest before it is stored: hex fields and a statement.
///
/// # Errors
/// [`JournalError::Other`] naming the field.
pub(crate) fn check(d: &SignedDigest) -> Result<(), JournalError> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex64(&d.digest) || !hex64(&d.head_hash) || d.jws.split('.').count() != 3 {
        return Err(JournalError::Other(
            "a signed digest needs a 64-hex-digit digest and head hash and a JWS".into(),
        ));
    }
    Ok(())
}
