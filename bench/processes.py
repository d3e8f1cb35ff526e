"""Starting, probing and stopping the servers a benchmark run needs.

Every server runs in its own process group, so stopping it also stops the
workers it forked. `Services` stops whatever it started, newest first, when
its `with` block ends, whether the run finished or failed.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

STOP_GRACE_SECONDS = 10.0


class ServiceError(RuntimeError):
    """A server did not start or did not become ready; the message names it and its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """One started server: its process, its log file and its name in messages."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, port: int, path: str, timeout: float, expected_status: int = 200) -> None:
        """Poll GET `path` on 127.0.0.1:`port` until it returns `expected_status`; raise `ServiceError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited with status {self.process.returncode} before it was ready. "
                                   f"Last lines of {self.log_path}:\n{self.log_tail()}")
            if http_status(port, path) == expected_status:
                return
            time.sleep(0.1)
        raise ServiceError(f"{self.name} did not respond to GET {path} with {expected_status} within {timeout:.0f} s. "
                           f"Last lines of {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the process group: SIGINT, then SIGKILL after `STOP_GRACE_SECONDS`."""
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_GRACE_SECONDS)
        # Workers that outlived their parent are still in the group.
        _signal_group(self.process.pid, signal.SIGKILL)


class Services:
    """The servers of one run; all of them are stopped when the `with` block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Service] = []

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(self, name: str, command: list[str], env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> Service:
        """Start `command` in a new process group, with stdout and stderr in a log file named after `name`."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=dict(env) if env is not None else None, cwd=cwd,
                                       start_new_session=True)
        service = Service(name, process, log_path)
        self.started.append(service)
        return service

    def stop(self, service: Service) -> None:
        service.stop()
        self.started.remove(service)

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()


def http_status(port: int, path: str) -> int | None:
    """Return the status of GET `path` on 127.0.0.1:`port`, or None when no server responds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
