"""`gatewayctl logs`: follow, search, show and prune request logs."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Optional

import msgspec
import typer

from weir.admin.durations import parse_duration
from weir.cli.context import database, state
from weir.cli.output import console, format_cell, print_json, print_table
from weir.errors import InvalidInput, NotFound
from weir.storage import request_logs
from weir.storage.request_logs import LogFilter

app = typer.Typer(
    help="Follow, search, show and prune request logs.\n\nExample: gatewayctl logs tail --follow --status 5xx",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
UserOption = Annotated[Optional[str], typer.Option("--user", help="Only requests of this user.")]
KeyOption = Annotated[Optional[str], typer.Option("--key", help="Only requests with this virtual key (ID or prefix).")]
AliasOption = Annotated[Optional[str], typer.Option("--alias", help="Only requests for this model alias.")]
StatusOption = Annotated[Optional[str], typer.Option("--status", help="Only this status (404) or class (5xx).")]

FOLLOW_OVERLAP_SECONDS = 5.0  # re-read this far back, because a batch can commit after a later one
_STATUS = re.compile(r"^([1-5])(xx|\d\d)$")


@app.command("tail")
def tail(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing records as they are written; stop with Ctrl-C.")] = False,
    user: UserOption = None,
    key: KeyOption = None,
    alias: AliasOption = None,
    status: StatusOption = None,
    lines: Annotated[int, typer.Option("--lines", min=0, help="How many of the latest records to print first.")] = 20,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between checks for new records with --follow.")] = 1.0,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line for scripts.")] = False,
) -> None:
    """Print the latest request logs, and with --follow the new ones as they are written.

    Example: gatewayctl logs tail --follow --status 5xx
    """
    status_min, status_max = parse_status(status)
    where = LogFilter(user=user, key=key, alias=alias, status_min=status_min, status_max=status_max)
    with database(ctx) as connection:
        rows = request_logs.find_logs(connection, where, lines)
        for row in rows:
            _print_line(row, json)
        if not follow:
            return

        cursor = _database_now(connection)
        # Records written just before the start count as seen, printed or not.
        recent = request_logs.find_logs(connection, replace(where, written_after=_earlier(cursor)), 10_000)
        seen = {row["request_id"]: row["written_at"] for row in [*rows, *recent]}
        while True:
            time.sleep(interval)
            after = replace(where, written_after=_earlier(cursor))
            fresh = [row for row in request_logs.find_logs(connection, after, 1000, oldest_first=True)
                     if row["request_id"] not in seen]
            connection.commit()  # end the read transaction, so that it does not stay open between polls
            for row in fresh:
                seen[row["request_id"]] = row["written_at"]
                cursor = max(cursor, row["written_at"])
                _print_line(row, json)
            # Only records inside the re-read window can come back; forget the rest.
            seen = {request_id: written for request_id, written in seen.items() if written > _earlier(cursor)}


@app.command("show")
def show(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request ID, as sent to the client in x-request-id.")],
    json: JsonOption = False,
) -> None:
    """Print one request log with all its fields, bodies included.

    Example: gatewayctl logs show 5f2c0e9ab1d4c3e2f1a0b9c8
    """
    with database(ctx) as connection:
        row = request_logs.get_log(connection, request_id)
    if row is None:
        raise NotFound(f"No request log with ID {request_id!r}. Find IDs with `gatewayctl logs search`.")
    if json:
        print_json(log_document(row))
        return
    bodies = ("request_body", "response_body", "response_text")
    for column, value in row.items():
        if column not in bodies:
            console.print(f"[bold]{column}[/]: {format_cell(value)}", highlight=False)
    for column in bodies:
        if row[column] is not None:
            console.print(f"\n[bold]{column}[/]:", highlight=False)
            console.print(row[column], markup=False, highlight=False, soft_wrap=True)


@app.command("search")
def search(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Start of the period: a duration back from now (90m, 24h, 7d) or a date/time (2026-12-01T08:00).")] = "24h",
    until: Annotated[Optional[str], typer.Option("--until", help="End of the period, in the same forms as --since. Default: now.")] = None,
    user: UserOption = None,
    key: KeyOption = None,
    alias: AliasOption = None,
    status: StatusOption = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Only records whose request or response body contains this text (case-insensitive).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Maximum number of records to print (the latest ones).")] = 100,
    json: JsonOption = False,
) -> None:
    """Find request logs by period, user, key, alias, status and body text.

    Example: gatewayctl logs search --since 2h --alias chat --text "timeout"
    """
    status_min, status_max = parse_status(status)
    where = LogFilter(since=parse_moment(since, "--since"), until=parse_moment(until, "--until") if until else None,
                      user=user, key=key, alias=alias, status_min=status_min, status_max=status_max, text=text)
    with database(ctx) as connection:
        rows = request_logs.find_logs(connection, where, limit)
    if json:
        print_json([log_document(row) for row in rows])
        return
    print_table("Request logs", ["Time", "Request ID", "User", "Key", "Alias", "Status", "Tokens", "ms",
                                 "Deployment"],
                [(row["created_at"], row["request_id"], row["user_name"], row["key_prefix"], row["alias"],
                  row["status"], row["total_tokens"], _milliseconds(row["total_ms"]), row["deployment"])
                 for row in rows])


@app.command("prune")
def prune(
    ctx: typer.Context,
    retention_days: Annotated[Optional[int], typer.Option("--retention-days", min=1, help="Days to keep, today included. Default: [logging] retention_days.")] = None,
    json: JsonOption = False,
) -> None:
    """Drop the daily partitions of request logs older than the retention period.

    Example: gatewayctl logs prune --retention-days 7
    """
    days = retention_days or state(ctx).spec.logging.retention_days
    with database(ctx) as connection:
        dropped = request_logs.drop_partitions(connection, days)
    if json:
        print_json({"retention_days": days, "dropped": dropped})
    elif dropped:
        console.print(f"Dropped {len(dropped)} partition(s) older than {days} days: {', '.join(dropped)}.",
                      highlight=False)
    else:
        console.print(f"No request log partitions are older than {days} days.", highlight=False)


def parse_status(text: str | None) -> tuple[int | None, int | None]:
    """Parse `--status`: an exact status (404) or a class (5xx); return the inclusive range."""
    if text is None:
        return None, None
    match = _STATUS.match(text.strip().lower())
    if match is None:
        raise InvalidInput(f"--status {text!r} is not a status. Use a code such as 404 or a class such as 5xx.")
    if match.group(2) == "xx":
        first = int(match.group(1)) * 100
        return first, first + 99
    return int(text), int(text)


def parse_moment(text: str, option: str) -> datetime:
    """Parse a duration back from now (24h) or an ISO date/time (UTC unless it carries an offset)."""
    try:
        return datetime.now(UTC) - parse_duration(text, option)
    except InvalidInput:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} {text!r} is neither a duration (90m, 24h, 7d) nor a date (2026-12-01 or 2026-12-01T08:00)."
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def log_document(row: dict[str, Any]) -> dict[str, Any]:
    return {column: value.isoformat() if isinstance(value, datetime) else value for column, value in row.items()}


def _print_line(row: dict[str, Any], json: bool) -> None:
    if json:
        sys.stdout.write(msgspec.json.encode(log_document(row)).decode() + "\n")
    else:
        tokens = f"{row['total_tokens']} tok" if row["total_tokens"] is not None else "- tok"
        console.print(
            f"{format_cell(row['created_at'])}  {row['request_id']}  {row['status']}  {row['method']} {row['path']}  "
            f"user={row['user_name'] or '-'} key={row['key_prefix'] or '-'} alias={row['alias'] or '-'}  "
            f"{tokens}  {_milliseconds(row['total_ms'])} ms  {row['error'] or ''}".rstrip(),
            highlight=False, markup=False, soft_wrap=True,
        )
    sys.stdout.flush()


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _database_now(connection: Any) -> datetime:
    row = connection.execute("SELECT now() AS now").fetchone()
    return row["now"]  # type: ignore[no-any-return]


def _earlier(moment: datetime) -> datetime:
    return moment - timedelta(seconds=FOLLOW_OVERLAP_SECONDS)
