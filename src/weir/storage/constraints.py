"""Translation of constraint violations into Weir errors, by constraint name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors

from weir.errors import Conflict, InvalidInput, WeirError


@contextmanager
def translate_violations(messages: Mapping[str, str]) -> Iterator[None]:
    """Turn a violation of a constraint named in `messages` into a Weir error with that message.

    Unique and foreign-key violations become `Conflict`, check violations
    `InvalidInput`. A violation of a constraint not named is re-raised as is,
    because it means a bug rather than bad input.
    """
    try:
        yield
    except psycopg.errors.IntegrityError as error:
        constraint = error.diag.constraint_name
        if constraint is None or constraint not in messages:
            raise
        kind: type[WeirError] = InvalidInput if isinstance(error, pg_errors.CheckViolation) else Conflict
        raise kind(messages[constraint]) from None
