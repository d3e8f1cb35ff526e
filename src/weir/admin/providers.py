"""Validating provider settings and sealing credentials before they are stored."""

from __future__ import annotations

from urllib.parse import urlsplit

from weir.crypto import CredentialBox
from weir.errors import InvalidInput
from weir.storage.providers import KINDS, ProviderFields


def check_kind(kind: str, option: str = "--kind") -> str:
    if kind not in KINDS:
        raise InvalidInput(f"{option} {kind!r} is not a provider kind. Use one of: {', '.join(KINDS)}.")
    return kind


def check_base_url(url: str, option: str = "--base-url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{option} {url!r} is not an http(s) URL. Example: https://api.openai.com/v1")
    if parts.username or parts.password:
        raise InvalidInput(f"{option} must not carry a user or password; set the credential separately.")
    return url.rstrip("/")


def check_header_name(header: str, option: str = "--header") -> str:
    name = header.strip().lower()
    if not name or any(c in name for c in " :\r\n"):
        raise InvalidInput(f"{option} {header!r} is not a valid header name.")
    return name


def check_header_value(header: str, value: str, option: str = "--header") -> str:
    # A line break in a value would let it start a header of its own upstream.
    if any(c in value for c in "\r\n\0"):
        raise InvalidInput(f"{option} {header!r}: the value must not contain line breaks or NUL characters.")
    return value


def provider_fields(box: CredentialBox, *, kind: str | None = None, base_url: str | None = None,
                    credential: str | None = None, headers: dict[str, str] | None = None,
                    api_version: str | None = None, enabled: bool | None = None,
                    source: str | None = None) -> ProviderFields:
    """Check every given setting and seal the credential; None leaves a setting unset."""
    return ProviderFields(
        kind=None if kind is None else check_kind(kind),
        base_url=None if base_url is None else check_base_url(base_url),
        credential=None if credential is None else box.seal(credential),
        headers=None if headers is None else {
            check_header_name(name): check_header_value(name, value) for name, value in headers.items()
        },
        api_version=api_version, enabled=enabled, source=source,
    )
