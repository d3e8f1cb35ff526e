"""The load generators: wrk for closed loops, the benchmark's own `loadgen` for open loops and streams.

wrk (Debian's package, installed with apt-get when missing) keeps N
connections busy, each sending its next request as soon as the last response
arrived. It cannot send at a fixed rate and measure from the scheduled send
time, and it does not time server-sent events, so `loadgen.c` (compiled here
with gcc) does both. Every run is bounded: wrk by its `-d` duration and a
subprocess timeout, loadgen by its schedule and its own drain deadline.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.traffic import Target, chat_body

SOURCE = Path(__file__).with_name("loadgen.c")
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
EXTRA_SECONDS = 30  # beyond the run's own duration before a generator is considered hung

_WRK_REPORT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


class GeneratorError(RuntimeError):
    """A load generator could not be installed, built or run; the message names which one and why."""


@dataclass
class GeneratorRun:
    result: dict[str, Any]
    cpu_seconds: float
    """CPU time the generator process itself used, user plus system."""


def ensure_wrk() -> str:
    """Return the path of wrk, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing Debian's package (apt-get install -y wrk).", flush=True)
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if completed.returncode != 0:
            raise GeneratorError(f"`{' '.join(command)}` failed with status {completed.returncode}: "
                                 f"{completed.stderr.strip()[-500:]}. Install wrk and run again.")
    found = shutil.which("wrk")
    if not found:
        raise GeneratorError("apt-get installed wrk, but it is not on PATH.")
    return found


def build_loadgen(work_dir: Path) -> Path:
    """Compile loadgen.c into `work_dir` unless an up-to-date binary is already there."""
    binary = work_dir / "loadgen"
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise GeneratorError("No C compiler found (gcc or cc) to build bench/loadgen.c. Install gcc.")
    completed = subprocess.run([compiler, "-O2", "-Wall", "-o", str(binary), str(SOURCE), "-lm"],
                               capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise GeneratorError(f"Building {SOURCE} failed:\n{completed.stderr.strip()}")
    return binary


def run_wrk(wrk: str, target: Target, behaviour: str, connections: int, seconds: float, work_dir: Path,
            body_size: int | None = None) -> GeneratorRun:
    """Run a closed loop of `connections` against `target` for `seconds`."""
    path, model = target.routes[behaviour]
    body_file = work_dir / f"body-{model}-{body_size or 0}.json"
    body_file.write_bytes(chat_body(model, stream=behaviour.startswith("stream"), size=body_size))
    script = work_dir / f"wrk-{target.name.replace(' ', '-')}-{behaviour}-{body_size or 0}.lua"
    script.write_text(_wrk_script(target, body_file))

    command = [wrk, f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds:g}s",
               f"--timeout={WRK_TIMEOUT}", "-s", str(script), f"http://127.0.0.1:{target.port}{path}"]
    stdout, cpu = _run_measured(command, seconds)
    for line in stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            return GeneratorRun(json.loads(line[len("WRK_RESULT "):]), cpu)
    raise GeneratorError(f"wrk printed no result line. Its output:\n{stdout[-2000:]}")


def run_loadgen(binary: Path, mode: str, target: Target, request: bytes, connections: int, seconds: float,
                parameter: float, work_dir: Path) -> GeneratorRun:
    """Run loadgen in `mode` ("open": `parameter` is the rate; "stream": the events per stream)."""
    request_file = work_dir / f"request-{target.name.replace(' ', '-')}-{mode}.http"
    request_file.write_bytes(request)
    command = [str(binary), mode, "127.0.0.1", str(target.port), str(request_file), str(connections),
               f"{seconds:g}", f"{parameter:g}"]
    stdout, cpu = _run_measured(command, seconds)
    try:
        return GeneratorRun(json.loads(stdout.strip().splitlines()[-1]), cpu)
    except (IndexError, json.JSONDecodeError):
        raise GeneratorError(f"loadgen printed no JSON result. Its output:\n{stdout[-2000:]}") from None


def _run_measured(command: list[str], seconds: float) -> tuple[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + EXTRA_SECONDS)
    except subprocess.TimeoutExpired:
        raise GeneratorError(f"{Path(command[0]).name} ran past {seconds + EXTRA_SECONDS:.0f} s and was stopped.") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise GeneratorError(f"{Path(command[0]).name} exited with status {completed.returncode}: "
                             f"{completed.stderr.strip()[-1000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return completed.stdout, cpu


def _wrk_script(target: Target, body_file: Path) -> str:
    lines = [f"local file = assert(io.open({_lua_string(str(body_file))}, 'rb'))",
             "wrk.method = 'POST'", "wrk.body = file:read('*a')", "file:close()",
             "wrk.headers['Content-Type'] = 'application/json'"]
    lines += [f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in target.headers]
    return "\n".join(lines) + "\n" + _WRK_REPORT


def _lua_string(value: str) -> str:
    # A JSON string literal of printable ASCII is also a valid Lua string literal.
    if not value.isascii() or not value.isprintable():
        raise GeneratorError(f"Only printable ASCII can go into the wrk script, got {value!r}.")
    return json.dumps(value)
