"""`gatewayctl usage`: requests and tokens per user, key or alias, from the request logs."""

from __future__ import annotations

from typing import Annotated

import typer

from weir.cli.context import database
from weir.cli.logs import parse_moment
from weir.cli.output import print_json, print_table
from weir.errors import InvalidInput
from weir.storage.request_logs import USAGE_DIMENSIONS, usage_by

_TITLES = {"user": "User", "key": "Key", "alias": "Alias"}


def usage(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="Group by user, key (prefix) or alias.")] = "user",
    since: Annotated[str, typer.Option("--since", help="Start of the period: a duration back from now (24h, 7d) or a date (2026-12-01).")] = "24h",
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
) -> None:
    """Report requests and token usage per user, key or alias over a period.

    Example: gatewayctl usage --by alias --since 7d
    """
    if by not in USAGE_DIMENSIONS:
        raise InvalidInput(f"--by {by!r} is not a grouping. Use one of: {', '.join(USAGE_DIMENSIONS)}.")
    start = parse_moment(since, "--since")
    with database(ctx) as connection:
        rows = usage_by(connection, by, start)
    if json:
        print_json({"by": by, "since": start.isoformat(), "rows": rows})
        return
    print_table(f"Usage since {start:%Y-%m-%d %H:%M} UTC",
                [_TITLES[by], "Requests", "Errors", "Prompt", "Completion", "Total", "Cached", "Reasoning"],
                [(row["name"], row["requests"], row["errors"], row["prompt_tokens"], row["completion_tokens"],
                  row["total_tokens"], row["cached_tokens"], row["reasoning_tokens"]) for row in rows])
