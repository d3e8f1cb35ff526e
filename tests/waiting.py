"""Polling for a condition that another process makes true, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> float:
    """Poll `condition` until it holds; return the seconds that took, or fail after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition still false after {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started
