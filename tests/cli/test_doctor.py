"""`gatewayctl doctor`: one line per check, and exit 1 when any fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cli.conftest import Gatewayctl, closed_port, flat, run_json
from tests.database import DatabaseFactory, with_database
from tests.upstream import Reply, ScriptedUpstream
from weir.cli.documents import SHAPES
from weir.crypto import generate_data_key


@pytest.fixture
def unmigrated_database(database_factory: DatabaseFactory) -> Iterator[str]:
    name = f"weir_unmigrated_{os.getpid()}"
    with psycopg.connect(database_factory.server_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    yield with_database(database_factory.server_url, name)
    with psycopg.connect(database_factory.server_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def test_doctor_healthy_setup_passes(gatewayctl: Gatewayctl, provider: str) -> None:
    result = gatewayctl("doctor")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ok   config", "ok   database", "ok   secret key",
                                                     "ok   provider local"]
    assert "schema is at revision" in lines[1]
    assert "decrypts all 1 stored credential(s)" in lines[2]
    assert "returned 200" in lines[3]


def test_doctor_json_has_documented_shape(gatewayctl: Gatewayctl, provider: str) -> None:
    document = run_json(gatewayctl, "doctor")
    assert set(document) == set(SHAPES["doctor"])
    assert document["ok"] is True
    assert [check["name"] for check in document["checks"]] == ["config", "database", "secret key", "provider local"]
    assert all(set(check) == {"name", "ok", "detail"} for check in document["checks"])


def test_doctor_skips_disabled_providers(gatewayctl: Gatewayctl, provider: str) -> None:
    gatewayctl("providers", "update", provider, "--disable")
    names = [check["name"] for check in run_json(gatewayctl, "doctor")["checks"]]
    assert names == ["config", "database", "secret key"]


def test_doctor_failing_provider_exits_one(gatewayctl: Gatewayctl, provider: str,
                                           models_upstream: ScriptedUpstream) -> None:
    models_upstream.script(Reply(status=503))
    result = gatewayctl("doctor")
    assert result.exit_code == 1
    assert "FAIL provider local: Provider 'local' returned 503" in flat(result.stdout)
    assert flat(result.stderr) == "Error: 1 of 4 checks failed: provider local."


def test_doctor_unreachable_provider_exits_one(gatewayctl: Gatewayctl) -> None:
    gatewayctl("providers", "add", "gone", "--kind", "openai", "--base-url", f"http://127.0.0.1:{closed_port()}/v1")
    document_result = gatewayctl("doctor", "--json")
    assert document_result.exit_code == 1
    assert "is unreachable at" in document_result.stdout


def test_doctor_wrong_secret_key_fails(gatewayctl: Gatewayctl, provider: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_SECRET_KEY", generate_data_key())
    result = gatewayctl("doctor")
    assert result.exit_code == 1
    output = flat(result.stdout)
    assert "FAIL secret key: The secret key cannot decrypt the credential of 1 provider(s): local." in output
    assert "FAIL provider local" in output
    assert flat(result.stderr) == "Error: 2 of 4 checks failed: secret key, provider local."


def test_doctor_invalid_secret_key_fails(gatewayctl: Gatewayctl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_SECRET_KEY", "too-short")
    result = gatewayctl("doctor")
    assert result.exit_code == 1
    assert "FAIL secret key: The secret key from WEIR_SECRET_KEY is not 32 bytes" in flat(result.stdout)


def test_doctor_unreachable_database_fails(gatewayctl: Gatewayctl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://weir:hunter2@127.0.0.1:{closed_port()}/weir")
    result = gatewayctl("doctor")
    assert result.exit_code == 1
    output = flat(result.stdout)
    assert "FAIL database: Cannot connect to Postgres at" in output
    assert "hunter2" not in output + result.stderr
    assert flat(result.stderr) == "Error: 1 of 2 checks failed: database."


def test_doctor_unmigrated_database_fails(gatewayctl: Gatewayctl, unmigrated_database: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", unmigrated_database)
    result = gatewayctl("doctor")
    assert result.exit_code == 1
    assert "FAIL database: The schema is at revision none" in flat(result.stdout)
    assert "Run `gatewayctl migrate`" in flat(result.stdout)


def test_doctor_invalid_config_fails(gatewayctl: Gatewayctl, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[server\nlisten = 1\n")
    result = gatewayctl("--config", str(config), "doctor")
    assert result.exit_code == 1
    assert f"FAIL config: {config} is not valid TOML" in flat(result.stdout)


def test_doctor_reads_given_config(gatewayctl: Gatewayctl, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:18080"\n')
    result = gatewayctl("--config", str(config), "doctor")
    assert result.exit_code == 0
    assert f"ok config: Read {config}. The proxy would listen on 127.0.0.1:18080." in flat(result.stdout)


def test_doctor_without_credentials_passes(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("doctor")
    assert result.exit_code == 0
    assert "ok secret key: The secret key loads; no provider credential is stored yet." in flat(result.stdout)
