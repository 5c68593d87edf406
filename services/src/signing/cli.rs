//! The commands of signing: `fieldtrail keys init|rotate|list|public`, and the jobs behind
//! `fieldtrail audit digest|digests|export` and `audit verify --digest`.

use crate::cli::output::{emit, print_out, reader_gone};
use crate::signing::digest::{self, DigestError};
use crate::signing::export;
use crate::signing::jws;
use crate::signing::keys::KeyStore;
use crate::signing::published::{self, Published, Union};
use crate::Settings;
use anyhow::Context as _;
use clap::Subcommand;
use fieldtrail_journal::Journal;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `fieldtrail keys …`.
#[derive(Clone, Debug, Subcommand)]
pub enum KeysJob {
    /// Create the keys directory (mode 700) and the first signing key (Ed25519); its public
    /// key is recorded in the journal.
    Init,
    /// Put a new key in force and retire the old one (its private key is deleted; its public
    /// key stays published, so what it signed still verifies).
    Rotate,
    /// List every key ever used (id, created, retired): the keys directory's and those the
    /// journal keeps.
    List,
    /// Print the public keys as a JWK Set (what /.well-known/jwks.json serves; an auditor's
    /// `--public-key` file).
    Public,
}

fn describe(k: &Published) -> String {
    let r = &k.record;
    format!(
        "{}  created {}  {}{}",
        r.kid,
        r.created_at.to_rfc3339(),
        r.retired_at.map_or_else(
            || "in force".to_owned(),
            |t| format!("retired {}", t.to_rfc3339())
        ),
        if k.in_dir {
            ""
        } else {
            "  (kept by the journal only: not in the keys directory)"
        }
    )
}

/// The sentence of a job that finds no key anywhere.
fn no_key_anywhere(store: &KeyStore) -> anyhow::Error {
    anyhow::anyhow!(
        "no signing key: neither the keys directory {} nor the journal holds one; run `fieldtrail keys init`",
        store.dir().display()
    )
}

/// The published keys for `keys list` / `keys public`: the directory's and the journal's.
/// A journal that cannot be opened leaves the directory's alone, said on stderr.
async fn listed(settings: &Settings, store: &KeyStore) -> anyhow::Result<Union> {
    let union = match crate::open_existing_journal(settings, 2).await {
        Ok(journal) => published::union(&journal, store).await,
        Err(e) => {
            eprintln!(
                "fieldtrail: the journal's published keys are not read ({e:#}): the keys directory's only"
            );
            Union {
                keys: published::merge(&store.list()?, &[]),
                ..Union::default()
            }
        }
    };
    if let Some(e) = &union.dir_error {
        anyhow::bail!("{e}");
    }
    for e in &union.journal_errors {
        eprintln!("fieldtrail: {e}");
    }
    for k in &union.untrusted {
        eprintln!(
            "fieldtrail: warning: key {} kept by the journal is not trusted, so not published: {}",
            k.record.kid, k.reason
        );
    }
    if union.keys.is_empty() {
        return Err(no_key_anywhere(store));
    }
    Ok(union)
}

/// Runs `fieldtrail keys …`. `init` and `rotate` record the public keys in the journal
/// (`signing_keys`); `list` and `public` show the directory's and the journal's.
///
/// # Errors
/// The key store's and the journal's errors, as sentences; `list` and `public` when there is
/// no key at all.
pub async fn run_keys(settings: &Settings, job: KeysJob) -> anyhow::Result<()> {
    let store = crate::signing::store(settings);
    match job {
        KeysJob::Init => {
            let journal = crate::open_journal(settings, 2).await?;
            let initialised = store.init()?;
            if let Some(mode) = initialised.tightened_from {
                eprintln!(
                    "fieldtrail: {} was mode {mode:o} (others could enter it): restricted to 700",
                    store.dir().display()
                );
            }
            let key = initialised.key;
            for lost in published::retire_lost(&journal, &store, key.created_at).await? {
                eprintln!(
                    "fieldtrail: key {lost} was in force according to the journal but is not in {} (its private key is lost): recorded as retired; its public key stays published when a chain of endorsements leads to it from a trusted key (FIELDTRAIL_SIGNING_ROOT)",
                    store.dir().display()
                );
            }
            let union = published::record(&journal, &store).await?;
            if let Some(first) = union.untrusted.first() {
                eprintln!(
                    "fieldtrail: the journal keeps {} keys that no chain of endorsements from {} or a pinned root reaches ({}): they are not published, so what they signed does not verify against the published keys; set FIELDTRAIL_SIGNING_ROOT to the id of the first key of that installation (e.g. {}) to publish them",
                    union.untrusted.len(),
                    store.dir().display(),
                    union.untrusted.iter().map(|k| k.record.kid.as_str()).collect::<Vec<_>>().join(", "),
                    first.record.kid
                );
            }
            let unknown = published::unknown_digest_keys(&journal, &union).await?;
            if !unknown.is_empty() {
                eprintln!(
                    "fieldtrail: warning: signed digests kept in the journal name keys that neither {} nor the journal publishes ({}): their public keys are lost, so those digests can only be checked against a JWK Set saved before",
                    store.dir().display(),
                    unknown.join(", ")
                );
            }
            print_out(&format!(
                "signing key {} created in {} (private key {}.pem, mode 600); its public key is recorded in the journal and served at /.well-known/jwks.json and /.well-known/did.json",
                key.kid,
                store.dir().display(),
                key.kid
            ))?;
        }
        KeysJob::Rotate => {
            let journal = crate::open_journal(settings, 2).await?;
            let (old, new) = store.rotate()?;
            published::record(&journal, &store).await?;
            print_out(&format!(
                "key {} retired (private key deleted; public key still published); key {} in force",
                old.kid, new.kid
            ))?;
        }
        KeysJob::List => {
            let union = listed(settings, &store).await?;
            if !union
                .keys
                .iter()
                .any(|k| k.in_dir && k.record.retired_at.is_none())
            {
                eprintln!(
                    "fieldtrail: no key in force in {}: nothing can be signed until `fieldtrail keys init`",
                    store.dir().display()
                );
            }
            let lines: String = union
                .keys
                .iter()
                .map(|k| format!("{}\n", describe(k)))
                .chain(union.untrusted.iter().map(|k| {
                    format!(
                        "{}  created {}  UNTRUSTED (kept by the journal, not published): {}\n",
                        k.record.kid,
                        k.record.created_at.to_rfc3339(),
                        k.reason
                    )
                }))
                .collect();
            emit(&lines)?;
        }
        KeysJob::Public => {
            let union = listed(settings, &store).await?;
            print_out(&serde_json::to_string_pretty(&union.jwks())?)?;
        }
    }
    Ok(())
}

/// `fieldtrail audit digest [--out FILE]`: signs the journal's head now, writes its JWS to
/// `out` (first: a file that cannot be written leaves no digest kept), keeps the digest and
/// prints it.
///
/// # Errors
/// [`DigestError`] (no key, a journal that does not verify, an empty journal); a file that
/// cannot be written (nothing kept); a digest that cannot be kept (the file written is
/// removed).
pub async fn sign_digest(
    journal: &Journal,
    store: &KeyStore,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let publisher = crate::export::publisher_from_env()?;
    let signed = digest::signed_head(journal, store, &publisher, false)
        .await?
        .ok_or(DigestError::Empty)?;
    if let Some(path) = out {
        std::fs::write(path, format!("{}\n", signed.jws)).with_context(|| {
            format!("cannot write {}: no digest signed or kept", path.display())
        })?;
    }
    let signed = match digest::keep(journal, signed).await {
        Ok(kept) => kept,
        Err(e) => {
            if let Some(path) = out {
                let _ = std::fs::remove_file(path);
            }
            return Err(anyhow::Error::new(e)
                .context("the digest could not be kept in the journal (its file is removed)"));
        }
    };
    print_out(&format!(
        "digest {} signed by key {} at {}: {} events up to position {} (transaction {}), digest {}, last event's hash {}",
        signed.digest_id,
        signed.key_id,
        signed.signed_at.to_rfc3339(),
        signed.events,
        signed.position,
        signed.tx_id,
        signed.digest,
        signed.head_hash
    ))?;
    Ok(())
}

/// `fieldtrail audit digests [--json]`: every digest kept.
///
/// # Errors
/// The journal's errors.
pub async fn list_digests(journal: &Journal, json: bool) -> anyhow::Result<()> {
    let list = journal.digests().await?;
    if json {
        print_out(&serde_json::to_string_pretty(
            &serde_json::json!({"digests": list}),
        )?)
    } else {
        emit(
            &list
                .iter()
                .map(|d| {
                    format!(
                        "{}  {}  position {}  {} events  digest {}  key {}\n",
                        d.digest_id,
                        d.signed_at.to_rfc3339(),
                        d.position,
                        d.events,
                        d.digest,
                        d.key_id
                    )
                })
                .collect::<String>(),
        )
    }
}

/// `fieldtrail audit export [--out FILE]`: the journal for an auditor ([`export`]).
///
/// # Errors
/// The journal's errors; a file that cannot be written.
pub async fn export_journal(journal: &Journal, out: Option<&Path>) -> anyhow::Result<()> {
    let (events, commands) = match out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let written = match export::write(journal, |line| writer.write_all(line)).await {
                Ok(counts) => writer
                    .flush()
                    .with_context(|| format!("cannot write {}", path.display()))
                    .map(|()| counts),
                Err(e) => Err(e.into()),
            };
            match written {
                Ok(counts) => counts,
                Err(e) => {
                    // No part of an export is left behind to be taken for the whole.
                    drop(writer);
                    let _ = std::fs::remove_file(path);
                    return Err(e);
                }
            }
        }
        None => {
            // A reader that went away (`| head`) ends the export quietly.
            let mut gone = false;
            let mut stdout = std::io::stdout().lock();
            let written = export::write(journal, |line| {
                stdout
                    .write_all(line)
                    .inspect_err(|e| gone = reader_gone(e))
            })
            .await;
            match written.and_then(|counts| {
                stdout
                    .flush()
                    .inspect_err(|e| gone = reader_gone(e))
                    .map(|()| counts)
                    .map_err(|e| fieldtrail_journal::JournalError::Other(e.to_string()))
            }) {
                Ok(counts) => counts,
                Err(_) if gone => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    };
    eprintln!("exported {events} events and {commands} commands");
    Ok(())
}

/// Where `audit verify --digest` takes the journal from.
pub enum ExportSource<'a> {
    /// An export file (offline).
    File(&'a Path),
    /// The configured journal, exported in memory.
    Journal(&'a Journal),
}

/// `fieldtrail audit verify --digest FILE [--export FILE] [--public-key FILE]`: checks the
/// export (or the journal) against the signed digest, with the public keys only. Exit status
/// 0 when it matches, [`crate::audit::NOT_VERIFIED`] otherwise (a signature that does not
/// verify included).
///
/// # Errors
/// Files that cannot be read or are not what they should be.
pub async fn verify_against_digest(
    digest_file: &Path,
    source: ExportSource<'_>,
    public_key: Option<&PathBuf>,
    store: &KeyStore,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let keys = match public_key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            jws::public_keys(&text)
                .map_err(|e| anyhow::anyhow!("--public-key {}: {e}", path.display()))?
        }
        None => {
            let keys = match &source {
                // Offline: the keys directory's.
                ExportSource::File(_) => store.list()?,
                ExportSource::Journal(journal) => {
                    let union = published::union(journal, store).await;
                    if let Some(e) = union.dir_error {
                        return Err(e.into());
                    }
                    union.records()
                }
            };
            anyhow::ensure!(
                !keys.is_empty(),
                "no public key: give --public-key FILE (the JWK Set of /.well-known/jwks.json)"
            );
            keys
        }
    };
    let token = std::fs::read_to_string(digest_file)
        .with_context(|| format!("cannot read {}", digest_file.display()))?;
    let token = token_of(&token);
    let checked = match source {
        ExportSource::File(_) => digest::Checked::Export,
        ExportSource::Journal(_) => digest::Checked::Journal,
    };
    let statement = match digest::open(&token, &keys) {
        Ok(s) => s,
        Err(e) => {
            if json {
                print_out(&serde_json::to_string_pretty(&serde_json::json!({
                    "checked": checked,
                    "verified": false,
                    "signature_valid": false,
                    "signature_error": e.to_string(),
                    "findings": [],
                }))?)?;
            } else {
                print_out(&format!(
                    "digest {}: NOT verified: {e}",
                    digest_file.display()
                ))?;
            }
            return Ok(ExitCode::from(crate::audit::NOT_VERIFIED));
        }
    };
    let export = match source {
        ExportSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            export::parse(&text).map_err(|e| anyhow::anyhow!("--export {}: {e}", path.display()))?
        }
        ExportSource::Journal(journal) => {
            let mut bytes = Vec::new();
            export::write(journal, |line| {
                bytes.extend_from_slice(line);
                Ok(())
            })
            .await?;
            export::parse(&String::from_utf8_lossy(&bytes)).map_err(anyhow::Error::msg)?
        }
    };
    let report = digest::check_export(&export, &statement, checked);
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("verified".to_owned(), report.verified().into());
            map.insert("signature_valid".to_owned(), true.into());
        }
        print_out(&serde_json::to_string_pretty(&value)?)?;
    } else {
        emit(&digest::offline_text(&report))?;
    }
    Ok(if report.verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::audit::NOT_VERIFIED)
    })
}

/// The JWS in a digest file: the file's text, or the `jws` of a JSON object (one entry of
/// `audit digests --json` saved alone).
fn token_of(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("jws").and_then(|j| j.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned())
}
