//! API tokens: `ftk_<token id>_<secret>`, shown once at creation; the database keeps the
//! SHA-256 of the secret only.
//!
//! Why SHA-256 and not a password hash: the secret is 244 random bits (two v4 UUIDs), not a
//! human password, so a slow hash adds no protection against guessing and would cost every
//! request tens of milliseconds. [`verify`] compares digests in constant time.

use super::{Principal, Role};
use fieldtrail_journal::{Journal, JournalError, TokenRecord};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A token as listed (without its secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// The token's id (the middle part of the token).
    pub token_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its cohort scope.
    pub cohort_id: Option<String>,
    /// Its learner scope.
    pub learner_id: Option<String>,
    /// When it was created (UTC).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked (UTC), if it was.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `ftk_<32 hex>_<64 hex>` into its id and secret.
pub fn parse(token: &str) -> Option<(Uuid, &str)> {
    let rest = token.strip_prefix("ftk_")?;
    let (id, secret) = rest.split_once('_')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// Creates a token and returns it (the only time the secret is shown).
///
/// # Errors
/// A message naming the missing scope (`--cohort` for facilitator, jury and learner;
/// `--learner` for learner), an invalid id, or a database error.
pub async fn create(
    journal: &Journal,
    name: &str,
    role: Role,
    cohort: Option<&str>,
    learner: Option<&str>,
) -> anyhow::Result<String> {
    let (needs_cohort, needs_learner) = role.scope_required();
    anyhow::ensure!(
        !name.trim().is_empty() && name.len() <= 128 && !name.contains(':'),
        "--name: 1 to 128 characters, no ':'"
    );
    anyhow::ensure!(
        !needs_cohort || cohort.is_some(),
        "a {role} token needs --cohort"
    );
    anyhow::ensure!(
        !needs_learner || learner.is_some(),
        "a {role} token needs --learner"
    );
    for id in cohort.iter().chain(learner.iter()) {
        fieldtrail_domain::Id::parse(id).map_err(anyhow::Error::msg)?;
    }
    let token_id = Uuid::new_v4();
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    journal
        .insert_token(&TokenRecord {
            token_id,
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            cohort_id: cohort.map(str::to_owned),
            learner_id: learner.map(str::to_owned),
            secret_sha256: digest(&secret),
            created_at: chrono::Utc::now(),
            revoked_at: None,
        })
        .await?;
    Ok(format!("ftk_{}_{secret}", token_id.simple()))
}

/// Every token, newest first.
///
/// # Errors
/// A database error.
pub async fn list(journal: &Journal) -> anyhow::Result<Vec<TokenInfo>> {
    Ok(journal
        .tokens()
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            token_id: t.token_id,
            name: t.name,
            role: t.role,
            cohort_id: t.cohort_id,
            learner_id: t.learner_id,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        })
        .collect())
}

/// Revokes the token `token_id`; returns whether a live token was revoked.
///
/// # Errors
/// A database error.
pub async fn revoke(journal: &Journal, token_id: Uuid) -> anyhow::Result<bool> {
    Ok(journal.revoke_token(token_id).await?)
}

/// The principal of a presented token, if it is well-formed, known, not revoked and its
/// secret matches.
///
/// # Errors
/// A journal error (the caller answers 503).
pub async fn verify(journal: &Journal, token: &str) -> Result<Option<Principal>, JournalError> {
    let Some((token_id, secret)) = parse(token) else {
        return Ok(None);
    };
    let Some(stored) = journal.live_token(token_id).await? else {
        return Ok(None);
    };
    if !constant_time_eq(stored.secret_sha256.as_bytes(), digest(secret).as_bytes()) {
        return Ok(None);
    }
    let Some(role) = Role::parse(&stored.role) else {
        return Ok(None);
    };
    Ok(Some(Principal {
        token_id,
        name: stored.name,
        role,
        cohort: stored.cohort_id,
        learner: stored.learner_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_shape() {
        let id = Uuid::new_v4();
        let secret = "a".repeat(64);
        assert_eq!(
            parse(&format!("ftk_{}_{secret}", id.simple())),
            Some((id, secret.as_str()))
        );
        for bad in [
            "",
            "ftk_",
            "Bearer x",
            &format!("ftk_{}_{}", id.simple(), "a".repeat(63)),
            &format!("ftk_nope_{secret}"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
