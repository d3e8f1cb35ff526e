"""The machine, its load and the versions of everything measured, which every result depends on."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psycopg

import weir

OPEN_FILES_NEEDED = 8192  # 1,500 streams hold two sockets each in Weir, one in the generator, one upstream


def describe_machine() -> str:
    cpu_model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{os.cpu_count()} cores, {cpu_model}, {memory_kib / 2**20:.1f} GiB memory, "
            f"Linux {platform.release()}")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def weir_version(repo: Path) -> str:
    commit = _output(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", "src"])
    source = f"git {commit}" + (", uncommitted changes in src/" if dirty else "") if commit else "not a git checkout"
    return f"{weir.__version__} ({source})"


def python_stack() -> str:
    packages = ", ".join(f"{name} {metadata.version(name)}" for name in ("granian", "aiohttp", "uvloop", "msgspec"))
    return f"Python {platform.python_version()}, {packages}"


def postgres_version(database_url: str) -> str:
    with psycopg.connect(database_url) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return f"PostgreSQL {version} on 127.0.0.1:5432"


def generator_versions(wrk: str) -> str:
    wrk_version = (_output([wrk, "-v"]) or "wrk").splitlines()[0].split(" Copyright")[0].strip()
    compiler = shutil.which("gcc") or shutil.which("cc") or "cc"
    gcc_version = (_output([compiler, "--version"]) or compiler).splitlines()[0]
    return f"{wrk_version}; bench/loadgen.c built with {gcc_version}"


def node_version() -> str:
    return _output(["node", "--version"]) or "node not found"


def raise_open_file_limit() -> None:
    """Raise this process's (and so its children's) open-file limit to what 1,500 streams need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = OPEN_FILES_NEEDED if hard == resource.RLIM_INFINITY else min(OPEN_FILES_NEEDED, hard)
    if soft < limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    if limit < OPEN_FILES_NEEDED:
        print(f"bench: the open-file limit is {hard}, below the {OPEN_FILES_NEEDED} that 1,500 concurrent "
              "streams need; stream-1500 may fail. Raise it with `ulimit -n`.", file=sys.stderr)


def _output(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (completed.stdout or completed.stderr).strip()
