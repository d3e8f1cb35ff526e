"""Reading `gateway.toml` and resolving `env:` and `file:` references.

Precedence for every setting: a command-line flag beats an environment
variable, which beats the file, which beats the default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import msgspec

from weir.config.spec import GatewaySpec
from weir.errors import ConfigError

CONFIG_ENV = "WEIR_CONFIG"
DATA_DIR_ENV = "WEIR_DATA_DIR"
DATABASE_URL_ENV = "DATABASE_URL"
DEFAULT_DATA_DIR = Path(".weir")


def load_config(path: Path | None) -> GatewaySpec:
    """Parse the config file at `path` (or `$WEIR_CONFIG`); no file at all gives the defaults."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None:
        return GatewaySpec()

    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist. Check --config or {CONFIG_ENV}.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}.") from None

    try:
        spec = msgspec.convert(document, GatewaySpec)
    except msgspec.ValidationError as error:
        raise ConfigError(f"{path}: {_reword(str(error))}.") from None
    _check_references(path, spec)
    return spec


def resolve_secret(reference: str, where: str) -> str:
    """Resolve an `env:NAME` or `file:PATH` reference; `where` names the setting in errors."""
    if reference.startswith("env:"):
        name = reference[4:]
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"{where} refers to environment variable {name}, which is not set.")
        return value
    if reference.startswith("file:"):
        file = Path(reference[5:]).expanduser()
        try:
            return file.read_text().strip()
        except OSError as error:
            raise ConfigError(f"{where} refers to {file}, which cannot be read: {error.strerror}.") from None
    raise ConfigError(
        f"{where} must be an `env:NAME` or `file:PATH` reference, so that no secret is written in the file."
    )


def database_url(spec: GatewaySpec) -> str | None:
    """Return the configured database URL: $DATABASE_URL, then [database] url; None means embedded."""
    if os.environ.get(DATABASE_URL_ENV):
        return os.environ[DATABASE_URL_ENV]
    url = spec.database.url
    if url is None:
        return None
    if url.startswith("env:"):
        return os.environ.get(url[4:]) or None
    if url.startswith("file:"):
        return resolve_secret(url, "[database] url")
    return url


def data_dir() -> Path:
    """Return where Weir keeps local state: embedded Postgres, key file, spool."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def _reword(message: str) -> str:
    # msgspec names the place as `$.models[0].alias`; in a TOML file that
    # reads better as `models[0].alias`.
    return message.replace("`$.", "`").replace("`$`", "the file")


def _check_references(path: Path, spec: GatewaySpec) -> None:
    providers = {provider.name for provider in spec.providers}
    aliases = {model.alias for model in spec.models}
    groups = {group.name for group in spec.groups}

    for index, model in enumerate(spec.models):
        for position, deployment in enumerate(model.deployments):
            if deployment.provider not in providers:
                raise ConfigError(
                    f"{path}: models[{index}].deployments[{position}].provider names {deployment.provider!r}, "
                    "which no [[providers]] entry declares."
                )
        for fallback in model.fallbacks:
            if fallback not in aliases:
                raise ConfigError(f"{path}: models[{index}].fallbacks names unknown alias {fallback!r}.")
    for index, group in enumerate(spec.groups):
        for alias in group.aliases:
            if alias not in aliases:
                raise ConfigError(f"{path}: groups[{index}].aliases names {alias!r}, which no [[models]] declares.")
    for index, user in enumerate(spec.users):
        for group_name in user.groups:
            if group_name not in groups:
                raise ConfigError(f"{path}: users[{index}].groups names {group_name!r}, which no [[groups]] declares.")
