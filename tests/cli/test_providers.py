"""`gatewayctl providers`: add, list, show, update, remove and test, and keeping credentials secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.cli.conftest import Gatewayctl, closed_port, fails, flat, run_json
from tests.upstream import Reply, ScriptedUpstream
from weir.cli.documents import SHAPES

SENTINEL = "sk-sentinel-7f3a9c1e5b2d"


@pytest.fixture
def sentinel_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SENTINEL_CREDENTIAL", SENTINEL)
    return "SENTINEL_CREDENTIAL"


def database_text(database_url: str) -> str:
    """Every row of every table in the public schema, as Postgres prints it (bytea as hex)."""
    with psycopg.connect(database_url) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        rows = [connection.execute(sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))).fetchall()
                for table in tables]
    return "\n".join(str(row[0]) for table_rows in rows for row in table_rows)


def test_providers_add_prints_sentence(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("providers", "add", "vllm", "--kind", "openai-compatible",
                        "--base-url", "http://127.0.0.1:9/v1/")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Added provider vllm (openai-compatible, http://127.0.0.1:9/v1)."


def test_providers_add_json_has_documented_shape(gatewayctl: Gatewayctl, sentinel_env: str) -> None:
    document = run_json(gatewayctl, "providers", "add", "azure-east", "--kind", "azure",
                        "--base-url", "https://127.0.0.1:9", "--credential-env", sentinel_env,
                        "--header", "X-Team=ml", "--api-version", "2024-10-21")
    assert set(document) == set(SHAPES["provider"])
    assert document["has_credential"] is True
    assert document["headers"] == {"x-team": "ml"}
    assert document["api_version"] == "2024-10-21"


def test_providers_credential_never_echoed_or_stored(gatewayctl: Gatewayctl, sentinel_env: str,
                                                    models_upstream: ScriptedUpstream, database_url: str) -> None:
    outputs = [
        gatewayctl("providers", "add", "secretive", "--kind", "openai", "--base-url", models_upstream.base_url,
                   "--credential-env", sentinel_env),
        gatewayctl("providers", "add", "secretive", "--kind", "openai", "--base-url", models_upstream.base_url,
                   "--credential-env", sentinel_env),
        gatewayctl("providers", "list"), gatewayctl("providers", "list", "--json"),
        gatewayctl("providers", "show", "secretive"), gatewayctl("providers", "show", "secretive", "--json"),
        gatewayctl("providers", "test", "secretive"), gatewayctl("providers", "test", "secretive", "--json"),
        gatewayctl("providers", "update", "secretive", "--credential-env", sentinel_env, "--json"),
        gatewayctl("doctor"), gatewayctl("doctor", "--json"),
    ]
    for output in outputs:
        assert SENTINEL not in output.stdout + output.stderr
    assert outputs[1].exit_code == 1
    assert models_upstream.requests[0].headers["authorization"] == f"Bearer {SENTINEL}"

    stored = database_text(database_url)
    assert "secretive" in stored
    assert SENTINEL not in stored
    assert SENTINEL.encode().hex() not in stored


def test_providers_add_credential_from_file(gatewayctl: Gatewayctl, tmp_path: Path,
                                            models_upstream: ScriptedUpstream) -> None:
    credential_file = tmp_path / "credential"
    credential_file.write_text("file-credential\n")
    gatewayctl("providers", "add", "filed", "--kind", "anthropic", "--base-url", models_upstream.base_url,
               "--credential-file", str(credential_file))
    assert gatewayctl("providers", "test", "filed").exit_code == 0
    headers = models_upstream.requests[0].headers
    assert headers["x-api-key"] == "file-credential"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def test_providers_add_missing_credential_file_names_flag(gatewayctl: Gatewayctl, tmp_path: Path) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "openai", "--base-url", "https://127.0.0.1:9",
                  "--credential-file", str(tmp_path / "absent"))
    assert error.startswith(f"Error: --credential-file {tmp_path / 'absent'} cannot be read")


def test_providers_add_unset_credential_env_names_flag(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "openai", "--base-url", "https://127.0.0.1:9",
                  "--credential-env", "WEIR_TEST_UNSET_VARIABLE")
    assert error == "Error: --credential-env WEIR_TEST_UNSET_VARIABLE: that environment variable is not set."


def test_providers_add_two_credential_sources_rejected(gatewayctl: Gatewayctl, sentinel_env: str,
                                                      tmp_path: Path) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "openai", "--base-url", "https://127.0.0.1:9",
                  "--credential-env", sentinel_env, "--credential-file", str(tmp_path / "x"))
    assert error.startswith("Error: Give only one of --credential-env")


def test_providers_have_no_bare_credential_flag(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("providers", "add", "p", "--kind", "openai", "--base-url", "https://127.0.0.1:9",
                        "--credential", SENTINEL)
    assert result.exit_code == 2
    assert SENTINEL not in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "127.0.0.1:8000/v1", "http://", "https://user:pw@127.0.0.1"])
def test_providers_add_invalid_url_names_flag(gatewayctl: Gatewayctl, url: str) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "openai", "--base-url", url)
    assert error.startswith("Error: --base-url")
    assert "pw" not in error


def test_providers_add_invalid_kind_names_flag(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "bedrock", "--base-url", "https://127.0.0.1:9")
    assert error == "Error: --kind 'bedrock' is not a provider kind. Use one of: openai, openai-compatible, anthropic, azure."


def test_providers_add_malformed_header_names_flag(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "openai", "--base-url", "https://127.0.0.1:9",
                  "--header", "X-Team")
    assert error == "Error: --header 'X-Team' is not of the form NAME=VALUE."


def test_providers_add_duplicate_names_conflict(gatewayctl: Gatewayctl, provider: str) -> None:
    error = fails(gatewayctl, "providers", "add", provider, "--kind", "openai", "--base-url", "https://127.0.0.1:9")
    assert error == "Error: A provider named 'local' already exists."


def test_providers_list_and_show(gatewayctl: Gatewayctl, alias: str, provider: str) -> None:
    listing = gatewayctl("providers", "list")
    assert "local" in listing.stdout
    assert "set" in listing.stdout
    assert [p["name"] for p in run_json(gatewayctl, "providers", "list")] == [provider]
    shown = gatewayctl("providers", "show", provider)
    assert "set (encrypted)" in shown.stdout
    assert "chat/upstream-model" in shown.stdout


def test_providers_show_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    for command in ("show", "remove", "test"):
        error = fails(gatewayctl, "providers", command, "nowhere")
        assert error == "Error: No provider named 'nowhere'. List providers with `gatewayctl providers list`."


def test_providers_update_changes_only_given_settings(gatewayctl: Gatewayctl, provider: str) -> None:
    document = run_json(gatewayctl, "providers", "update", provider, "--header", "X-A=1", "--disable")
    assert document["headers"] == {"x-a": "1"}
    assert document["enabled"] is False
    assert document["has_credential"] is True
    assert document["kind"] == "openai-compatible"


def test_providers_update_no_credential_clears_it(gatewayctl: Gatewayctl, provider: str) -> None:
    assert run_json(gatewayctl, "providers", "update", provider, "--no-credential")["has_credential"] is False


def test_providers_update_invalid_url_names_flag(gatewayctl: Gatewayctl, provider: str) -> None:
    error = fails(gatewayctl, "providers", "update", provider, "--base-url", "file:///etc/passwd")
    assert error.startswith("Error: --base-url 'file:///etc/passwd' is not an http(s) URL.")


def test_providers_remove_in_use_is_refused(gatewayctl: Gatewayctl, alias: str, provider: str) -> None:
    error = fails(gatewayctl, "providers", "remove", provider)
    assert error == ("Error: Provider 'local' is used by 1 deployment(s): chat/upstream-model. "
                     "Remove them first, or pass --force to remove them with the provider.")
    assert run_json(gatewayctl, "providers", "show", provider)["name"] == provider


def test_providers_remove_force_says_what_it_removes(gatewayctl: Gatewayctl, alias: str, provider: str) -> None:
    result = gatewayctl("providers", "remove", provider, "--force")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Removed provider local and 1 deployment(s) that used it: chat/upstream-model."
    assert run_json(gatewayctl, "models", "show", alias)["deployments"] == []


def test_providers_remove_json_has_documented_shape(gatewayctl: Gatewayctl, provider: str) -> None:
    document = run_json(gatewayctl, "providers", "remove", provider)
    assert document == {"provider": "local", "removed_deployments": []}
    assert set(document) == set(SHAPES["removed provider"])


def test_providers_test_reports_status_and_latency(gatewayctl: Gatewayctl, provider: str,
                                                   models_upstream: ScriptedUpstream) -> None:
    result = gatewayctl("providers", "test", provider)
    assert result.exit_code == 0
    assert f"Provider 'local' returned 200 for GET {models_upstream.base_url}/models in" in flat(result.stdout)
    request = models_upstream.requests[-1]
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == "Bearer local-credential"


def test_providers_test_json_has_documented_shape(gatewayctl: Gatewayctl, provider: str) -> None:
    document = run_json(gatewayctl, "providers", "test", provider)
    assert set(document) == set(SHAPES["provider test"])
    assert document["status"] == 200
    assert document["ok"] is True
    assert document["latency_ms"] >= 0


def test_providers_test_rejected_credential_fails(gatewayctl: Gatewayctl, provider: str,
                                                  models_upstream: ScriptedUpstream) -> None:
    models_upstream.script(Reply.json({"error": {"message": "bad key"}}, status=401))
    error = fails(gatewayctl, "providers", "test", provider)
    assert "returned 401" in error
    assert "Check its credential" in error


def test_providers_test_unreachable_fails(gatewayctl: Gatewayctl) -> None:
    gatewayctl("providers", "add", "gone", "--kind", "openai", "--base-url", f"http://127.0.0.1:{closed_port()}/v1")
    result = gatewayctl("providers", "test", "gone", "--json")
    assert result.exit_code == 1
    assert '"status": null' in result.stdout
    assert "is unreachable at" in flat(result.stderr)


def test_providers_add_prompted_credential_is_not_echoed(gatewayctl: Gatewayctl, environment: dict[str, str],
                                                         models_upstream: ScriptedUpstream) -> None:
    # A subprocess in its own session has no controlling terminal, so the
    # prompt reads the credential from stdin, as it would from a pipe in CI.
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "gatewayctl"), "providers", "add", "prompted", "--kind", "openai",
         "--base-url", models_upstream.base_url, "--prompt-credential"],
        input=f"{SENTINEL}\n", capture_output=True, text=True, env=environment, timeout=60, start_new_session=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert SENTINEL not in completed.stdout + completed.stderr
    assert gatewayctl("providers", "test", "prompted").exit_code == 0
    assert models_upstream.requests[-1].headers["authorization"] == f"Bearer {SENTINEL}"


def test_providers_test_azure_uses_api_key_header(gatewayctl: Gatewayctl, sentinel_env: str,
                                                 models_upstream: ScriptedUpstream) -> None:
    gatewayctl("providers", "add", "azure", "--kind", "azure", "--base-url", models_upstream.base_url,
               "--credential-env", sentinel_env, "--api-version", "2024-10-21")
    document = run_json(gatewayctl, "providers", "test", "azure")
    assert document["url"] == f"{models_upstream.base_url}/openai/models"
    request = models_upstream.requests[-1]
    assert request.path == "/v1/openai/models"
    assert request.query == "api-version=2024-10-21"
    assert request.headers["api-key"] == SENTINEL
    assert "authorization" not in request.headers


def test_providers_add_header_line_break_rejected(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "providers", "add", "p", "--kind", "openai", "--base-url", "https://127.0.0.1:9",
                  "--header", "X-Team=ml\r\nX-Injected: 1")
    assert error == "Error: --header 'X-Team': the value must not contain line breaks or NUL characters."
