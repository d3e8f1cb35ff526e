"""`gatewayctl models`: aliases and their deployments, with --json and bad input."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Gatewayctl, fails, flat, run_json
from weir.cli.documents import SHAPES


def test_models_add_prints_sentence(gatewayctl: Gatewayctl, provider: str) -> None:
    result = gatewayctl("models", "add", "chat", "--deployment", f"{provider}/m1",
                        "--deployment", f"{provider}/m2,weight=3")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Added model alias chat with 2 deployment(s)."


def test_models_add_json_has_documented_shape(gatewayctl: Gatewayctl, provider: str) -> None:
    document = run_json(gatewayctl, "models", "add", "chat",
                        "--deployment", f"{provider}/upstream-model,weight=2,timeout=30,connect_timeout=3")
    assert set(document) == set(SHAPES["model alias"])
    assert document["deployments"] == [
        {"provider": "local", "model": "upstream-model", "weight": 2, "timeout": 30.0, "connect_timeout": 3.0}
    ]


@pytest.mark.parametrize("setting", ["weight=-1", "weight=1.5", "weight=many", "weight=nan", "weight=inf"])
def test_models_add_invalid_weight_names_flag(gatewayctl: Gatewayctl, provider: str, setting: str) -> None:
    error = fails(gatewayctl, "models", "add", "chat", "--deployment", f"{provider}/m,{setting}")
    assert error.startswith(f"Error: --deployment '{provider}/m,{setting}': weight must be")


def test_models_add_invalid_timeout_names_flag(gatewayctl: Gatewayctl, provider: str) -> None:
    error = fails(gatewayctl, "models", "add", "chat", "--deployment", f"{provider}/m,timeout=0")
    assert "timeouts must be more than 0 seconds" in error


def test_models_add_malformed_deployment_shows_form(gatewayctl: Gatewayctl, provider: str) -> None:
    error = fails(gatewayctl, "models", "add", "chat", "--deployment", "just-a-model")
    assert error.startswith("Error: --deployment 'just-a-model' is not of the form PROVIDER/MODEL")


def test_models_add_unknown_provider_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "models", "add", "chat", "--deployment", "nowhere/m")
    assert error == "Error: No provider named 'nowhere'. List providers with `gatewayctl providers list`."
    assert run_json(gatewayctl, "models", "list") == []


def test_models_add_duplicate_alias_names_conflict(gatewayctl: Gatewayctl, alias: str, provider: str) -> None:
    error = fails(gatewayctl, "models", "add", alias, "--deployment", f"{provider}/m")
    assert error == "Error: An alias named 'chat' already exists."


def test_models_add_without_deployment_is_bad_usage(gatewayctl: Gatewayctl) -> None:
    assert gatewayctl("models", "add", "chat").exit_code == 2


def test_models_list_shows_table_and_json(gatewayctl: Gatewayctl, alias: str) -> None:
    table = gatewayctl("models", "list")
    assert "local/upstream-model" in table.stdout
    assert [document["alias"] for document in run_json(gatewayctl, "models", "list")] == [alias]


def test_models_show_prints_deployments(gatewayctl: Gatewayctl, alias: str) -> None:
    result = gatewayctl("models", "show", alias)
    assert result.exit_code == 0
    assert "upstream-model" in result.stdout
    assert "Attempts per request: 3" in flat(result.stdout)
    assert set(run_json(gatewayctl, "models", "show", alias)) == set(SHAPES["model alias"])


def test_models_show_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "models", "show", "gpt-9")
    assert error == "Error: No model alias named 'gpt-9'. List aliases with `gatewayctl models list`."


def test_models_update_replaces_deployments(gatewayctl: Gatewayctl, alias: str, provider: str) -> None:
    document = run_json(gatewayctl, "models", "update", alias, "--deployment", f"{provider}/bigger,weight=5",
                        "--strategy", "least-busy", "--max-attempts", "2")
    assert [d["model"] for d in document["deployments"]] == ["bigger"]
    assert document["deployments"][0]["weight"] == 5
    assert document["strategy"] == "least-busy"
    assert document["max_attempts"] == 2


def test_models_update_fallbacks_keep_deployments(gatewayctl: Gatewayctl, alias: str, provider: str) -> None:
    gatewayctl("models", "add", "backup", "--deployment", f"{provider}/small")
    document = run_json(gatewayctl, "models", "update", alias, "--fallback", "backup")
    assert document["fallbacks"] == ["backup"]
    assert [d["model"] for d in document["deployments"]] == ["upstream-model"]


def test_models_update_unknown_fallback_says_how_to_list(gatewayctl: Gatewayctl, alias: str) -> None:
    assert "gatewayctl models list" in fails(gatewayctl, "models", "update", alias, "--fallback", "gpt-9")


def test_models_update_invalid_strategy_names_flag(gatewayctl: Gatewayctl, alias: str) -> None:
    error = fails(gatewayctl, "models", "update", alias, "--strategy", "random")
    assert error == "Error: --strategy 'random' is not a strategy. Use one of: weighted, least-busy."


def test_models_update_without_changes_is_rejected(gatewayctl: Gatewayctl, alias: str) -> None:
    assert fails(gatewayctl, "models", "update", alias).startswith("Error: Nothing to change")


def test_models_remove_says_what_went(gatewayctl: Gatewayctl, alias: str) -> None:
    result = gatewayctl("models", "remove", alias)
    assert result.exit_code == 0
    assert flat(result.stdout) == "Removed model alias chat and its 1 deployment(s)."
    assert run_json(gatewayctl, "models", "list") == []


def test_models_remove_json_has_documented_shape(gatewayctl: Gatewayctl, alias: str) -> None:
    document = run_json(gatewayctl, "models", "remove", alias)
    assert document == {"alias": "chat", "removed_deployments": 1}
    assert set(document) == set(SHAPES["removed model alias"])


def test_models_remove_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    assert "gatewayctl models list" in fails(gatewayctl, "models", "remove", "gpt-9")
