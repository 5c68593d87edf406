#!/usr/bin/env python3
"""An independent check of fieldtrail's hash chain, for auditors: needs only Python 3 and psql.

    scripts/verify_journal.py postgres://postgres@127.0.0.1:5432/fieldtrail

Recomputes every event's hash from its columns (canonical form: ARCHITECTURE.md, "Hash
chain"; a row of chain version 2 also covers `chain_version` and `position`, a row of version
1, written before positions were hashed, does not; `command` and `reported_actor` are covered
when the row has them), follows each stream's chain, and prints the journal digest (RFC 6962 Merkle root of
the stream heads), which must equal the one `fieldtrail audit verify` prints. Exit status 0
when every chain is intact, 2 otherwise. It reads the whole journal into memory: meant for an
audit, not for millions of events (use `fieldtrail audit verify` for those).
"""

import hashlib
import json
import subprocess
import sys

QUERY = """
SELECT row_to_json(t) FROM (
  SELECT stream_type, stream_id, stream_version, position, event_id, event_type, event_version,
         payload, actor, reported_actor, command, command_id, correlation_id, causation_id,
         to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
         to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
         encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash, chain_version
  FROM events ORDER BY stream_type, stream_id, stream_version) t
"""


def canonical_hash(row):
    fields = {k: v for k, v in row.items() if k != "hash"}
    # Optional members: absent when the column is NULL (rows written before it existed).
    for optional in ("reported_actor", "command"):
        if fields.get(optional) is None:
            fields.pop(optional, None)
    if fields.get("chain_version", 1) == 1:
        # Chain version 1: neither the version nor the position is covered.
        fields.pop("chain_version", None)
        fields.pop("position", None)
    elif fields["chain_version"] != 2:
        return None
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def merkle(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle(leaves[:k]) + merkle(leaves[k:])).digest()


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 1
    out = subprocess.run(
        ["psql", sys.argv[1], "-AtX", "-v", "ON_ERROR_STOP=1", "-c", QUERY],
        check=True, capture_output=True, text=True,
    ).stdout
    heads, broken, events = {}, [], 0
    last = {}
    for line in out.splitlines():
        row = json.loads(line)
        events += 1
        stream = (row["stream_type"], row["stream_id"])
        if row["hash"] is not None:
            heads[stream] = (row["stream_version"], row["hash"])
        if stream in broken_streams(broken):
            continue
        version, previous = last.get(stream, (0, "0" * 64))
        name = "%s/%s" % stream
        if row["stream_version"] != version + 1:
            broken.append((name, version + 1, "missing or out of place"))
        elif row["hash"] is None or canonical_hash(row) != row["hash"]:
            broken.append((name, row["stream_version"], "content does not match its hash"))
        elif row["prev_hash"] != previous:
            broken.append((name, row["stream_version"], "prev_hash is not the previous hash"))
        else:
            last[stream] = (row["stream_version"], row["hash"])
    for name, version, reason in broken:
        print("BROKEN %s version %d: %s" % (name, version, reason))
    leaves = [
        ("%s/%s %d %s" % (t, i, v, h)).encode("utf-8")
        for (t, i), (v, h) in sorted(heads.items(), key=lambda kv: (kv[0][0].encode(), kv[0][1].encode()))
    ]
    print("%d events in %d streams: %s" % (events, len(heads), "NOT verified" if broken else "verified"))
    print("digest:", merkle(leaves).hex())
    return 2 if broken else 0


def broken_streams(broken):
    return {tuple(name.split("/", 1)) for name, _, _ in broken}


if __name__ == "__main__":
    sys.exit(main())
