"""A gateway in front of a scripted upstream, with two users and their keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import openai
import pytest

from tests.conftest import seed
from tests.gateway import GatewayProcess
from tests.upstream import ScriptedUpstream
from weir.config.spec import GatewaySpec
from weir.crypto import CredentialBox


@dataclass
class Proxy:
    gateway: GatewayProcess
    upstream: ScriptedUpstream
    keys: dict[str, str]
    database_url: str

    @property
    def url(self) -> str:
        return self.gateway.base_url

    def client(self, key: str = "alice", **options: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys.get(key, key), max_retries=0,
                             **options)  # type: ignore[arg-type]


def standard_spec(upstream_url: str, **provider: object) -> GatewaySpec:
    """Alias `chat` maps to another upstream name; `same` keeps its name; `hidden` is granted to nobody."""
    return msgspec.convert({
        "providers": [{"name": "scripted", "kind": "openai-compatible", "base_url": upstream_url, **provider}],
        "models": [
            {"alias": "chat", "deployments": [{"provider": "scripted", "model": "upstream-model", "timeout": 2}]},
            {"alias": "same", "deployments": [{"provider": "scripted", "model": "same", "timeout": 2}]},
            {"alias": "hidden", "deployments": [{"provider": "scripted", "model": "hidden"}]},
        ],
        "groups": [{"name": "team", "aliases": ["chat", "same"]}],
        "users": [{"name": "alice", "groups": ["team"]}, {"name": "bob"}],
    }, GatewaySpec)


@pytest.fixture
def proxy(database_url: str, credential_box: CredentialBox, upstream: ScriptedUpstream,
          start_gateway: Callable[..., GatewayProcess]) -> Proxy:
    keys = seed(database_url, credential_box, standard_spec(upstream.base_url), {"alice": "alice", "bob": "bob"})
    return Proxy(gateway=start_gateway(), upstream=upstream, keys=keys, database_url=database_url)
