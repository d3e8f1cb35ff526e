"""Rendering command results: rich tables and sentences for people, JSON for scripts.

Every `--json` document is printed through `print_json`, so its shape is set
by the plain dicts the commands build and by nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Markup is off because names, URLs and messages come from users and may
# contain square brackets, which rich would read as style tags.
console = Console(markup=False)
error_console = Console(stderr=True, markup=False)


def print_json(document: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(document, enc_hook=_encode_extra)).decode() + "\n")


def print_result(document: Any, json: bool, sentence: str) -> None:
    """Print `document` as JSON for scripts, or `sentence` for people."""
    if json:
        print_json(document)
    else:
        console.print(sentence, highlight=False, soft_wrap=True)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        console.print(f"No {title.lower()} yet.")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(format_cell(cell) for cell in row))
    console.print(table)


def print_error(message: str) -> None:
    error_console.print(Text("Error:", style="bold red"), message, highlight=False, soft_wrap=True)


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _encode_extra(value: Any) -> Any:
    if isinstance(value, bytes):
        raise TypeError("bytes must not reach --json output")
    raise TypeError(f"cannot encode {type(value).__name__}")
