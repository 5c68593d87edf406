//! Verifiable outside the building (issue 20): signed credentials checked by an independent
//! JOSE implementation (PyJWT), signed digests checked offline against an exported journal,
//! key rotation, and the hash chain covering each event's global position on every append
//! path of both backends.

use crate::helpers::{TestEnv, COHORT};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A learner of the shipped cohort who was awarded the certificate.
const LEARNER: &str = "l25-01";

/// The `fieldtrail` binary on the test's journal, with `keys` as its keys directory and the
/// test's pinned roots of trust (`env.settings.signing_root`).
fn fieldtrail(env: &TestEnv, keys: &Path, args: &[&str]) -> Output {
    crate::helpers::fieldtrail_binary()
        .env("DATABASE_URL", &env.settings.database_url)
        .env("FIELDTRAIL_KEYS_DIR", keys)
        .env("FIELDTRAIL_SIGNING_ROOT", &env.settings.signing_root)
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .expect("run fieldtrail")
}

/// The `fieldtrail` binary on the journal at `database_url`, with `keys` as its keys directory.
fn fieldtrail_on(database_url: &str, keys: &Path, args: &[&str]) -> Output {
    crate::helpers::fieldtrail_binary()
        .env("DATABASE_URL", database_url)
        .env("FIELDTRAIL_KEYS_DIR", keys)
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .expect("run fieldtrail")
}

/// Runs `sql` on the test's database behind the journal's back (PostgreSQL's dialect, or
/// SQLite's when the journal is a file).
async fn behind_the_back(env: &TestEnv, postgres: &str, sqlite: &str) {
    match fieldtrail_journal::sqlite_path(&env.settings.database_url) {
        None => env
            .pool()
            .get()
            .await
            .unwrap()
            .batch_execute(postgres)
            .await
            .unwrap(),
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sqlite)
            .unwrap(),
    }
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The independent verifier (tests/data/verify_vc_jwt.py, PyJWT): `Ok(its JSON)` or
/// `Err(its verdict)`.
fn pyjwt(jwks: &Path, token: &Path, status_list: Option<&Path>) -> Result<Value, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/verify_vc_jwt.py"
    );
    let mut command = Command::new("python3");
    command.arg(script).arg(jwks).arg(token);
    if let Some(list) = status_list {
        command.arg(list);
    }
    let output = command.output().expect("python3");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(serde_json::from_str(&text).expect("the verifier's JSON"))
    } else {
        assert!(
            text.starts_with("NOT verified"),
            "the verifier itself failed (is PyJWT installed?): {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Err(text)
    }
}

/// `token` with one byte of its payload (the credential) changed: `from` becomes `to`.
fn altered(token: &str, from: &str, to: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert!(payload.contains(from), "{payload}");
    let changed = payload.replacen(from, to, 1);
    assert_eq!(changed.len(), payload.len());
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(changed),
        parts[2]
    )
}

/// Imports the shipped cohort, creates a keys directory with a key, and starts `serve` with it.
async fn prepared(
    mut env: TestEnv,
) -> (
    TestEnv,
    tempfile::TempDir,
    String,
    tokio_util::sync::CancellationToken,
) {
    let files = tempfile::tempdir().unwrap();
    let keys = files.path().join("keys");
    env.settings.keys_dir = keys.display().to_string();
    let report = env.import(COHORT).await;
    assert_eq!(report.rejected, 0);
    env.project().await;
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    let (address, stop, _task) = env.serve().await;
    let base = format!("http://{address}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (env, files, base, stop)
}

async fn text(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

crate::both_backends!(
    a_certificate_credential_verifies_with_pyjwt_and_not_once_one_byte_changes,
    credential_checked_by_pyjwt
);

async fn credential_checked_by_pyjwt(env: TestEnv) {
    let (env, files, base, stop) = prepared(env).await;
    let dir = files.path();
    let anyone = reqwest::Client::new();
    let staff = env.client();
    // The public keys and the status list need no token; the credential does.
    let (status, jwks) = text(&anyone, &format!("{base}/.well-known/jwks.json")).await;
    assert_eq!(status, 200, "{jwks}");
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    let (status, did) = text(&anyone, &format!("{base}/.well-known/did.json")).await;
    assert_eq!(status, 200, "{did}");
    let did: Value = serde_json::from_str(&did).unwrap();
    assert_eq!(did["id"], "did:web:fieldtrail.example");
    let transcript = format!("{base}/cohorts/cohort-2025/learners/{LEARNER}/transcript");
    assert_eq!(text(&anyone, &format!("{transcript}.jwt")).await.0, 401);
    let (status, token) = text(&staff, &format!("{transcript}.jwt")).await;
    assert_eq!(status, 200, "{token}");
    std::fs::write(dir.join("credential.jwt"), &token).unwrap();
    let (status, list) = text(&anyone, &format!("{base}/credentials/status/cohort-2025")).await;
    assert_eq!(status, 200, "{list}");
    std::fs::write(dir.join("status.jwt"), &list).unwrap();
    assert_eq!(
        text(
            &anyone,
            &format!("{base}/credentials/status/no-such-cohort")
        )
        .await
        .0,
        404
    );

    // PyJWT verifies the signature with the published key and reads the credential.
    let verified = pyjwt(
        &dir.join("jwks.json"),
        &dir.join("credential.jwt"),
        Some(&dir.join("status.jwt")),
    )
    .unwrap();
    let payload = &verified["payload"];
    assert_eq!(payload["type"][1], "ClrCredential");
    assert_eq!(payload["iss"], "did:web:fieldtrail.example");
    assert_eq!(payload["issuer"]["id"], payload["iss"]);
    assert_eq!(payload["jti"], payload["id"]);
    assert_eq!(
        payload["credentialSubject"]["identifier"][0]["identityHash"],
        LEARNER
    );
    // The certificate is in force: its bit in the cohort's list is 0; the list has the
    // specification's minimum size.
    assert_eq!(
        payload["credentialStatus"]["type"],
        "BitstringStatusListEntry"
    );
    assert_eq!(verified["status_bit"], 0);
    assert_eq!(verified["status_list_bits"], 131_072);
    // The signed credential is the JSON export plus the registered claims.
    let (_, plain) = text(&staff, &format!("{transcript}.clr")).await;
    let mut plain: Value = serde_json::from_str(&plain).unwrap();
    for claim in ["iss", "jti", "nbf"] {
        plain[claim] = payload[claim].clone();
    }
    assert_eq!(&plain, payload);
    // The CLI signs the same bytes (Ed25519 is deterministic).
    let keys = PathBuf::from(&env.settings.keys_dir);
    let cli = ok(&fieldtrail(
        &env,
        &keys,
        &[
            "export",
            "clr",
            "--cohort",
            "cohort-2025",
            "--learner",
            LEARNER,
            "--signed",
        ],
    ));
    assert_eq!(cli.trim(), token);

    // One byte of the credential changed: PyJWT refuses it.
    std::fs::write(
        dir.join("altered.jwt"),
        altered(&token, &format!("\"{LEARNER}\""), "\"l25-02\""),
    )
    .unwrap();
    let refused = pyjwt(&dir.join("jwks.json"), &dir.join("altered.jwt"), None).unwrap_err();
    assert!(refused.contains("InvalidSignatureError"), "{refused}");

    // Revoked: the cohort's list now has the credential's bit set.
    let revoke = serde_json::json!({"command_id": "revoke-1", "command": "revoke_certificate",
        "at": "2026-07-01T09:00:00+02:00", "actor": "staff:direction",
        "data": {"cohort_id": "cohort-2025", "learner_id": LEARNER, "reason": "erreur du jury"}});
    let answer = staff
        .post(format!("{base}/commands"))
        .json(&revoke)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200, "{:?}", answer.text().await);
    let (status, list) = text(&anyone, &format!("{base}/credentials/status/cohort-2025")).await;
    assert_eq!(status, 200, "{list}");
    std::fs::write(dir.join("status-after.jwt"), &list).unwrap();
    let verified = pyjwt(
        &dir.join("jwks.json"),
        &dir.join("credential.jwt"),
        Some(&dir.join("status-after.jwt")),
    )
    .unwrap();
    assert_eq!(verified["status_bit"], 1, "revoked");
    stop.cancel();
    env.cleanup().await;
}

/// The export's lines, and the position of each event line.
fn export_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn event_of(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()?
        .get("event")
        .cloned()
}

/// `audit verify --digest … --export … --public-key …` with no journal at all.
fn offline(dir: &Path, export: &str) -> (Option<i32>, String) {
    let output = crate::helpers::fieldtrail_binary()
        .env("DATABASE_URL", "sqlite:///nonexistent/directory/none.db")
        .env("FIELDTRAIL_KEYS_DIR", dir.join("no-keys-here"))
        .args(["audit", "verify", "--digest"])
        .arg(dir.join("digest.jws"))
        .arg("--export")
        .arg(dir.join(export))
        .arg("--public-key")
        .arg(dir.join("jwks.json"))
        .output()
        .unwrap();
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

crate::both_backends!(
    a_signed_digest_verifies_an_export_offline_and_names_each_tampering_by_position,
    digest_checked_offline
);

async fn digest_checked_offline(env: TestEnv) {
    let (env, files, base, stop) = prepared(env).await;
    let dir = files.path();
    let keys = PathBuf::from(&env.settings.keys_dir);
    let signed = ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "digest",
            "--out",
            dir.join("digest.jws").to_str().unwrap(),
        ],
    ));
    assert!(signed.contains("210 events up to position"), "{signed}");
    // A file that cannot be written: an error, and no digest kept.
    let unwritable = fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "digest",
            "--out",
            dir.join("no-such-directory/digest.jws").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&unwritable.stderr);
    assert_eq!(unwritable.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write") && stderr.contains("no digest signed or kept"),
        "{stderr}"
    );
    assert_eq!(env.journal.digests().await.unwrap().len(), 1);
    ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "export",
            "--out",
            dir.join("journal.jsonl").to_str().unwrap(),
        ],
    ));
    std::fs::write(
        dir.join("jwks.json"),
        ok(&fieldtrail(&env, &keys, &["keys", "public"])),
    )
    .unwrap();
    // Kept and listed, on the CLI and over HTTP (auditor's token).
    let listed: Value = serde_json::from_str(&ok(&fieldtrail(
        &env,
        &keys,
        &["audit", "digests", "--json"],
    )))
    .unwrap();
    let jws = std::fs::read_to_string(dir.join("digest.jws")).unwrap();
    assert_eq!(listed["digests"][0]["jws"], jws.trim());
    assert_eq!(listed["digests"][0]["events"], 210);
    let auditor = env.token(fieldtrail::auth::Role::Auditor, None, None).await;
    let auditor = env.client_with(&auditor);
    let (status, body) = text(&auditor, &format!("{base}/audit/digests")).await;
    assert_eq!(status, 200, "{body}");
    let over_http: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(over_http["digests"], listed["digests"]);
    let id = listed["digests"][0]["digest_id"].as_i64().unwrap();
    assert_eq!(
        text(&auditor, &format!("{base}/audit/digests/{id}")).await,
        (200, jws.trim().to_owned())
    );
    assert_eq!(
        text(&auditor, &format!("{base}/audit/digests/x")).await.0,
        422
    );
    assert_eq!(
        text(&auditor, &format!("{base}/audit/digests/999")).await.0,
        404
    );
    stop.cancel();

    // Offline, with the public key only: the export matches the signed digest.
    let (code, out) = offline(dir, "journal.jsonl");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("export verified against the signed digest: 210 events"),
        "{out}"
    );
    // Without --export, the journal itself is checked, and the report says so.
    let digest_file = dir.join("digest.jws");
    let against_journal = ok(&fieldtrail(
        &env,
        &keys,
        &["audit", "verify", "--digest", digest_file.to_str().unwrap()],
    ));
    assert!(
        against_journal.contains("journal verified against the signed digest: 210 events")
            && !against_journal.contains("export"),
        "{against_journal}"
    );

    let lines = export_lines(&dir.join("journal.jsonl"));
    let events: Vec<(usize, Value)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| event_of(l).map(|e| (i, e)))
        .collect();
    let save = |name: &str, lines: &[String]| {
        std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
    };
    let position = |n: usize| events[n].1["position"].as_i64().unwrap();

    // Altered: one event's payload.
    let (i, mut event) = events[40].clone();
    event["payload"]["reason"] = Value::from("rewritten");
    let mut changed = lines.clone();
    changed[i] = serde_json::json!({"event": event}).to_string();
    save("altered.jsonl", &changed);
    let (code, out) = offline(dir, "altered.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("BROKEN position {} ", position(40)))
            && out.contains("no longer matches its hash"),
        "{out}"
    );

    // Removed: one event (the count in the last line adjusted, as a forger would).
    let (i, _) = events[60];
    let mut removed = lines.clone();
    removed.remove(i);
    let last = removed.len() - 1;
    removed[last] = removed[last].replace("\"events\":210", "\"events\":209");
    save("removed.jsonl", &removed);
    let (code, out) = offline(dir, "removed.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("BROKEN position {} ", position(60))) && out.contains("removed?"),
        "{out}"
    );
    assert!(out.contains("is missing (deleted?)"), "{out}");

    // The command ledger's rows are covered too: their command's name and time (by the
    // hashes of the events, which carry the name), their positions, their presence.
    let commands: Vec<(usize, Value)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            serde_json::from_str::<Value>(l)
                .ok()?
                .get("command")
                .cloned()
                .map(|c| (i, c))
        })
        .collect();
    assert_eq!(commands.len(), 203);
    let (i, command) = commands[30].clone();
    let first = command["first_position"].as_i64().unwrap();
    let name = command["command"].as_str().unwrap().to_owned();
    let other = if name == "record_attendance" {
        "cancel_session"
    } else {
        "record_attendance"
    };
    for (file, key, value, says) in [
        (
            "renamed.jsonl",
            "command",
            Value::from(other),
            "names the command",
        ),
        (
            "retimed.jsonl",
            "recorded_at",
            Value::from("2020-01-01T00:00:00.000000Z"),
            "says it was recorded at 2020-01-01T00:00:00.000000Z",
        ),
    ] {
        let mut edited = command.clone();
        edited[key] = value;
        let mut changed = lines.clone();
        changed[i] = serde_json::json!({"command": edited}).to_string();
        save(file, &changed);
        let (code, out) = offline(dir, file);
        assert_eq!(code, Some(2), "{file}: {out}");
        assert!(
            out.contains(&format!("BROKEN position {first} ")) && out.contains(says),
            "{file}: {out}"
        );
        assert_eq!(out.matches("BROKEN").count(), 1, "{file}: {out}");
    }
    // A ledger row removed (the count in the last line adjusted).
    let mut unledgered = lines.clone();
    unledgered.remove(i);
    let last = unledgered.len() - 1;
    unledgered[last] = unledgered[last].replace("\"commands\":203", "\"commands\":202");
    save("unledgered.jsonl", &unledgered);
    let (code, out) = offline(dir, "unledgered.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("BROKEN position {first} "))
            && out.contains("no command ledger row for its command"),
        "{out}"
    );

    // Reordered: two events swap places in the file…
    let (a, _) = events[80];
    let (b, _) = events[81];
    let mut moved = lines.clone();
    moved.swap(a, b);
    save("moved.jsonl", &moved);
    let (code, out) = offline(dir, "moved.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("BROKEN position {} ", position(80))) && out.contains("moved?"),
        "{out}"
    );
    // A transaction id edited (not covered by the hashes): raised past later lines, or
    // lowered below earlier ones, it is named at the line edited, and only there.
    let (i, event) = events[100].clone();
    let later = events[150].1["tx_id"].as_u64().unwrap();
    let earlier = events[50].1["tx_id"].as_u64().unwrap();
    for (file, tx_id) in [
        ("raised.jsonl", later + 1),
        ("lowered.jsonl", earlier.saturating_sub(1)),
    ] {
        let mut edited = event.clone();
        edited["tx_id"] = Value::from(tx_id);
        let mut changed = lines.clone();
        changed[i] = serde_json::json!({"event": edited}).to_string();
        save(file, &changed);
        let (code, out) = offline(dir, file);
        assert_eq!(code, Some(2), "{file}: {out}");
        assert!(
            out.contains(&format!("BROKEN position {} ", position(100)))
                && out.contains(&format!("with transaction id {tx_id}")),
            "{file}: {out}"
        );
        assert_eq!(out.matches("BROKEN").count(), 1, "{file}: {out}");
    }
    // …or two events of different streams swap their places in the global log (positions
    // and transaction ids), keeping each stream's order: the hashes cover the positions.
    let (x, y) = (
        events
            .iter()
            .position(|(_, e)| e["stream_type"] == "cohort")
            .unwrap(),
        events
            .iter()
            .position(|(_, e)| e["stream_type"] == "field_study")
            .unwrap(),
    );
    let (mut ex, mut ey) = (events[x].1.clone(), events[y].1.clone());
    for key in ["position", "tx_id"] {
        std::mem::swap(ex.get_mut(key).unwrap(), ey.get_mut(key).unwrap());
    }
    let mut swapped = lines.clone();
    swapped[events[x].0] = serde_json::json!({"event": ey}).to_string();
    swapped[events[y].0] = serde_json::json!({"event": ex}).to_string();
    save("swapped.jsonl", &swapped);
    let (code, out) = offline(dir, "swapped.jsonl");
    assert_eq!(code, Some(2), "{out}");
    for n in [x, y] {
        assert!(
            out.contains(&format!("BROKEN position {} ", position(n))),
            "position {}: {out}",
            position(n)
        );
    }

    // Every removal is named at its own position, never as a break without one: an event
    // removed together with its ledger line (a command of one event, amid its stream)…
    let ledger_of = |command_id: &str| {
        commands
            .iter()
            .find(|(_, c)| c["command_id"] == command_id)
            .cloned()
            .unwrap()
    };
    let named_at = |out: &str, p: i64| {
        out.contains(&format!("BROKEN position {p} "))
            || out.contains(&format!("BROKEN position {p}:"))
    };
    let no_unplaced = |out: &str| {
        out.lines()
            .filter(|l| l.starts_with("BROKEN"))
            .all(|l| l.starts_with("BROKEN position "))
    };
    let (n, (i, single)) = events
        .iter()
        .enumerate()
        .skip(100)
        .find(|(_, (_, e))| {
            let (_, c) = ledger_of(e["command_id"].as_str().unwrap());
            c["first_position"] == c["last_position"] && e["stream_version"].as_i64().unwrap() > 1
        })
        .unwrap();
    let (l, _) = ledger_of(single["command_id"].as_str().unwrap());
    let mut both = lines.clone();
    for at in [(*i).max(l), (*i).min(l)] {
        both.remove(at);
    }
    let last = both.len() - 1;
    both[last] = both[last]
        .replace("\"events\":210", "\"events\":209")
        .replace("\"commands\":203", "\"commands\":202");
    save("removed-with-ledger.jsonl", &both);
    let (code, out) = offline(dir, "removed-with-ledger.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        named_at(&out, position(n)) && out.contains("removed?"),
        "{out}"
    );
    assert!(no_unplaced(&out), "{out}");
    // …or the middle event of a command of several events.
    let (n, (i, _)) = events
        .iter()
        .enumerate()
        .find(|(_, (_, e))| {
            let (_, c) = ledger_of(e["command_id"].as_str().unwrap());
            let p = e["position"].as_i64().unwrap();
            c["first_position"].as_i64().unwrap() < p && p < c["last_position"].as_i64().unwrap()
        })
        .expect("a command of three events or more in the shipped cohort");
    let mut middle = lines.clone();
    middle.remove(*i);
    let last = middle.len() - 1;
    middle[last] = middle[last].replace("\"events\":210", "\"events\":209");
    save("removed-middle.jsonl", &middle);
    let (code, out) = offline(dir, "removed-middle.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        named_at(&out, position(n)) && out.contains("removed?"),
        "{out}"
    );
    assert!(no_unplaced(&out), "{out}");

    // A member the format does not have, in an event line: named at its position, alone.
    let (i, mut event) = events[120].clone();
    event["note"] = Value::from("added by hand");
    let mut extra = lines.clone();
    extra[i] = serde_json::json!({"event": event}).to_string();
    save("extra.jsonl", &extra);
    let (code, out) = offline(dir, "extra.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("BROKEN position {} ", position(120)))
            && out.contains("members the export format does not have")
            && out.contains("\"note\""),
        "{out}"
    );
    assert_eq!(out.matches("BROKEN").count(), 1, "{out}");

    // The JSON report says whether it verified.
    let (code, report) = offline_json(dir, "journal.jsonl");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        (&report["verified"], &report["signature_valid"]),
        (&Value::from(true), &Value::from(true))
    );
    assert!(report["after_cut"].is_null(), "{report}");

    // A digest signed by another key (another installation's: its own journal) is refused
    // before anything else.
    let other = tempfile::tempdir().unwrap();
    let elsewhere = format!("sqlite://{}", other.path().join("other.db").display());
    ok(&fieldtrail_on(&elsewhere, other.path(), &["keys", "init"]));
    std::fs::write(
        dir.join("jwks.json"),
        ok(&fieldtrail_on(
            &elsewhere,
            other.path(),
            &["keys", "public"],
        )),
    )
    .unwrap();
    let (code, out) = offline(dir, "journal.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("NOT verified") && out.contains("not among the public keys"),
        "{out}"
    );
    // …and the JSON report says so too.
    let (code, report) = offline_json(dir, "journal.jsonl");
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["signature_valid"], false, "{report}");
    assert!(
        report["signature_error"]
            .as_str()
            .unwrap()
            .contains("not among the public keys"),
        "{report}"
    );
    env.cleanup().await;
}

crate::both_backends!(
    after_keys_rotate_what_the_old_key_signed_still_verifies,
    rotation
);

async fn rotation(env: TestEnv) {
    let (env, files, base, stop) = prepared(env).await;
    let dir = files.path();
    let keys = PathBuf::from(&env.settings.keys_dir);
    let staff = env.client();
    let url = format!("{base}/cohorts/cohort-2025/learners/{LEARNER}/transcript.jwt");
    let (_, old_credential) = text(&staff, &url).await;
    std::fs::write(dir.join("old.jwt"), &old_credential).unwrap();
    ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "digest",
            "--out",
            dir.join("old.jws").to_str().unwrap(),
        ],
    ));
    let rotated = ok(&fieldtrail(&env, &keys, &["keys", "rotate"]));
    assert!(rotated.contains("retired"), "{rotated}");
    let list = ok(&fieldtrail(&env, &keys, &["keys", "list"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    assert_eq!(list.matches("in force").count(), 1, "{list}");
    // The server signs with the new key at once; both keys are published.
    let (_, new_credential) = text(&staff, &url).await;
    assert_ne!(new_credential, old_credential);
    let kid = |token: &str| {
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(kid(&new_credential), kid(&old_credential));
    std::fs::write(dir.join("new.jwt"), &new_credential).unwrap();
    let (_, jwks) = text(
        &reqwest::Client::new(),
        &format!("{base}/.well-known/jwks.json"),
    )
    .await;
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let (_, did) = text(
        &reqwest::Client::new(),
        &format!("{base}/.well-known/did.json"),
    )
    .await;
    let did: Value = serde_json::from_str(&did).unwrap();
    assert_eq!(did["assertionMethod"].as_array().unwrap().len(), 2);
    assert!(did["assertionMethod"]
        .as_array()
        .unwrap()
        .contains(&Value::from(kid(&old_credential))));
    // The retired key's method says since when; the key in force has no such mark.
    let method = |id: String| {
        did["verificationMethod"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id.as_str())
            .cloned()
            .unwrap()
    };
    let retired_at = list
        .lines()
        .find_map(|l| l.split_once("retired ").map(|(_, at)| at.trim().to_owned()))
        .unwrap();
    let retired_at = chrono::DateTime::parse_from_rfc3339(&retired_at).unwrap();
    let marked = method(kid(&old_credential))["retired"]
        .as_str()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(marked, Some(retired_at), "{did}");
    assert!(method(kid(&new_credential)).get("retired").is_none());
    std::fs::write(dir.join("did.json"), did.to_string()).unwrap();
    stop.cancel();
    for token in ["old.jwt", "new.jwt"] {
        pyjwt(&dir.join("jwks.json"), &dir.join(token), None).unwrap();
    }
    // The digest the old key signed, and one the new key signs, both check offline.
    ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "digest",
            "--out",
            dir.join("new.jws").to_str().unwrap(),
        ],
    ));
    ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "export",
            "--out",
            dir.join("journal.jsonl").to_str().unwrap(),
        ],
    ));
    for digest in ["old.jws", "new.jws"] {
        std::fs::copy(dir.join(digest), dir.join("digest.jws")).unwrap();
        let (code, out) = offline(dir, "journal.jsonl");
        assert_eq!(code, Some(0), "{digest}: {out}");
    }
    // The old digest also checks with the DID document as the public keys (its retired key
    // still listed there).
    std::fs::copy(dir.join("old.jws"), dir.join("digest.jws")).unwrap();
    std::fs::copy(dir.join("did.json"), dir.join("jwks.json")).unwrap();
    let (code, out) = offline(dir, "journal.jsonl");
    assert_eq!(code, Some(0), "old.jws against the DID document: {out}");
    env.cleanup().await;
}

crate::both_backends!(
    every_append_path_hashes_the_position_it_stores_and_older_rows_keep_verifying,
    positions_hashed
);

async fn positions_hashed(env: TestEnv) {
    use fieldtrail_journal::chain::{self, SealedEvent, CHAIN_V1, CHAIN_V2, GENESIS};
    use fieldtrail_journal::Cursor;
    // A journal written before positions were hashed: the cohort's rows as chain version 1,
    // copied in as they would have been stored.
    let source = TestEnv::sqlite("positions_source").await;
    source.import(COHORT).await;
    let mut rows: Vec<SealedEvent> = source
        .journal
        .export_events(Cursor::default(), 100_000)
        .await
        .unwrap();
    let ledger = source.journal.export_ledger().await.unwrap();
    let mut heads: std::collections::HashMap<(String, String), chain::Hash> =
        std::collections::HashMap::new();
    for row in &mut rows {
        assert_eq!(
            row.chain_version, CHAIN_V2,
            "the append path writes version 2"
        );
        row.chain_version = CHAIN_V1;
        let key = (row.stream_type.clone(), row.stream_id.clone());
        row.prev_hash = Some(heads.get(&key).copied().unwrap_or(GENESIS));
        row.hash = row.recompute();
        heads.insert(key, row.hash.unwrap());
    }
    env.journal.import_events(&rows, &ledger).await.unwrap();
    env.copy_keys_from(&source.journal).await;
    env.journal.rebuild_reservations().await.unwrap();
    assert!(env.journal.verify(None).await.unwrap().intact());
    // New events through every append path: the bulk append (import), and the group commit
    // (concurrent commands on three streams; alone when nothing else waits).
    let mut later = String::new();
    for (n, line) in crate::helpers::RULES.lines().enumerate().take(40) {
        let mut envelope: Value = serde_json::from_str(line).unwrap();
        envelope["command_id"] = Value::from(format!("later-{n}"));
        later.push_str(&envelope.to_string());
        later.push('\n');
    }
    env.import(&later).await;
    let handler = std::sync::Arc::new(env.handler());
    let mut tasks = Vec::new();
    for n in 0..12 {
        let handler = handler.clone();
        tasks.push(tokio::spawn(async move {
            let line = format!(
                r#"{{"command_id": "race-{n}", "command": "state_hypothesis", "at": "2026-01-10T10:00:00+01:00", "actor": "facilitator:f", "data": {{"field_study_id": "{study}", "hypothesis_id": "h-race-{n}", "text": "hypothesis {n}"}}}}"#,
                study = ["fs25-a", "fs25-b", "fs25-c"][n % 3]
            );
            handler.handle_json(&line, chrono::Utc::now()).await
        }));
    }
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        assert!(
            matches!(outcome, fieldtrail::handler::Outcome::Applied { .. }),
            "{outcome:?}"
        );
    }
    // A lone command that releases a claim (its append in its own transaction, with the
    // reservation table).
    let lone = r#"{"command_id": "lone-withdrawal", "command": "withdraw_learner", "at": "2026-07-01T10:00:00+02:00", "actor": "staff:coordinator", "data": {"cohort_id": "cohort-2025", "learner_id": "l25-09", "reason": "Départ de la région"}}"#;
    let outcome = handler.handle_json(lone, chrono::Utc::now()).await.unwrap();
    assert!(
        matches!(outcome, fieldtrail::handler::Outcome::Applied { .. }),
        "{outcome:?}"
    );
    let report = env.journal.verify(None).await.unwrap();
    assert!(report.intact(), "{report:?}");
    // Every committed event readable (another test's transaction may hold the horizon).
    assert!(env
        .journal
        .wait_readable(Duration::from_secs(30))
        .await
        .unwrap());
    let all = env
        .journal
        .export_events(Cursor::default(), 100_000)
        .await
        .unwrap();
    let v1 = all.iter().filter(|r| r.chain_version == CHAIN_V1).count();
    let v2: Vec<&SealedEvent> = all.iter().filter(|r| r.chain_version == CHAIN_V2).collect();
    assert_eq!(v1, 210);
    assert_eq!(v2.len(), all.len() - 210);
    assert!(
        v2.len() > 12,
        "the import and the 12 concurrent commands: {}",
        v2.len()
    );
    // Each version-2 hash is over the position stored with it (recomputed from the row).
    for row in &v2 {
        assert_eq!(row.recompute(), row.hash, "position {}", row.position);
        let mut moved = (*row).clone();
        moved.position += 1;
        assert_ne!(moved.recompute(), row.hash);
    }
    // A copy to the other backend keeps each row's version and verifies (copy checks it).
    let target = if env.journal.kind() == fieldtrail_journal::BackendKind::Sqlite {
        TestEnv::new("positions_copy").await
    } else {
        TestEnv::sqlite("positions_copy").await
    };
    let copied = fieldtrail::cli::copy::copy(
        &env.journal,
        &target.journal,
        &fieldtrail::cli::progress::Progress::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(copied.events as usize, all.len());
    let again = target
        .journal
        .export_events(Cursor::default(), 100_000)
        .await
        .unwrap();
    assert_eq!(
        again.iter().filter(|r| r.chain_version == CHAIN_V1).count(),
        210
    );
    assert_eq!(
        target.journal.verify(None).await.unwrap().digest,
        report.digest
    );
    // The independent verifier (Python and psql only) picks each row's form too.
    let postgres = if env.journal.kind() == fieldtrail_journal::BackendKind::Postgres {
        &env
    } else {
        &target
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/verify_journal.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&postgres.settings.database_url)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains(&format!("digest: {}", report.digest)),
        "{printed}"
    );
    target.cleanup().await;
    source.cleanup().await;
    env.cleanup().await;
}

crate::both_backends!(
    serve_signs_the_head_periodically_when_it_moved,
    periodic_digests
);

async fn periodic_digests(mut env: TestEnv) {
    let files = tempfile::tempdir().unwrap();
    let keys = files.path().join("keys");
    env.settings.keys_dir = keys.display().to_string();
    env.settings.digest_interval_secs = 1;
    env.import(COHORT).await;
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    let (_address, stop, task) = env.serve().await;
    let kept = |n: usize| {
        let journal = env.journal.clone();
        async move {
            for _ in 0..100 {
                let list = journal.digests().await.unwrap();
                if list.len() >= n {
                    return list;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no digest number {n} within 10 s");
        }
    };
    let first = kept(1).await;
    assert_eq!(first[0].events, 210);
    // The head did not move: no new digest.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.journal.digests().await.unwrap().len(), 1);
    let line = r#"{"command_id": "after-the-digest", "command": "state_hypothesis", "at": "2026-01-10T10:00:00+01:00", "actor": "facilitator:f", "data": {"field_study_id": "fs25-a", "hypothesis_id": "h-after", "text": "one more"}}"#;
    env.handler()
        .handle_json(line, chrono::Utc::now())
        .await
        .unwrap();
    let both = kept(2).await;
    assert_eq!(both[1].events, 211);
    assert_ne!(both[1].digest, both[0].digest);
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

/// Runs `fieldtrail ARGS | (exec 0<&-; sleep .5)`: the reader closes the pipe before anything
/// is written. Returns the exit status of `fieldtrail` and its standard error.
fn into_closed_pipe(env: &TestEnv, keys: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new("bash")
        .arg("-c")
        .arg(r#""$0" "$@" | (exec 0<&-; sleep .5); exit "${PIPESTATUS[0]}""#)
        .arg(env!("CARGO_BIN_EXE_fieldtrail"))
        .args(args)
        .env("DATABASE_URL", &env.settings.database_url)
        .env("FIELDTRAIL_KEYS_DIR", keys)
        .env(
            fieldtrail_journal::sealing::MASTER_KEY_ENV,
            crate::helpers::master_key_hex(),
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("bash");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn signing_commands_end_quietly_when_their_reader_closes_the_pipe() {
    let env = TestEnv::sqlite("signing_closed_pipe").await;
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let keys = dir.join("keys");
    assert_eq!(env.import(COHORT).await.rejected, 0);
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    let digest = dir.join("digest.jws");
    let export = dir.join("journal.jsonl");
    let jwks = dir.join("jwks.json");
    ok(&fieldtrail(
        &env,
        &keys,
        &["audit", "digest", "--out", digest.to_str().unwrap()],
    ));
    ok(&fieldtrail(
        &env,
        &keys,
        &["audit", "export", "--out", export.to_str().unwrap()],
    ));
    std::fs::write(&jwks, ok(&fieldtrail(&env, &keys, &["keys", "public"]))).unwrap();
    let (digest, export, jwks) = (
        digest.to_str().unwrap(),
        export.to_str().unwrap(),
        jwks.to_str().unwrap(),
    );
    let jobs: Vec<Vec<&str>> = vec![
        vec![
            "audit",
            "verify",
            "--digest",
            digest,
            "--export",
            export,
            "--public-key",
            jwks,
        ],
        vec![
            "audit",
            "verify",
            "--digest",
            digest,
            "--export",
            export,
            "--public-key",
            jwks,
            "--format",
            "json",
        ],
        vec!["audit", "verify", "--digest", digest],
        vec!["audit", "digest"],
        vec!["audit", "digests"],
        vec!["audit", "digests", "--json"],
        vec!["audit", "export"],
        vec!["keys", "list"],
        vec!["keys", "public"],
        vec!["keys", "rotate"],
        vec![
            "export",
            "clr",
            "--cohort",
            "cohort-2025",
            "--learner",
            LEARNER,
            "--signed",
        ],
    ];
    for args in jobs {
        let (status, stderr) = into_closed_pipe(&env, &keys, &args);
        assert!(
            status == 0 && !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: exit status {status}: {stderr}"
        );
    }
    env.cleanup().await;
}

/// `serve` with `keys` as its keys directory, once it answers; its base URL and stop token.
async fn serving(
    env: &TestEnv,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (address, stop, task) = env.serve().await;
    let base = format!("http://{address}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (base, stop, task)
}

#[tokio::test]
async fn signing_routes_without_a_key_answer_503_naming_no_server_path() {
    let mut env = TestEnv::sqlite("signing_no_key").await;
    let files = tempfile::tempdir().unwrap();
    let keys = files.path().join("lost-keys-directory");
    env.settings.keys_dir = keys.display().to_string();
    assert_eq!(env.import(COHORT).await.rejected, 0);
    env.project().await;
    let (base, stop, task) = serving(&env).await;
    let anyone = reqwest::Client::new();
    let staff = env.client();
    for (client, route) in [
        (&anyone, "/.well-known/jwks.json".to_owned()),
        (&anyone, "/.well-known/did.json".to_owned()),
        (&anyone, "/credentials/status/cohort-2025".to_owned()),
        (
            &staff,
            format!("/cohorts/cohort-2025/learners/{LEARNER}/transcript.jwt"),
        ),
    ] {
        let (status, body) = text(client, &format!("{base}{route}")).await;
        assert_eq!(status, 503, "{route}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("fieldtrail keys init"),
            "{route}: {message}"
        );
        assert!(
            !message.contains("lost-keys-directory") && !message.contains('/'),
            "{route} discloses a path: {message}"
        );
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    // The CLI says so too, and fails.
    for job in [["keys", "list"], ["keys", "public"]] {
        let output = fieldtrail(&env, &keys, &job);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{job:?}: {stderr}");
        assert!(
            output.stdout.is_empty()
                && stderr.contains("no signing key: neither the keys directory"),
            "{job:?}: {stderr}"
        );
    }
    env.cleanup().await;
}

crate::both_backends!(
    the_journal_keeps_the_public_keys_so_losing_the_keys_directory_loses_none,
    keys_kept_by_the_journal
);

async fn keys_kept_by_the_journal(mut env: TestEnv) {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let keys = dir.join("keys");
    env.settings.keys_dir = keys.display().to_string();
    assert_eq!(env.import(COHORT).await.rejected, 0);
    env.project().await;
    // `keys init` and `keys rotate` record the public keys (and the retirement) in the journal.
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    let old_digest = dir.join("old.jws");
    ok(&fieldtrail(
        &env,
        &keys,
        &["audit", "digest", "--out", old_digest.to_str().unwrap()],
    ));
    ok(&fieldtrail(&env, &keys, &["keys", "rotate"]));
    let kept = env.journal.published_keys().await.unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept[0].retired_at.is_some() && kept[1].retired_at.is_none());
    let jwks_before = ok(&fieldtrail(&env, &keys, &["keys", "public"]));
    assert_eq!(jwks_before.matches("\"kid\"").count(), 2, "{jwks_before}");
    // A digest signed by a key nobody published (kept before the journal kept keys).
    let mut orphan = env.journal.digests().await.unwrap()[0].clone();
    orphan.key_id = "lost-key-id".to_owned();
    orphan.digest_id = 0;
    env.journal.store_digest(&orphan).await.unwrap();

    // The keys directory is lost. Without it nothing the journal keeps is trusted: one
    // INSERT would otherwise publish anyone's key.
    std::fs::remove_dir_all(&keys).unwrap();
    let (base, stop, task) = serving(&env).await;
    let anyone = reqwest::Client::new();
    let (status, body) = text(&anyone, &format!("{base}/.well-known/jwks.json")).await;
    assert_eq!(status, 503, "{body}");
    stop.cancel();
    task.await.unwrap().unwrap();
    // The operator pins the first key as the root of trust: the second one, endorsed by it,
    // is published too.
    env.settings.signing_root = kept[0].kid.clone();
    let (base, stop, task) = serving(&env).await;
    let (status, jwks) = text(&anyone, &format!("{base}/.well-known/jwks.json")).await;
    assert_eq!(status, 200, "{jwks}");
    let served: Value = serde_json::from_str(&jwks).unwrap();
    let before: Value = serde_json::from_str(&jwks_before).unwrap();
    assert_eq!(served, before, "the same keys, from the journal");
    let (status, did) = text(&anyone, &format!("{base}/.well-known/did.json")).await;
    assert_eq!(status, 200, "{did}");
    let did: Value = serde_json::from_str(&did).unwrap();
    let methods = did["verificationMethod"].as_array().unwrap();
    assert_eq!(methods.len(), 2, "{did}");
    assert!(methods[0].get("retired").is_some() && methods[1].get("retired").is_none());
    stop.cancel();
    task.await.unwrap().unwrap();
    // What the first key signed still checks offline against the keys served.
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    std::fs::copy(&old_digest, dir.join("digest.jws")).unwrap();
    ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "export",
            "--out",
            dir.join("journal.jsonl").to_str().unwrap(),
        ],
    ));
    let (code, out) = offline(dir, "journal.jsonl");
    assert_eq!(code, Some(0), "{out}");
    // `keys list` shows them, saying where they are kept.
    let output = fieldtrail(&env, &keys, &["keys", "list"]);
    let listed = ok(&output);
    assert_eq!(
        listed
            .matches("(kept by the journal only: not in the keys directory)")
            .count(),
        2,
        "{listed}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no key in force in"),
        "{output:?}"
    );

    // `keys init` on a new directory: the key the journal says is in force is recorded as
    // retired (its private key went with the directory), and one line warns of the digests
    // whose key is published nowhere.
    let output = fieldtrail(&env, &keys, &["keys", "init"]);
    ok(&output);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lost = &kept[1].kid;
    assert!(
        stderr.contains(&format!("key {lost} was in force according to the journal"))
            && stderr.contains("recorded as retired"),
        "{stderr}"
    );
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("lost-key-id") && !warnings[0].contains(&kept[0].kid),
        "{stderr}"
    );
    // (A handle opened now: on SQLite, the test's own handle may no longer see the file's
    // write-ahead log once `serve` opened the file a second time in this process.)
    let journal = fieldtrail_journal::open_existing(&env.settings.database_url, 2)
        .await
        .unwrap();
    let now = journal.published_keys().await.unwrap();
    assert_eq!(now.len(), 3);
    assert_eq!(
        now.iter().filter(|k| k.retired_at.is_none()).count(),
        1,
        "{now:?}"
    );
    // Published keys are kept: a retirement is never undone.
    let mut undone = now[1].clone();
    undone.retired_at = None;
    journal.publish_keys(&[undone]).await.unwrap();
    assert_eq!(journal.published_keys().await.unwrap(), now);
    journal.close();
    env.cleanup().await;
}

crate::both_backends!(
    a_key_inserted_into_the_journal_behind_its_back_is_not_published,
    forged_keys
);

/// The rows of `keys` as INSERT statements into `signing_keys` (PostgreSQL's, SQLite's).
fn inserts(keys: &[fieldtrail::signing::keys::KeyRecord]) -> (String, String) {
    let (mut postgres, mut sqlite) = (String::new(), String::new());
    for k in keys {
        let jwk = k.jwk().to_string();
        let endorsement = k
            .endorsement
            .as_ref()
            .map_or_else(|| "NULL".to_owned(), |e| format!("'{e}'"));
        postgres.push_str(&format!(
            "INSERT INTO signing_keys (kid, public_jwk, created_at, retired_at, endorsement) VALUES ('{}', '{jwk}', now(), NULL, {endorsement});",
            k.kid
        ));
        sqlite.push_str(&format!(
            "INSERT INTO signing_keys (kid, public_jwk, created_at, retired_at, endorsement) VALUES ('{}', '{jwk}', {}, NULL, {endorsement});",
            k.kid,
            k.created_at.timestamp_micros()
        ));
    }
    (postgres, sqlite)
}

async fn forged_keys(env: TestEnv) {
    let (mut env, files, base, stop) = prepared(env).await;
    let keys = PathBuf::from(&env.settings.keys_dir);
    let genuine = fieldtrail::signing::keys::KeyStore::new(&keys)
        .list()
        .unwrap();
    assert_eq!(genuine.len(), 1);
    // An attacker with write access to the database: a key of their own, and a second one
    // endorsed by the first (a chain that leads nowhere trusted).
    let attacker = fieldtrail::signing::keys::KeyStore::new(files.path().join("attacker"));
    attacker.init().unwrap();
    attacker.rotate().unwrap();
    let forged = attacker.list().unwrap();
    let (postgres, sqlite) = inserts(&forged);
    behind_the_back(&env, &postgres, &sqlite).await;
    assert_eq!(env.journal.published_keys().await.unwrap().len(), 3);
    let anyone = reqwest::Client::new();
    let published = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, jwks) = text(&anyone, &format!("{base}/.well-known/jwks.json")).await;
    assert_eq!(status, 200, "{jwks}");
    assert_eq!(
        published(&serde_json::from_str(&jwks).unwrap()),
        vec![genuine[0].kid.clone()]
    );
    let (status, did) = text(&anyone, &format!("{base}/.well-known/did.json")).await;
    assert_eq!(status, 200, "{did}");
    for k in &forged {
        assert!(!did.contains(&k.kid), "{did}");
    }
    assert!(did.contains(&genuine[0].kid), "{did}");
    stop.cancel();
    // `keys list` names them as untrusted, `keys public` leaves them out.
    let output = fieldtrail(&env, &keys, &["keys", "list"]);
    let listed = ok(&output);
    for k in &forged {
        let line = listed.lines().find(|l| l.starts_with(&k.kid)).unwrap();
        assert!(
            line.contains("UNTRUSTED (kept by the journal, not published)"),
            "{listed}"
        );
    }
    assert!(
        listed.contains("it carries no endorsement") && listed.contains("which is not trusted"),
        "{listed}"
    );
    assert_eq!(listed.matches("UNTRUSTED").count(), 2, "{listed}");
    let public = ok(&fieldtrail(&env, &keys, &["keys", "public"]));
    assert_eq!(
        published(&serde_json::from_str(&public).unwrap()),
        vec![genuine[0].kid.clone()]
    );
    // A server without the keys directory trusts what its pinned root leads to: the genuine
    // key after a rotation (endorsed by it), never the forged ones.
    ok(&fieldtrail(&env, &keys, &["keys", "rotate"]));
    let chain = fieldtrail::signing::keys::KeyStore::new(&keys)
        .list()
        .unwrap();
    env.settings.keys_dir = files.path().join("no-directory").display().to_string();
    env.settings.signing_root = genuine[0].kid.clone();
    let (base, stop, task) = serving(&env).await;
    let (status, jwks) = text(&anyone, &format!("{base}/.well-known/jwks.json")).await;
    assert_eq!(status, 200, "{jwks}");
    assert_eq!(
        published(&serde_json::from_str(&jwks).unwrap()),
        chain.iter().map(|k| k.kid.clone()).collect::<Vec<_>>()
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    env.cleanup().await;
}

crate::both_backends!(
    a_digest_checks_the_export_of_a_copy_on_the_other_backend,
    digest_of_a_copy
);

async fn digest_of_a_copy(mut env: TestEnv) {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let keys = dir.join("keys");
    env.settings.keys_dir = keys.display().to_string();
    assert_eq!(env.import(COHORT).await.rejected, 0);
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    ok(&fieldtrail(
        &env,
        &keys,
        &[
            "audit",
            "digest",
            "--out",
            dir.join("digest.jws").to_str().unwrap(),
        ],
    ));
    ok(&fieldtrail(&env, &keys, &["keys", "rotate"]));
    std::fs::write(
        dir.join("jwks.json"),
        ok(&fieldtrail(&env, &keys, &["keys", "public"])),
    )
    .unwrap();
    // One event after the digest: in the copy, not covered by it.
    let line = r#"{"command_id": "after-the-digest", "command": "state_hypothesis", "at": "2026-01-10T10:00:00+01:00", "actor": "facilitator:f", "data": {"field_study_id": "fs25-a", "hypothesis_id": "h-after", "text": "one more"}}"#;
    env.handler()
        .handle_json(line, chrono::Utc::now())
        .await
        .unwrap();
    let target = if env.journal.kind() == fieldtrail_journal::BackendKind::Sqlite {
        TestEnv::new("digest_copy_target").await
    } else {
        TestEnv::sqlite("digest_copy_target").await
    };
    let report = fieldtrail::cli::copy::copy(
        &env.journal,
        &target.journal,
        &fieldtrail::cli::progress::Progress::hidden(),
    )
    .await
    .unwrap();
    assert_eq!((report.signing_keys, report.digests), (2, 1));
    // The digests (numbers, statements) and the published keys (endorsements) are copied.
    assert_eq!(
        target.journal.digests().await.unwrap(),
        env.journal.digests().await.unwrap()
    );
    assert_eq!(
        target.journal.published_keys().await.unwrap(),
        env.journal.published_keys().await.unwrap()
    );
    // The copy's export checks against the digest signed on the source, offline.
    ok(&fieldtrail_on(
        &target.settings.database_url,
        &keys,
        &[
            "audit",
            "export",
            "--out",
            dir.join("copy.jsonl").to_str().unwrap(),
        ],
    ));
    let (code, out) = offline(dir, "copy.jsonl");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "export verified against the signed digest: 211 events, 210 of them in the signed cut"
        ),
        "{out}"
    );
    assert!(
        out.contains("NOT COVERED: 1 events after the signed cut, from position 211"),
        "{out}"
    );
    // The copy publishes the same keys from its journal, trusted from the keys directory.
    let copied = ok(&fieldtrail_on(
        &target.settings.database_url,
        &keys,
        &["keys", "list"],
    ));
    assert_eq!(copied.lines().count(), 2, "{copied}");
    assert!(!copied.contains("UNTRUSTED"), "{copied}");
    target.cleanup().await;
    env.cleanup().await;
}

/// `audit verify --digest digest.jws --export EXPORT --public-key jwks.json --format json`.
fn offline_json(dir: &Path, export: &str) -> (Option<i32>, Value) {
    let output = crate::helpers::fieldtrail_binary()
        .env("DATABASE_URL", "sqlite:///nonexistent/directory/none.db")
        .env("FIELDTRAIL_KEYS_DIR", dir.join("no-keys-here"))
        .args(["audit", "verify", "--format", "json", "--digest"])
        .arg(dir.join("digest.jws"))
        .arg("--export")
        .arg(dir.join(export))
        .arg("--public-key")
        .arg(dir.join("jwks.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (
        output.status.code(),
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")),
    )
}

#[tokio::test]
async fn a_damaged_keys_manifest_is_refused_alike_by_http_and_the_cli() {
    let mut env = TestEnv::sqlite("signing_damaged_manifest").await;
    let files = tempfile::tempdir().unwrap();
    let keys = files.path().join("keys");
    env.settings.keys_dir = keys.display().to_string();
    assert_eq!(env.import(COHORT).await.rejected, 0);
    env.project().await;
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    std::fs::write(keys.join("keys.json"), "{\"keys\": [").unwrap();
    let (base, stop, task) = serving(&env).await;
    let anyone = reqwest::Client::new();
    for route in [
        "/.well-known/jwks.json",
        "/.well-known/did.json",
        "/credentials/status/cohort-2025",
    ] {
        let (status, body) = text(&anyone, &format!("{base}{route}")).await;
        assert_eq!(status, 503, "{route}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let message = body["message"].as_str().unwrap();
        assert_eq!(
            message, "the signing keys cannot be read (see the server's log)",
            "{route}"
        );
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    for job in [
        vec!["keys", "list"],
        vec!["keys", "public"],
        vec!["audit", "digest"],
    ] {
        let output = fieldtrail(&env, &keys, &job);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{job:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{job:?}: {stderr}");
        assert!(
            stderr.contains("keys.json does not parse"),
            "{job:?}: {stderr}"
        );
    }
    env.cleanup().await;
}

#[tokio::test]
async fn a_digest_an_export_or_a_copy_the_horizon_would_cut_short_fails_instead() {
    let mut env = TestEnv::new("signing_held_horizon").await;
    let files = tempfile::tempdir().unwrap();
    let keys = files.path().join("keys");
    env.settings.keys_dir = keys.display().to_string();
    assert_eq!(env.import(COHORT).await.rejected, 0);
    ok(&fieldtrail(&env, &keys, &["keys", "init"]));
    // A transaction elsewhere on the server holds the global log back; an event committed
    // after it is not readable until it ends.
    let mut holder = env.pool().get().await.unwrap();
    let held = holder.transaction().await.unwrap();
    held.execute("SELECT pg_current_xact_id()", &[])
        .await
        .unwrap();
    let line = r#"{"command_id": "behind-the-horizon", "command": "state_hypothesis", "at": "2026-01-10T10:00:00+01:00", "actor": "facilitator:f", "data": {"field_study_id": "fs25-a", "hypothesis_id": "h-held", "text": "held back"}}"#;
    env.handler()
        .handle_json(line, chrono::Utc::now())
        .await
        .unwrap();
    let digest = files.path().join("digest.jws");
    let export = files.path().join("journal.jsonl");
    let spawn = |args: Vec<String>| {
        crate::helpers::fieldtrail_binary()
            .env("DATABASE_URL", &env.settings.database_url)
            .env("FIELDTRAIL_KEYS_DIR", &keys)
            .env("RUST_LOG", "warn")
            // Held no longer than needed: other tests on this server wait for its horizon.
            .env(fieldtrail::signing::digest::READABLE_WAIT_ENV, "2")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let jobs = [
        spawn(vec![
            "audit".into(),
            "digest".into(),
            "--out".into(),
            digest.display().to_string(),
        ]),
        spawn(vec![
            "audit".into(),
            "export".into(),
            "--out".into(),
            export.display().to_string(),
        ]),
        // A copy would lack the held-back event and still verify.
        spawn(vec![
            "copy".into(),
            "--from".into(),
            env.settings.database_url.clone(),
            "--to".into(),
            format!("sqlite://{}", files.path().join("copy.db").display()),
        ]),
    ];
    let outputs: Vec<Output> = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|j| j.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap();
    held.rollback().await.unwrap();
    for output in &outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("has held the global log back for 2 s")
                && stderr.contains("nothing was signed or exported"),
            "{stderr}"
        );
    }
    assert!(!digest.exists() && !export.exists());
    assert!(env.journal.digests().await.unwrap().is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn a_copy_leaves_a_malformed_key_row_behind_and_completes() {
    let env = TestEnv::new("signing_copy_malformed_key").await;
    assert_eq!(env.import(COHORT).await.rejected, 0);
    env.pool()
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO signing_keys (kid, public_jwk, created_at, endorsement) VALUES ('g1', '{\"a\": 1}', now(), 'x.y.z')",
            &[],
        )
        .await
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", files.path().join("copy.db").display());
    let output = crate::helpers::fieldtrail_binary()
        .env("DATABASE_URL", &env.settings.database_url)
        .env("RUST_LOG", "warn")
        .args([
            "copy",
            "--from",
            &env.settings.database_url,
            "--to",
            &target,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("malformed signing key row"), "{stderr}");
    let copy = fieldtrail_journal::open_existing(&target, 1).await.unwrap();
    assert_eq!(
        copy.head().await.unwrap(),
        env.journal.head().await.unwrap()
    );
    assert!(copy.published_keys().await.unwrap().is_empty());
    env.cleanup().await;
}
