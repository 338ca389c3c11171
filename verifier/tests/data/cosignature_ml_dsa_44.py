"""Makes cosignature_ml_dsa_44.json: ML-DSA-44 witness cosignatures (C2SP
tlog-cosignature, signature type 0x06) computed from the spec's text alone,
with the `cryptography` package (OpenSSL's ML-DSA, version 47 or later), not
with the ledger's code.

    python3 verifier/tests/data/cosignature_ml_dsa_44.py ../shared/testvectors/note.json

Given a cosignature line made elsewhere as a second argument, it only
checks that line against the vector's key and prints "verifies" or fails.

OpenSSL signs with fresh randomness (FIPS 204's hedged variant), so the
lines differ at each run; any of them must verify. The checkpoint is the
shared vectors' note.json checkpoint, signed by the Go reference's log key.
"""

import base64
import hashlib
import json
import struct
import sys

from cryptography.hazmat.primitives.asymmetric import mldsa

NAME = "witness.example.org/pq1"
SEED = bytes(range(0x60, 0x80))
TIME = 1764979200
LABEL = b"subtree/v1\n\x00"


def key_id(name: bytes, alg: int, key: bytes) -> bytes:
    return hashlib.sha256(name + b"\n" + bytes([alg]) + key).digest()[:4]


def message(cosigner: str, timestamp: int, body: str) -> bytes:
    origin, size, root = body.split("\n")[:3]
    c, o = cosigner.encode(), origin.encode()
    return (LABEL + bytes([len(c)]) + c + struct.pack(">Q", timestamp)
            + bytes([len(o)]) + o + struct.pack(">QQ", 0, int(size)) + base64.b64decode(root))


def line(private, kid: bytes, timestamp: int, body: str) -> str:
    sig = private.sign(message(NAME, timestamp, body))
    return "\u2014 %s %s\n" % (NAME, base64.b64encode(kid + struct.pack(">Q", timestamp) + sig).decode())


def main() -> None:
    note = json.load(open(sys.argv[1]))
    body = note["checkpoint_body"]
    private = mldsa.MLDSA44PrivateKey.from_seed_bytes(SEED)
    public = private.public_key().public_bytes_raw()
    kid = key_id(NAME.encode(), 0x06, public)
    if len(sys.argv) > 2:
        raw = base64.b64decode(sys.argv[2].rstrip("\n").split(" ")[-1])
        assert raw[:4] == kid, "another key ID"
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        private.public_key().verify(raw[12:], message(NAME, timestamp, body))
        print("verifies")
        return
    out = {
        "name": NAME,
        "seed": SEED.hex(),
        "vkey": "%s+%s+%s" % (NAME, kid.hex(), base64.b64encode(b"\x06" + public).decode()),
        "skey": "PRIVATE+KEY+%s+%s+%s" % (NAME, kid.hex(), base64.b64encode(b"\x06" + SEED).decode()),
        "time": TIME,
        "message": message(NAME, TIME, body).hex(),
        "line": line(private, kid, TIME, body),
        "line_no_time": line(private, kid, 0, body),
    }
    json.dump(out, sys.stdout, indent=1)
    print()


main()
