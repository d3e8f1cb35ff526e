"""The on-disk spool: order, the cap, claiming segments, and damaged segments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from weir.proxy.spool import Spool
from weir.storage.request_logs import RequestLogRow


def row(number: int, body: str = "") -> RequestLogRow:
    return RequestLogRow(
        request_id=f"r{number}", created_at=1_800_000_000.0 + number, method="POST", path="/v1/chat/completions",
        status=200, error=None, virtual_key_id=1, key_prefix="wr-abc", user_id=1, user_name="alice", alias="chat",
        deployment="p/m", provider="p", stream=False, cancelled=False, attempts=1, total_ms=1.0, ttfb_ms=0.5,
        overhead_ms=0.1, prompt_tokens=1, completion_tokens=1, total_tokens=2, cached_tokens=None,
        reasoning_tokens=None, client_ip="127.0.0.1", user_agent="t", bodies="full", request_body=body,
        response_body=None, response_text=None,
    )


def test_spool_replays_rows_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append([row(1), row(2)])
    spool.append([row(3)])
    spool.seal()
    spool.append([row(4)])
    spool.seal()

    first = spool.claim()
    assert first is not None
    spool.remove(first)
    second = spool.claim()
    assert second is not None
    spool.remove(second)

    assert [r.request_id for r in first.rows] == ["r1", "r2", "r3"]
    assert [r.request_id for r in second.rows] == ["r4"]
    assert first.rows[0] == row(1)
    assert spool.claim() is None


def test_spool_claimed_segment_is_retried_until_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append([row(1)])
    spool.seal()

    first = spool.claim()
    again = spool.claim()

    assert first is not None and again is not None
    assert again.path == first.path
    assert [r.request_id for r in again.rows] == ["r1"]


def test_spool_own_open_segment_not_claimed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append([row(1)])

    assert spool.claim() is None
    assert spool.has_rows()
    assert not spool.has_segments()


def test_spool_cap_stops_appends(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 2_000)

    stored = spool.append([row(n, body="x" * 300) for n in range(20)])

    assert 0 < stored < 20
    assert spool.used_bytes() <= 2_000
    assert spool.append([row(99, body="x" * 300)]) == 0


def test_spool_segment_of_dead_process_is_claimed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    writer = Spool(tmp_path, 1_000_000)
    writer.append([row(1)])
    opened = next(tmp_path.iterdir())
    opened.rename(tmp_path / opened.name.replace(f"-{os.getpid()}.", f"-{pid}."))
    writer._open = None  # drop the handle, as if another process had written the file

    segment = Spool(tmp_path, 1_000_000).claim()

    assert segment is not None
    assert [r.request_id for r in segment.rows] == ["r1"]


def test_spool_partial_last_frame_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append([row(1), row(2)])
    spool.seal()
    segment_path = next(tmp_path.iterdir())
    segment_path.write_bytes(segment_path.read_bytes()[:-5])

    segment = spool.claim()

    assert segment is not None
    assert [r.request_id for r in segment.rows] == ["r1"]


def test_spool_leftover_open_segment_is_sealed(tmp_path: Path) -> None:
    earlier = Spool(tmp_path, 1_000_000)
    earlier.append([row(1)])
    earlier._open = None  # the earlier process died without sealing

    segment = Spool(tmp_path, 1_000_000).claim()

    assert segment is not None
    assert [r.request_id for r in segment.rows] == ["r1"]

