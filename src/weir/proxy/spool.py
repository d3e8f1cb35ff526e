"""A bounded on-disk spool of request-log rows, for when Postgres cannot take them.

The spool is a directory of segment files shared by every worker that uses
the same data directory. A worker appends to its own open segment
(`<ns>-<pid>.open`) and seals it (`.ready`) when it rotates or stops. To
replay, a worker claims the oldest sealed segment by renaming it
(`.replay-<pid>`). The rename is atomic, so two workers never replay the
same segment. Segments
left open or claimed by a process that no longer runs are claimed as well.

A segment is a sequence of frames: a 4-byte big-endian length, then one row
encoded with msgpack. A frame cut short by a crash ends the segment.

The cap counts every file in the directory. Rows that would pass it are not
written, and the caller counts them as dropped.

NOTE: appends reach the operating system's cache, not necessarily the disk,
because the spool does not fsync (so the event loop never waits on the disk).
A crash of the process loses nothing spooled, but a crash of the machine can
lose the newest spooled rows.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgspec

from weir.storage.request_logs import RequestLogRow

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 1024 * 1024  # a sealed segment is replayed in one go, so keep it small
_FRAME_HEADER = 4
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(RequestLogRow).decode


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    rows: list[RequestLogRow]


class Spool:
    """The spool directory, seen from one worker process."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._pid = os.getpid()
        self._open: BinaryIO | None = None
        self._open_path: Path | None = None
        self._seal_leftovers()

    def append(self, rows: list[RequestLogRow]) -> int:
        """Write `rows` in order while they fit under the cap; return how many were written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        room = self.max_bytes - self.used_bytes()
        frames: list[bytes] = []
        for row in rows:
            payload = _encode(row)
            size = _FRAME_HEADER + len(payload)
            if size > room:
                break
            room -= size
            frames.append(len(payload).to_bytes(_FRAME_HEADER, "big") + payload)
        if frames:
            segment = self._segment()
            segment.write(b"".join(frames))
            segment.flush()
            if segment.tell() >= SEGMENT_BYTES:
                self.seal()
        return len(frames)

    def seal(self) -> None:
        """Close this worker's open segment, so that it can be replayed."""
        if self._open is None or self._open_path is None:
            return
        self._open.close()
        self._open_path.rename(self._open_path.with_suffix(".ready"))
        self._open = self._open_path = None

    def used_bytes(self) -> int:
        total = 0
        for entry in self._entries():
            try:
                total += entry.stat().st_size
            except FileNotFoundError:  # replayed and removed by another worker meanwhile
                pass
        return total

    def has_rows(self) -> bool:
        """Tell whether anything waits for replay, this worker's open segment included."""
        return self._open is not None or self.has_segments()

    def has_segments(self) -> bool:
        """Tell whether a segment other than this worker's open one waits for replay."""
        return any(self._claimable(entry.name) for entry in self._entries())

    def claim(self) -> Segment | None:
        """Take the oldest segment waiting for replay and read its rows; None when there is none."""
        for entry in sorted(self._entries(), key=lambda e: e.name):
            if not self._claimable(entry.name):
                continue
            claimed = Path(entry.path).with_name(f"{entry.name.split('.', 1)[0]}.replay-{self._pid}")
            try:
                os.rename(entry.path, claimed)
            except FileNotFoundError:  # another worker claimed it first
                continue
            return Segment(claimed, _read_frames(claimed))
        return None

    def remove(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)

    def _seal_leftovers(self) -> None:
        # An open segment with this process's ID was left by an earlier
        # process with the same ID (common in containers), so no process appends to it.
        for entry in self._entries():
            if entry.name.endswith(f"-{self._pid}.open"):
                Path(entry.path).rename(Path(entry.path).with_suffix(".ready"))

    def _segment(self) -> BinaryIO:
        if self._open is None:
            self._open_path = self.directory / f"{time.time_ns():020d}-{self._pid}.open"
            self._open = open(self._open_path, "ab")
        return self._open

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as entries:
                return [entry for entry in entries if entry.is_file()]
        except FileNotFoundError:
            return []

    def _claimable(self, name: str) -> bool:
        stem, _, state = name.partition(".")
        if state == "ready":
            return True
        owner = stem.rpartition("-")[2] if state == "open" else state.removeprefix("replay-")
        if not owner.isdigit() or (state == "open" and int(owner) == self._pid):
            return False
        return int(owner) == self._pid or not _process_alive(int(owner))


def _read_frames(path: Path) -> list[RequestLogRow]:
    data = path.read_bytes()
    rows: list[RequestLogRow] = []
    offset = 0
    while offset + _FRAME_HEADER <= len(data):
        size = int.from_bytes(data[offset:offset + _FRAME_HEADER], "big")
        end = offset + _FRAME_HEADER + size
        if end > len(data):
            break
        try:
            rows.append(_decode(data[offset + _FRAME_HEADER:end]))
        except msgspec.DecodeError:
            logger.warning("Spool segment %s is damaged after %d rows; the rest of it is skipped", path, len(rows))
            return rows
        offset = end
    if offset != len(data):
        logger.warning("Spool segment %s ends in a partial row (%d bytes), which is skipped", path,
                       len(data) - offset)
    return rows


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
