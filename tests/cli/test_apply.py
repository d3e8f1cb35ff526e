"""`gatewayctl apply FILE`: what a config file declares ends up in Postgres, and bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Gatewayctl, fails, flat, run_json
from weir.storage.database import connect

EXAMPLE = Path(__file__).resolve().parents[2] / "gateway.example.toml"

DECLARED = """
[[providers]]
name = "hosted"
kind = "openai"
base_url = "https://api.example.test/v1"
credential = "env:HOSTED_CREDENTIAL"
headers = { "OpenAI-Organization" = "org-1" }

[[models]]
alias = "chat"
fallbacks = []
deployments = [
  { provider = "hosted", model = "gpt-small", weight = 3, timeout = 30 },
  { provider = "hosted", model = "gpt-large", weight = 1 },
]

[[groups]]
name = "engineering"
aliases = ["chat"]

[[users]]
name = "ci-bot"
groups = ["engineering"]
limits = { requests_per_minute = 600 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_example_config_applies(gatewayctl: Gatewayctl) -> None:
    changes = run_json(gatewayctl, "apply", str(EXAMPLE))

    assert changes == [
        {"action": "created", "kind": "provider", "name": "local"},
        {"action": "created", "kind": "model", "name": "gemma"},
        {"action": "created", "kind": "group", "name": "everyone"},
        {"action": "created", "kind": "user", "name": "demo"},
    ]
    assert run_json(gatewayctl, "users", "show", "demo")["groups"] == ["everyone"]


def test_declared_state_reaches_database(gatewayctl: Gatewayctl, tmp_path: Path, database_url: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTED_CREDENTIAL", "sk-apply-sentinel-credential")

    result = gatewayctl("apply", str(write(tmp_path, DECLARED)))

    assert result.exit_code == 0, result.stderr
    assert "Applied" in flat(result.stdout)
    model = run_json(gatewayctl, "models", "show", "chat")
    assert [(d["model"], d["weight"]) for d in model["deployments"]] == [("gpt-small", 3), ("gpt-large", 1)]
    provider = run_json(gatewayctl, "providers", "show", "hosted")
    assert provider["has_credential"] is True
    assert provider["source"] == "config"
    with connect(database_url) as connection:
        row = connection.execute("SELECT credential FROM providers WHERE name = 'hosted'").fetchone()
        limits = connection.execute("SELECT requests_per_minute FROM rate_limits").fetchone()
    assert b"sk-apply-sentinel-credential" not in bytes(row["credential"])
    assert limits["requests_per_minute"] == 600


def test_apply_twice_updates_in_place(gatewayctl: Gatewayctl, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTED_CREDENTIAL", "sk-first")
    path = write(tmp_path, DECLARED)
    run_json(gatewayctl, "apply", str(path))
    path.write_text(DECLARED.replace("weight = 3", "weight = 5"))

    changes = run_json(gatewayctl, "apply", str(path))

    assert {change["action"] for change in changes} == {"updated"}
    deployments = run_json(gatewayctl, "models", "show", "chat")["deployments"]
    assert deployments[0]["weight"] == 5
    assert len(run_json(gatewayctl, "models", "list")) == 1


def test_missing_credential_variable_fails_and_changes_nothing(gatewayctl: Gatewayctl, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTED_CREDENTIAL", raising=False)

    message = fails(gatewayctl, "apply", str(write(tmp_path, DECLARED)))

    assert "HOSTED_CREDENTIAL" in message
    assert "not set" in message
    assert run_json(gatewayctl, "providers", "list") == []


def test_plain_credential_in_file_is_rejected(gatewayctl: Gatewayctl, tmp_path: Path) -> None:
    text = DECLARED.replace('credential = "env:HOSTED_CREDENTIAL"', 'credential = "sk-plain-text-secret"')

    message = fails(gatewayctl, "apply", str(write(tmp_path, text)))

    assert "env:NAME" in message
    assert "sk-plain-text-secret" not in message


def test_invalid_file_names_file_and_key(gatewayctl: Gatewayctl, tmp_path: Path) -> None:
    path = write(tmp_path, DECLARED.replace('kind = "openai"', 'kind = "openia"'))

    message = fails(gatewayctl, "apply", str(path))

    assert str(path) in message
    assert "providers[0].kind" in message


def test_missing_file_is_reported(gatewayctl: Gatewayctl, tmp_path: Path) -> None:
    message = fails(gatewayctl, "apply", str(tmp_path / "absent.toml"))

    assert "does not exist" in message
