"""Credential sealing and virtual-key hashing."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from weir.crypto import (CredentialBox, generate_virtual_key, hash_virtual_key, load_credential_box,
                         virtual_key_prefix)
from weir.errors import ConfigError


def test_sealed_credential_opens_and_hides_clear_text() -> None:
    box = CredentialBox(os.urandom(32))

    sealed = box.seal("sk-secret-credential")

    assert b"sk-secret-credential" not in sealed
    assert box.open(sealed) == "sk-secret-credential"
    assert box.seal("sk-secret-credential") != sealed  # a fresh nonce each time


def test_wrong_data_key_fails_with_guidance() -> None:
    sealed = CredentialBox(os.urandom(32)).seal("x")

    with pytest.raises(ConfigError, match="WEIR_SECRET_KEY"):
        CredentialBox(os.urandom(32)).open(sealed)


def test_key_file_is_created_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIR_SECRET_KEY", raising=False)
    key_file = tmp_path / "state" / "secret.key"

    sealed = load_credential_box(key_file).seal("credential")

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_credential_box(key_file).open(sealed) == "credential"
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]


def test_environment_key_wins_over_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_key = os.urandom(32)
    monkeypatch.setenv("WEIR_SECRET_KEY", base64.urlsafe_b64encode(data_key).decode())

    sealed = load_credential_box(tmp_path / "secret.key").seal("credential")

    assert CredentialBox(data_key).open(sealed) == "credential"
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize("value", ["short", base64.b64encode(b"x" * 16).decode(), "!!!not base64!!!"])
def test_malformed_secret_key_is_rejected(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_SECRET_KEY", value)

    with pytest.raises(ConfigError, match="not 32 bytes of base64"):
        load_credential_box(tmp_path / "secret.key")


def test_virtual_key_shape_and_prefix() -> None:
    key = generate_virtual_key()

    assert key.startswith("wr-")
    assert len(key) == 46
    assert virtual_key_prefix(key) == key[:12]
    assert hash_virtual_key(key) == hash_virtual_key(key)
    assert hash_virtual_key(key) != hash_virtual_key(generate_virtual_key())


def test_credential_box_repr_is_redacted() -> None:
    assert repr(CredentialBox(os.urandom(32))) == "CredentialBox(<redacted>)"
