"""Authenticating a virtual key and authorising an alias, from the snapshot alone."""

from __future__ import annotations

import time

from weir.crypto import hash_virtual_key
from weir.proxy.errors import invalid_key, missing_key, model_not_found
from weir.proxy.snapshot import AuthorizedKey, Route, Snapshot


def presented_key(authorization: str | None, api_key: str | None) -> str:
    """Return the virtual key from `Authorization: Bearer`, or from `x-api-key` as Anthropic's SDK sends it."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise missing_key()
    if api_key:
        return api_key.strip()
    raise missing_key()


def authenticate(snapshot: Snapshot, key: str) -> AuthorizedKey:
    """Find the live key; unknown, revoked and expired keys all get the same 401."""
    authorized = snapshot.keys.get(hash_virtual_key(key))
    if authorized is None or authorized.is_expired(time.time()):
        raise invalid_key()
    return authorized


def authorize(snapshot: Snapshot, key: AuthorizedKey, alias: str) -> Route:
    """Return the route for `alias` if this key may use it; otherwise the same 404 as an unknown alias."""
    route = snapshot.routes.get(alias)
    if route is None or alias not in key.aliases:
        raise model_not_found(alias)
    return route
