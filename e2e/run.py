"""The end-to-end check behind `make e2e`: Weir in front of a real inference engine.

Starts llama.cpp's server (engine.py) on a free port, then Weir on a fresh
temporary data directory, so it runs its embedded Postgres there: `gatewayctl
migrate`, `apply`, `keys create` and `serve`, as an operator would. checks.py
then drives the gateway with the official openai SDK.

Prints one line per check and a last line `N passed, M failed`; exits 0 only
when every check passed. Whatever happens, it stops the engine, the gateway
and the embedded Postgres it started, and deletes the temporary directory.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn

import engine
import postgres
from checks import (
    ALIAS, GRANTED_USER, HIDDEN_ALIAS, REQUEST_SECONDS, UNGRANTED_USER, Setup, gateway_client, run_checks,
)
from gatewayctl import GATEWAYCTL, CommandError, Gatewayctl, isolated_environment
from processes import StartupError, free_port, start_server, stop_server, wait_until_ok

GATEWAY_READY_SECONDS = 60.0

CONFIG_TEMPLATE = """\
[server]
workers = 1

[[providers]]
name = "local"
kind = "openai-compatible"
base_url = "{engine_base_url}"

[[models]]
alias = "{alias}"
deployments = [{{ provider = "local", model = "{upstream_model}", timeout = {timeout:.0f} }}]

[[models]]
alias = "{hidden_alias}"
deployments = [{{ provider = "local", model = "{upstream_model}", timeout = {timeout:.0f} }}]

[[groups]]
name = "everyone"
aliases = ["{alias}"]

[[users]]
name = "{granted_user}"
groups = ["everyone"]

[[users]]
name = "{ungranted_user}"
"""


def main() -> int:
    passed = failed = 0
    with ExitStack() as cleanup, sigterm_as_exit():
        try:
            setup = start_everything(cleanup)
        except (StartupError, engine.InstallError, CommandError) as error:
            print(f"FAIL setup: {error}", flush=True)
            failed = 1
        else:
            passed, failed = run_checks(setup)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit inside the block, and ignore it after the block.

    SystemExit unwinds through the cleanup stack, so everything started is
    stopped. Once the block is left, cleanup is under way, and a second
    SIGTERM must not cut it short.
    """
    def exit_on_sigterm(signum: int, frame: object) -> NoReturn:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def start_everything(cleanup: ExitStack) -> Setup:
    """Start the engine and the gateway and issue both users' keys; register how to undo each on `cleanup`."""
    work_dir = Path(tempfile.mkdtemp(prefix="weir-e2e-"))
    cleanup.callback(shutil.rmtree, work_dir, ignore_errors=True)

    started = time.monotonic()
    inference = engine.start(work_dir / "engine.log")
    cleanup.callback(stop_server, inference.process)
    print(f"engine   ready at {inference.base_url} after {time.monotonic() - started:.1f} s", flush=True)

    data_dir = work_dir / "data"
    config_path = work_dir / "gateway.toml"
    config_path.write_text(gateway_config(inference.base_url))
    gatewayctl = Gatewayctl(isolated_environment(data_dir, config_path))
    cleanup.callback(stop_leftover_postgres, data_dir)

    started = time.monotonic()
    gatewayctl.run("migrate")
    gatewayctl.run("apply", str(config_path))
    granted_key = gatewayctl.create_key(GRANTED_USER, "e2e")
    ungranted_key = gatewayctl.create_key(UNGRANTED_USER, "e2e")
    gateway_url = start_gateway(cleanup, gatewayctl, config_path, work_dir / "gateway.log")
    print(f"gateway  ready at {gateway_url}/v1 after {time.monotonic() - started:.1f} s "
          f"(migrate, apply, 2 keys, serve; embedded Postgres in {data_dir})", flush=True)

    granted = cleanup.enter_context(gateway_client(gateway_url, granted_key))
    ungranted = cleanup.enter_context(gateway_client(gateway_url, ungranted_key))
    return Setup(gatewayctl, granted_key.id, granted, ungranted)


def gateway_config(engine_base_url: str) -> str:
    return CONFIG_TEMPLATE.format(
        engine_base_url=engine_base_url, upstream_model=engine.UPSTREAM_MODEL, timeout=REQUEST_SECONDS,
        alias=ALIAS, hidden_alias=HIDDEN_ALIAS, granted_user=GRANTED_USER, ungranted_user=UNGRANTED_USER,
    )


def start_gateway(cleanup: ExitStack, gatewayctl: Gatewayctl, config_path: Path, log_path: Path) -> str:
    """Start `gatewayctl serve` on a free port, wait until /readyz returns 200, and return its URL."""
    port = free_port()
    command = [str(GATEWAYCTL), "serve", "--listen", f"127.0.0.1:{port}", "--config", str(config_path)]
    process = start_server(command, log_path, gatewayctl.env)
    cleanup.callback(stop_server, process)
    gateway_url = f"http://127.0.0.1:{port}"
    wait_until_ok("The gateway", f"{gateway_url}/readyz", process, log_path, GATEWAY_READY_SECONDS)
    return gateway_url


def stop_leftover_postgres(data_dir: Path) -> None:
    """Stop the embedded Postgres if gatewayctl left it running.

    Prints a note when it does, because gatewayctl should have stopped it.
    """
    stopped_pid = postgres.stop_leftover(data_dir / "postgres")
    if stopped_pid is not None:
        print(f"note: the embedded Postgres (PID {stopped_pid}) was still running after every gatewayctl "
              "process had exited; stopped it", flush=True)


if __name__ == "__main__":
    sys.exit(main())
