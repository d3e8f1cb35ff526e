"""gatewayctl, driven as an operator drives it: one subprocess per command, on the check's data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The gatewayctl script installed next to the Python that runs the check (.venv/bin).
GATEWAYCTL = Path(sys.executable).with_name("gatewayctl")
COMMAND_SECONDS = 120.0  # one command; the first one also runs initdb


class CommandError(Exception):
    """A gatewayctl command failed or did not finish in time."""


@dataclass(frozen=True)
class IssuedKey:
    """A virtual key from `gatewayctl keys create --json`."""

    id: str
    secret: str


@dataclass(frozen=True)
class Gatewayctl:
    """Runs gatewayctl commands with a fixed environment."""

    env: dict[str, str]

    def run(self, *arguments: str) -> str:
        """Run one command and return its stdout; raise CommandError with its stderr on failure."""
        command = [str(GATEWAYCTL), *arguments]
        try:
            result = subprocess.run(command, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=COMMAND_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise CommandError(f"`gatewayctl {' '.join(arguments)}` did not finish within {COMMAND_SECONDS:.0f} s.") from None
        if result.returncode != 0:
            raise CommandError(f"`gatewayctl {' '.join(arguments)}` failed with status {result.returncode}:\n"
                               f"{result.stderr.strip()}")
        return result.stdout

    def create_key(self, user: str, name: str) -> IssuedKey:
        document = json.loads(self.run("keys", "create", "--user", user, "--name", name, "--json"))
        return IssuedKey(id=str(document["id"]), secret=document["key"])


def isolated_environment(data_dir: Path, config_path: Path) -> dict[str, str]:
    """Return this process's environment without Weir or database settings, pointed at `data_dir`.

    Without DATABASE_URL, gatewayctl starts its embedded Postgres in the data
    directory; without WEIR_SECRET_KEY, it creates a key file there.
    """
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("WEIR_") and name != "DATABASE_URL"}
    env["WEIR_DATA_DIR"] = str(data_dir)
    env["WEIR_CONFIG"] = str(config_path)
    return env
