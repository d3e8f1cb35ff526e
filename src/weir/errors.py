"""Weir's exception tree.

Every error Weir raises on purpose derives from `WeirError`. Each subclass tells
the caller what to do about it, and carries a message that is safe to show:
it never contains a virtual key, a credential, a prompt or a DSN password.
The CLI and the proxy each map these to their surface in exactly one place.

    WeirError
    ├── ConfigError        a setting or config file is wrong; fix it
    ├── NotFound           a named entity does not exist
    ├── Conflict           a name is taken, or a change clashes with state
    ├── InvalidInput       a value has the wrong form
    ├── DatabaseError      Postgres is unreachable or refused the work
    ├── AuthError          a virtual key is missing, unknown, revoked or expired
    └── UpstreamError      a provider did not return a usable response
        ├── UpstreamConnectError
        └── UpstreamTimeout
"""

from __future__ import annotations


class WeirError(Exception):
    """Base of every error Weir raises on purpose."""


class ConfigError(WeirError):
    """A setting, an environment variable or a config file is invalid."""


class NotFound(WeirError):
    """A named entity (user, group, key, provider, alias) does not exist."""


class Conflict(WeirError):
    """A name is already taken, or the change clashes with existing state."""


class InvalidInput(WeirError):
    """A value given by the user has the wrong form."""


class DatabaseError(WeirError):
    """Postgres is unreachable, or refused an operation."""


class AuthError(WeirError):
    """A virtual key is missing, unknown, revoked or expired."""


class UpstreamError(WeirError):
    """A provider did not return a usable response."""


class UpstreamConnectError(UpstreamError):
    """The provider refused the connection or its host name did not resolve."""


class UpstreamTimeout(UpstreamError):
    """The provider did not respond within the deployment's timeout."""
