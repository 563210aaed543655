"""PostgreSQL SCRAM-SHA-256 password verifiers, computed by the program.

The Glance role is given a verifier instead of its password: the server stores a
`SCRAM-SHA-256$...` string as it is, so the plaintext never reaches the server and no SQL
quoting is involved (pulumi-postgresql quotes role passwords in a way that stores a
backslash twice). The salt is kept in state, so the same password always gives the same
verifier and a re-run shows no change.

Not `scramp` (pg8000's SCRAM library): its SASLprep raises on a control character or a
mixed-direction password, where PostgreSQL falls back to the raw bytes; such passwords
must keep working, and scramp would add asn1crypto for one PBKDF2 call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import stringprep
import unicodedata

# PostgreSQL's own default (scram_iterations, since 16 configurable; 4096 before).
ITERATIONS = 4096
SALT_BYTES = 16


def verifier(password: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """The value PostgreSQL stores in pg_authid.rolpassword for `password` (RFC 5803 form)."""
    salted = hashlib.pbkdf2_hmac("sha256", _normalize(password), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _normalize(password: str) -> bytes:
    """SASLprep (RFC 4013) as PostgreSQL applies it: the raw bytes where it does not apply."""
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    if any(check(c) for c in prepared for check in prohibited) or not _bidi_ok(prepared):
        return password.encode()
    return prepared.encode()


def _bidi_ok(text: str) -> bool:
    """RFC 3454 section 6: right-to-left text must be wholly so, bracketed by RandALCat."""
    if not any(stringprep.in_table_d1(c) for c in text):
        return True
    return (
        not any(stringprep.in_table_d2(c) for c in text)
        and stringprep.in_table_d1(text[0])
        and stringprep.in_table_d1(text[-1])
    )
