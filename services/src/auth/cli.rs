//! `fieldtrail token create|list|revoke`: the operator's side of the API tokens.

use super::{tokens, Role};
use clap::Subcommand;
use fieldtrail_journal::Journal;

/// The token subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenJob {
    /// Create a token and print it once (it cannot be shown again).
    Create {
        /// The role (README "Roles").
        #[arg(long, value_enum)]
        role: Role,
        /// Who or what holds it (recorded as the actor of its commands: `role:name`).
        #[arg(long)]
        name: String,
        /// The cohort it is scoped to (facilitator, jury, learner).
        #[arg(long)]
        cohort: Option<String>,
        /// The learner it is (learner).
        #[arg(long)]
        learner: Option<String>,
    },
    /// List the tokens (never their secrets).
    List,
    /// Revoke a token by its id (the middle part of the token, or as listed).
    Revoke {
        /// The token's id.
        token_id: uuid::Uuid,
    },
}

/// Runs one token subcommand, printing to stdout.
///
/// # Errors
/// A missing scope, an unknown token id, or a database error.
pub async fn run(journal: &Journal, job: TokenJob) -> anyhow::Result<()> {
    match job {
        TokenJob::Create {
            role,
            name,
            cohort,
            learner,
        } => {
            let token =
                tokens::create(journal, &name, role, cohort.as_deref(), learner.as_deref()).await?;
            crate::say!("{token}");
            eprintln!("This is the only time the token is shown. Send it as: Authorization: Bearer <token>");
        }
        TokenJob::List => {
            for t in tokens::list(journal).await? {
                crate::say!(
                    "{}  {:<11} {:<24} cohort={} learner={} created={} {}",
                    t.token_id.simple(),
                    t.role,
                    t.name,
                    t.cohort_id.as_deref().unwrap_or("-"),
                    t.learner_id.as_deref().unwrap_or("-"),
                    t.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    t.revoked_at.map_or(String::new(), |r| format!(
                        "REVOKED {}",
                        r.format("%Y-%m-%dT%H:%M:%SZ")
                    )),
                );
            }
        }
        TokenJob::Revoke { token_id } => {
            anyhow::ensure!(
                tokens::revoke(journal, token_id).await?,
                "no live token {token_id}"
            );
            crate::say!("revoked {}", token_id.simple());
        }
    }
    Ok(())
}
