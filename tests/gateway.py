"""`gatewayctl serve` as a real subprocess on 127.0.0.1, for proxy tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewayProcess:
    """One `gatewayctl serve` process; its stderr goes to `log_path` for tests to read."""

    def __init__(self, environment: dict[str, str], log_path: Path, *, workers: int = 1,
                 config: Path | None = None, extra_args: list[str] | None = None,
                 command: list[str] | None = None) -> None:
        """`command`, when given, replaces `gatewayctl serve`; "{port}" in it becomes the chosen port."""
        self.port = free_port()
        self.log_path = log_path
        if command is not None:
            command = [part.replace("{port}", str(self.port)) for part in command]
        else:
            command = [sys.executable, "-m", "weir", "serve", "--listen", f"127.0.0.1:{self.port}",
                       "--workers", str(workers)]
            if config is not None:
                command += ["--config", str(config)]
            command += extra_args or []
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(command, env=environment, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gatewayctl serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gatewayctl serve was not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode
