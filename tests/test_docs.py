"""The configuration reference documents every key that `gateway.toml` accepts."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from weir.config.spec import DeploymentSpec, GatewaySpec

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def config_keys() -> list[str]:
    keys = []
    for section in msgspec.structs.fields(GatewaySpec):
        struct = section.type.__args__[0] if section.name in ("providers", "models", "groups", "users") \
            else section.type
        keys += [f"{section.name}.{field.name}" for field in msgspec.structs.fields(struct)]
    keys += [f"deployments.{field.name}" for field in msgspec.structs.fields(DeploymentSpec)]
    return keys


@pytest.mark.parametrize("key", config_keys())
def test_config_key_is_documented(key: str) -> None:
    assert f"`{key}`" in REFERENCE.read_text(), f"{key} is missing from docs/configuration.md"
