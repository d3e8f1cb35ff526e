"""Child processes for the end-to-end check: start, wait until ready, stop.

Every server runs in its own session (process group), so stopping it also
stops whatever it forked (granian workers, uvicorn). Output goes to a log
file, whose tail is shown when a server fails to come up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

POLL_SECONDS = 0.25
STOP_SECONDS = 15.0
LOG_TAIL_LINES = 30


class StartupError(Exception):
    """A server exited, or did not respond in time, before it was ready. The message ends with its log tail."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    # Another process could take the port between this call and the server's
    # bind. The server then fails to start, and its log shows the bind error.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `command` in a new session with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=None if env is None else dict(env), start_new_session=True,
        )


def wait_until_ok(name: str, url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> float:
    """Poll GET `url` until it returns 200; return the seconds waited.

    Raises StartupError when the process exits first or `timeout` seconds pass.
    """
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            raise StartupError(f"{name} exited with status {process.returncode} before GET {url} returned 200.\n"
                               + log_tail(log_path))
        if returns_200(url):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise StartupError(f"{name} did not return 200 to GET {url} within {timeout:.0f} s.\n"
                               + log_tail(log_path))
        time.sleep(POLL_SECONDS)


def returns_200(url: str) -> bool:
    # No proxy handler: an HTTP(S)_PROXY variable must not route local test traffic elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group of `process`: SIGTERM, then SIGKILL after STOP_SECONDS.

    Returns once the group is gone, or after a further STOP_SECONDS.
    """
    _signal_group(process.pid, signal.SIGTERM)
    if not _wait_for_group_exit(process, STOP_SECONDS):
        _signal_group(process.pid, signal.SIGKILL)
        _wait_for_group_exit(process, STOP_SECONDS)


def _wait_for_group_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    # The group outlives its leader while forked workers are still shutting down.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None and not _group_exists(process.pid):
            return True
        time.sleep(POLL_SECONDS)
    return False


def _group_exists(group_id: int) -> bool:
    try:
        os.killpg(group_id, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(group_id: int, signum: signal.Signals) -> None:
    try:
        os.killpg(group_id, signum)
    except ProcessLookupError:
        pass


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last `lines` lines of a log file, framed for an error message."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError as error:
        return f"(no log at {log_path}: {error.strerror})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last {lines} lines of {log_path} ---\n{tail}\n--- end of log ---"
