"""Helpers for driving `gatewayctl` in tests: JSON output, flattened text, a provider on a scripted upstream."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.upstream import Reply, ScriptedUpstream

Gatewayctl = Callable[..., CliResult]


def flat(text: str) -> str:
    """Join the lines rich wrapped at the terminal width, so sentences can be matched whole."""
    return " ".join(text.split())


def run_json(gatewayctl: Gatewayctl, *args: str) -> Any:
    """Run a command with --json, require exit 0, and return the parsed document."""
    result = gatewayctl(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def fails(gatewayctl: Gatewayctl, *args: str, code: int = 1) -> str:
    """Run a command that must fail with `code`; return its flattened stderr."""
    result = gatewayctl(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    return flat(result.stderr)


def closed_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def models_upstream(upstream: ScriptedUpstream) -> ScriptedUpstream:
    """The scripted upstream, scripted to return a model list."""
    upstream.script(Reply.json({"object": "list", "data": [{"id": "upstream-model", "object": "model"}]}))
    return upstream


@pytest.fixture
def provider(gatewayctl: Gatewayctl, models_upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch) -> str:
    """A provider named `local` on the scripted upstream, with a credential; returns its name."""
    monkeypatch.setenv("LOCAL_CREDENTIAL", "local-credential")
    result = gatewayctl("providers", "add", "local", "--kind", "openai-compatible",
                        "--base-url", models_upstream.base_url, "--credential-env", "LOCAL_CREDENTIAL")
    assert result.exit_code == 0, result.stderr
    return "local"


@pytest.fixture
def alias(gatewayctl: Gatewayctl, provider: str) -> str:
    """A model alias `chat` with one deployment on the `local` provider; returns its name."""
    result = gatewayctl("models", "add", "chat", "--deployment", f"{provider}/upstream-model")
    assert result.exit_code == 0, result.stderr
    return "chat"
