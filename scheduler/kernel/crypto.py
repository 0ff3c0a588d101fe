"""Encryption of personal data at rest (ID numbers): AES-256-GCM with rotatable keys.

Uniqueness checks use the keyed hash (``security.keyed_hash``); this module keeps
the copy a clerk may reveal. A sealed value names the key that sealed it, so keys
rotate without a flag day: the first key of ``DATA_KEYS`` seals, every listed key
opens, and a re-seal job (or the retention job) moves old rows to the new key.
Without ``DATA_KEYS`` (development and tests only) a key is derived from
SECRET_KEY, so a fresh checkout works with no extra setting.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"


class Keys(Protocol):
    """What sealing reads of the settings (``scheduler.settings.Settings`` is one):
    the kernel sits below the settings module and is handed them."""

    @property
    def data_keys(self) -> tuple[bytes, ...]: ...
    @property
    def secret_key(self) -> str: ...
    def __hash__(self) -> int: ...  # the keyring is cached per settings


class SealError(ValueError):
    """A sealed value is malformed, or no configured key opens it."""


@dataclass(frozen=True)
class Keyring:
    keys: tuple[bytes, ...]

    @property
    def current(self) -> bytes:
        return self.keys[0]


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def new_data_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@lru_cache(maxsize=4)
def keyring(settings: Keys) -> Keyring:
    if settings.data_keys:
        return Keyring(settings.data_keys)
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"scheduler data key v1"
    ).derive(settings.secret_key.encode())
    return Keyring((derived,))


def seal(settings: Keys, purpose: str, plaintext: str) -> str:
    """Encrypt; ``purpose`` is bound as associated data (an ID cannot pose as a phone)."""
    key = keyring(settings).current
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
    body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{_VERSION}.{key_id(key)}.{body}"


def open_sealed(settings: Keys, purpose: str, value: str) -> str:
    version, _, rest = value.partition(".")
    kid, _, body = rest.partition(".")
    if version != _VERSION or not body:
        raise SealError("not a sealed value")
    for key in keyring(settings).keys:
        if key_id(key) == kid:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            try:
                return AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
            except Exception as exc:  # cryptography raises InvalidTag; keep one error type
                raise SealError("sealed value does not authenticate") from exc
    raise SealError(f"no configured key {kid}: add it to DATA_KEYS")


def needs_reseal(settings: Keys, value: str) -> bool:
    """True when ``value`` was sealed with a key other than the current one."""
    return value.split(".")[1:2] != [key_id(keyring(settings).current)]
