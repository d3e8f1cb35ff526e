"""Secrets at rest: provider-credential encryption and virtual-key hashing.

Provider credentials are sealed with AES-256-GCM under a data key that comes
from `WEIR_SECRET_KEY` or, when that is unset, from a key file that Weir
creates on first use with 0600 permissions. Virtual keys are never stored:
only their SHA-256 digest is, and the digest is what the proxy looks up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from weir.errors import ConfigError

SECRET_KEY_ENV = "WEIR_SECRET_KEY"
VIRTUAL_KEY_PREFIX = "wr-"
KEY_PREFIX_LENGTH = 12  # "wr-" plus 9 characters: enough to tell keys apart, useless to an attacker

_NONCE_SIZE = 12
_ASSOCIATED_DATA = b"weir provider credential v1"


class CredentialBox:
    """Encrypts and decrypts provider credentials with one data key."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise ConfigError(f"The secret key must be 32 bytes, got {len(data_key)}.")
        self._aead = AESGCM(data_key)

    def __repr__(self) -> str:
        return "CredentialBox(<redacted>)"

    def seal(self, credential: str) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, credential.encode(), _ASSOCIATED_DATA)

    def open(self, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], _ASSOCIATED_DATA)
        except InvalidTag:
            raise ConfigError(
                "A stored provider credential cannot be decrypted with this secret key. "
                f"Set {SECRET_KEY_ENV} (or the key file) to the key that encrypted it, "
                "or set the credential again with `gatewayctl providers update`."
            ) from None
        return plain.decode()


def load_credential_box(key_file: Path) -> CredentialBox:
    """Build the credential box from `WEIR_SECRET_KEY`, or from `key_file`, creating it if absent."""
    encoded = os.environ.get(SECRET_KEY_ENV)
    if encoded:
        return CredentialBox(_decode_data_key(encoded, SECRET_KEY_ENV))

    if not key_file.exists():
        _create_key_file(key_file)
    return CredentialBox(_decode_data_key(key_file.read_text().strip(), str(key_file)))


def generate_data_key() -> str:
    """Return a new random data key, base64-encoded, fit for `WEIR_SECRET_KEY`."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def generate_virtual_key() -> str:
    """Return a new virtual key: `wr-` and 43 URL-safe characters (256 random bits)."""
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_virtual_key(key: str) -> bytes:
    """Return the SHA-256 digest under which a virtual key is stored and looked up."""
    return hashlib.sha256(key.encode()).digest()


def virtual_key_prefix(key: str) -> str:
    """Return the non-secret start of a key that listings and logs may show."""
    return key[:KEY_PREFIX_LENGTH]


def _decode_data_key(encoded: str, source: str) -> bytes:
    try:
        data_key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        data_key = b""
    if len(data_key) != 32:
        raise ConfigError(
            f"The secret key from {source} is not 32 bytes of base64. "
            "Generate one with `python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`."
        )
    return data_key


def _create_key_file(key_file: Path) -> None:
    # The key is written to a private temporary file and then hard-linked into
    # place: two processes starting at once agree on one key, because the
    # second link fails with FileExistsError and that process reads the first.
    key_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = key_file.with_name(f".{key_file.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(generate_data_key() + "\n")
    try:
        os.link(temporary, key_file)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
