"""Parsing the durations and dates operators type: `30d`, `10m`, `2027-01-31`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from weir.errors import InvalidInput

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str, option: str) -> timedelta:
    """Parse `90s`, `10m`, `12h`, `30d` or `2w`; `option` names the flag in errors."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput(f"{option} {text!r} is not a duration. Use a number and a unit: 90s, 10m, 12h, 30d, 2w.")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_expiry(text: str, option: str = "--expires-in") -> datetime:
    """Parse a duration from now, or an ISO date or date-time (UTC unless it carries an offset)."""
    if _DURATION.match(text):
        return datetime.now(UTC) + parse_duration(text, option)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} {text!r} is neither a duration (30d, 12h) nor a date (2027-01-31 or 2027-01-31T12:00)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise InvalidInput(f"{option} {text!r} is in the past. Give a future date or a duration such as 30d.")
    return moment
