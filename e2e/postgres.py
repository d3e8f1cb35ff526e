"""A safety net for the embedded Postgres that gatewayctl starts in the check's data directory.

gatewayctl stops that Postgres when its last process exits normally. A
gatewayctl process killed by SIGKILL (a command that timed out, a gateway that
ignored SIGTERM) cannot, so the check stops whatever is left before it deletes
the directory.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

STOP_SECONDS = 15.0
POLL_SECONDS = 0.2


def stop_leftover(pgdata: Path) -> int | None:
    """Stop the postmaster serving `pgdata`, if one is running; return its PID, or None if none was."""
    pid = _running_postmaster(pgdata)
    if pid is None:
        return None

    # SIGINT requests Postgres's fast shutdown, which ends open sessions and stops cleanly.
    os.kill(pid, signal.SIGINT)
    if not _wait_for_exit(pid, STOP_SECONDS):
        os.kill(pid, signal.SIGKILL)
        _wait_for_exit(pid, STOP_SECONDS)
    return pid


def _running_postmaster(pgdata: Path) -> int | None:
    # The first line of postmaster.pid is the PID. A stale file can name a PID
    # that another program now uses, so the process must also name this pgdata.
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    if str(pgdata.resolve()).encode() not in command_line:
        return None
    return pid


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(POLL_SECONDS)
    return False
