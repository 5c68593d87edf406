#!/usr/bin/env python3
"""An independent verifier of fieldtrail's VC-JWTs: PyJWT with `cryptography` (no fieldtrail code).

    verify_vc_jwt.py JWKS_FILE TOKEN_FILE [STATUS_LIST_TOKEN_FILE]

Checks the token's header (alg EdDSA, typ vc+jwt), finds the key its `kid` names (a DID URL:
the fragment is the key id) in the JWK Set, verifies the EdDSA signature, and prints
{"payload": …} as JSON. With a status list token: verifies it the same way, decodes its
`encodedList` (multibase base64url, GZIP) and adds "status_bit", the bit at the credential's
`credentialStatus.statusListIndex` (1: revoked). Exit status 1 when anything does not verify.
"""

import base64
import gzip
import json
import sys

import jwt

OPTIONS = {"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False}


def verify(jwks, token):
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "EdDSA" or header.get("typ") != "vc+jwt":
        raise ValueError("unexpected header %r" % header)
    key_id = header["kid"].split("#")[-1]
    keys = [k for k in jwks["keys"] if k.get("kid") == key_id]
    if not keys:
        raise ValueError("no key %s in the JWK Set" % header["kid"])
    return jwt.decode(token, key=jwt.PyJWK(keys[0]), algorithms=["EdDSA"], options=OPTIONS)


def main():
    jwks = json.load(open(sys.argv[1]))
    try:
        payload = verify(jwks, open(sys.argv[2]).read().strip())
        out = {"payload": payload}
        if len(sys.argv) > 3:
            status = verify(jwks, open(sys.argv[3]).read().strip())
            encoded = status["credentialSubject"]["encodedList"]
            assert encoded.startswith("u"), encoded[:8]
            data = encoded[1:]
            bits = gzip.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            index = int(payload["credentialStatus"]["statusListIndex"])
            out["status_bit"] = (bits[index // 8] >> (7 - index % 8)) & 1
            out["status_list_bits"] = len(bits) * 8
    except Exception as e:  # every failure is a verdict, printed
        print("NOT verified: %s: %s" % (type(e).__name__, e))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
