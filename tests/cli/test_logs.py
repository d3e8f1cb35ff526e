"""`gatewayctl logs` and `gatewayctl usage`, driven as a user would, on rows written by the writer's SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.storage.test_request_logs import log_row, store


def seed_logs(database_url: str) -> None:
    now = time.time()
    store(database_url, [
        log_row("a1", now - 30, user_name="alice", alias="chat", status=200, total_tokens=7, prompt_tokens=5,
                completion_tokens=2, request_body='{"messages": "needle in here"}'),
        log_row("a2", now - 20, user_name="alice", alias="embed", status=502, error="upstream_unreachable",
                total_tokens=None, prompt_tokens=None, completion_tokens=None),
        log_row("b1", now - 10, user_name="bob", key_prefix="wr-bob", virtual_key_id=2, alias="chat", status=200,
                total_tokens=30, prompt_tokens=20, completion_tokens=10, cached_tokens=4),
        log_row("old", now - 3 * 86400, user_name="alice", alias="chat", total_tokens=1000),
    ])


def test_tail_json_filters_by_user_and_status(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    by_user = gatewayctl("logs", "tail", "--json", "--user", "alice")
    failed = gatewayctl("logs", "tail", "--json", "--status", "5xx")

    assert by_user.exit_code == 0, by_user.stderr
    assert [json.loads(line)["request_id"] for line in by_user.stdout.splitlines()] == ["old", "a1", "a2"]
    assert [json.loads(line)["request_id"] for line in failed.stdout.splitlines()] == ["a2"]
    assert "request_body" not in by_user.stdout


def test_tail_prints_latest_lines_in_time_order(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    result = gatewayctl("logs", "tail", "--lines", "2")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "a2" in lines[0]
    assert "upstream_unreachable" in lines[0]
    assert "b1" in lines[1]
    assert "user=bob" in lines[1]
    assert "30 tok" in lines[1]


def test_tail_by_key_prefix(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    result = gatewayctl("logs", "tail", "--json", "--key", "wr-bob")

    assert [json.loads(line)["request_id"] for line in result.stdout.splitlines()] == ["b1"]


def test_tail_bad_status_names_flag(gatewayctl: Any, database_url: str) -> None:
    result = gatewayctl("logs", "tail", "--status", "5x")

    assert result.exit_code == 1
    assert "--status '5x'" in result.stderr


def test_tail_follow_prints_new_records(environment: dict[str, str], database_url: str) -> None:
    seed_logs(database_url)
    process = subprocess.Popen([sys.executable, "-m", "weir", "logs", "tail", "--follow", "--json", "--lines", "1",
                                "--interval", "0.2"], env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(process.stdout.readline())["request_id"] == "b1"  # type: ignore[union-attr]
        store(database_url, [log_row("late", time.time() - 3600), log_row("fresh")])
        printed = {json.loads(process.stdout.readline())["request_id"] for _ in range(2)}  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(10)

    # "late" has an old request time but was written after the tail started.
    assert printed == {"late", "fresh"}


def test_show_prints_bodies(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    text = gatewayctl("logs", "show", "a1")
    document = json.loads(gatewayctl("logs", "show", "a1", "--json").stdout)

    assert text.exit_code == 0, text.stderr
    assert "needle in here" in text.stdout
    assert document["request_body"] == '{"messages": "needle in here"}'
    assert document["total_tokens"] == 7


def test_show_unknown_id_fails_with_hint(gatewayctl: Any, database_url: str) -> None:
    result = gatewayctl("logs", "show", "nope")

    assert result.exit_code == 1
    assert "No request log with ID 'nope'" in result.stderr


def test_search_by_text_and_period(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    by_text = json.loads(gatewayctl("logs", "search", "--text", "NEEDLE", "--json").stdout)
    recent = json.loads(gatewayctl("logs", "search", "--since", "1h", "--alias", "chat", "--json").stdout)
    since = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%d")
    everything = json.loads(gatewayctl("logs", "search", "--since", since, "--json").stdout)
    table = gatewayctl("logs", "search")

    assert [row["request_id"] for row in by_text] == ["a1"]
    assert [row["request_id"] for row in recent] == ["a1", "b1"]
    assert len(everything) == 4
    assert "Request logs" in table.stdout
    assert "a2" in table.stdout


def test_search_bad_since_names_flag(gatewayctl: Any, database_url: str) -> None:
    result = gatewayctl("logs", "search", "--since", "yesterday")

    assert result.exit_code == 1
    assert "--since 'yesterday'" in result.stderr


def test_prune_drops_old_partitions(gatewayctl: Any, database_url: str) -> None:
    old = datetime.now(UTC) - timedelta(days=45)
    store(database_url, [log_row("ancient", old.timestamp()), log_row("recent")])

    result = gatewayctl("logs", "prune", "--retention-days", "30", "--json")
    remaining = json.loads(gatewayctl("logs", "search", "--since", "60d", "--json").stdout)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"retention_days": 30, "dropped": [f"request_logs_{old:%Y%m%d}"]}
    assert [row["request_id"] for row in remaining] == ["recent"]


def test_usage_by_user_sums_tokens(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    document = json.loads(gatewayctl("usage", "--by", "user", "--since", "24h", "--json").stdout)
    rows = {row["name"]: row for row in document["rows"]}

    assert document["by"] == "user"
    assert rows["alice"]["requests"] == 2
    assert rows["alice"]["errors"] == 1
    assert rows["alice"]["total_tokens"] == 7
    assert rows["bob"]["total_tokens"] == 30
    assert rows["bob"]["cached_tokens"] == 4


def test_usage_by_alias_table(gatewayctl: Any, database_url: str) -> None:
    seed_logs(database_url)

    result = gatewayctl("usage", "--by", "alias", "--since", "7d")

    assert result.exit_code == 0, result.stderr
    assert "Alias" in result.stdout
    assert "1037" in result.stdout  # 7 + 30 + 1000 tokens for `chat`


def test_usage_bad_grouping_names_flag(gatewayctl: Any, database_url: str) -> None:
    result = gatewayctl("usage", "--by", "team")

    assert result.exit_code == 1
    assert "--by 'team'" in result.stderr
