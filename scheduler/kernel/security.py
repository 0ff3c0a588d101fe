"""Secrets the service hands out: references, manage tokens, SMS codes.

References are short and human (read over a counter, typed on a phone) yet carry
40 random bits; manage tokens carry 192 bits and are stored only as a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Crockford's base32 without I, L, O, U: nothing to confuse when read aloud.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference(office_code: str) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))  # 8 x 5 = 40 bits
    prefix = "".join(ch for ch in office_code.upper() if ch.isalnum())[:4]
    return f"{prefix}-{body[:4]}-{body[4:]}"


def normalize_reference(raw: str) -> str:
    """Accept what people type: lower case, spaces, O for 0, I/L for 1."""
    cleaned = raw.strip().upper().replace(" ", "")
    head, sep, tail = cleaned.partition("-")
    tail = tail.replace("O", "0").replace("I", "1").replace("L", "1")
    return f"{head}{sep}{tail}"


def new_manage_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    """HMAC so that a leaked table does not reveal ID numbers or codes by brute force."""
    message = f"{purpose}:{value}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
