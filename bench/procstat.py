"""CPU time and resident memory of a server and every process it forked, read from /proc.

CPU time is utime + stime of each process in the tree, plus cutime + cstime
(the CPU of children that already exited and were waited for), in clock ticks
converted to seconds. Resident memory is sampled from /proc/PID/statm while a
scenario runs, and the peak of the tree's sum is kept.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.2


def process_tree(root: int) -> list[int]:
    """Return `root` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))

    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """Return the CPU time, user plus system, used so far by the tree under `root`."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime and cstime: fields 14 to 17 of proc(5), counted from the pid.
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLOCK_TICKS


def rss_bytes(root: int) -> int:
    """Return the resident memory of the tree under `root`, summed over its processes."""
    total = 0
    for pid in process_tree(root):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Usage:
    cpu_seconds: float
    peak_rss_bytes: int


class UsageMeter:
    """Measures CPU time and peak resident memory of one process tree over a `with` block."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.usage: Usage | None = None
        self._stop = threading.Event()
        self._peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._cpu_before = 0.0

    def __enter__(self) -> UsageMeter:
        self._cpu_before = cpu_seconds(self.root)
        self._peak = rss_bytes(self.root)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        cpu = cpu_seconds(self.root) - self._cpu_before
        self.usage = Usage(cpu_seconds=cpu, peak_rss_bytes=max(self._peak, rss_bytes(self.root)))

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._peak = max(self._peak, rss_bytes(self.root))


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/PID/stat after the command name (state is index 0), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    return text[text.rindex(")") + 2:].split()
