"""Loading `gateway.toml`: defaults, references, and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from weir.config.loader import database_url, load_config, resolve_secret
from weir.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "gateway.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_example_config_loads() -> None:
    spec = load_config(EXAMPLE)

    assert spec.server.listen == "127.0.0.1:8080"
    assert [p.name for p in spec.providers] == ["local"]
    assert spec.models[0].deployments[0].model == "gemma-3-270m"


def test_no_file_gives_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIR_CONFIG", raising=False)

    assert load_config(None).server.max_body_bytes == 32 * 1024 * 1024


def test_unknown_key_names_file_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nlisten = "127.0.0.1:1"\nlisen = "typo"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert str(path) in str(raised.value)
    assert "lisen" in str(raised.value)


def test_wrong_type_names_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[[providers]]\nname = "p"\nkind = "openai"\nbase_url = "http://127.0.0.1:1"\n'
                           '[[models]]\nalias = "a"\ndeployments = [{ provider = "p", model = "m", weight = -1 }]\n')

    with pytest.raises(ConfigError, match=r"models\[0\]\.deployments\[0\]\.weight"):
        load_config(path)


def test_undeclared_provider_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, '[[models]]\nalias = "a"\ndeployments = [{ provider = "ghost", model = "m" }]\n')

    with pytest.raises(ConfigError, match="'ghost', which no \\[\\[providers\\]\\] entry declares"):
        load_config(path)


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\n"))


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_secret_references_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_TEST_CREDENTIAL", "from-env")
    secret_file = tmp_path / "credential"
    secret_file.write_text("from-file\n")

    assert resolve_secret("env:WEIR_TEST_CREDENTIAL", "x") == "from-env"
    assert resolve_secret(f"file:{secret_file}", "x") == "from-file"


@pytest.mark.parametrize(("reference", "message"), [
    ("env:WEIR_TEST_UNSET_VARIABLE", "not set"),
    ("file:/nonexistent/weir/credential", "cannot be read"),
    ("sk-plain-secret", "must be an `env:NAME` or `file:PATH` reference"),
])
def test_bad_secret_reference_names_setting(reference: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIR_TEST_UNSET_VARIABLE", raising=False)

    with pytest.raises(ConfigError, match=message) as raised:
        resolve_secret(reference, "providers['p'].credential")

    assert "providers['p'].credential" in str(raised.value)
    assert "sk-plain-secret" not in str(raised.value)


def test_database_url_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_config(write(tmp_path, '[database]\nurl = "postgresql://from-file/db"\n'))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database_url(spec) == "postgresql://from-file/db"

    monkeypatch.setenv("DATABASE_URL", "postgresql://from-env/db")
    assert database_url(spec) == "postgresql://from-env/db"
