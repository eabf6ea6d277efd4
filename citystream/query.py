"""``citystream query``: read-only SQL against the configured ClickHouse, printed as a table."""

from __future__ import annotations

__all__ = ["run_query", "is_read_only"]

import re
import sys

import orjson
from rich.console import Console

from citystream.config import Settings
from citystream.summary import Section, render

_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.IGNORECASE)


def is_read_only(sql: str) -> bool:
    """True for statements that only read.

    Example
    -------
    >>> is_read_only("select 1"), is_read_only("DROP TABLE bike_fixes"), is_read_only("SELECT 1; DROP TABLE x")
    (True, False, False)
    """
    body = sql.strip().rstrip(";")
    return bool(_READ_ONLY.match(body)) and ";" not in body


def run_query(
    settings: Settings, sql: str, *, limit: int, console: Console, err: Console, fmt: str = "table",
) -> int:
    """Run ``sql``; returns an exit code."""
    if not is_read_only(sql):
        err.print("[red]only read-only statements are allowed[/] (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)")
        return 2
    from sinks.clickhouse import connect

    password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None
    try:
        client = connect(settings.clickhouse_dsn, password)
    except Exception as exc:  # noqa: BLE001 - explain the usual causes
        hint = (" (embedded chDB data is opened by one process at a time: is a worker or demo --serve running?)"
                if settings.embedded_clickhouse else "")
        err.print(f"[red]cannot open ClickHouse {settings.clickhouse_dsn}:[/] {exc}{hint}")
        return 1
    try:
        result = client.query(sql, settings={"readonly": 1} if not settings.embedded_clickhouse else None)
    except Exception as exc:  # noqa: BLE001 - a bad query is a user error, not a crash
        err.print(f"[red]query failed:[/] {exc}")
        return 1
    finally:
        client.close()
    rows = [tuple(r) for r in result.result_rows]
    if fmt == "json":  # one JSON object per row, for scripts
        for r in rows[:limit]:
            sys.stdout.write(orjson.dumps(dict(zip(result.column_names, r, strict=True)), default=str).decode() + "\n")
        return 0
    render(console, [(Section(f"{len(rows):,} row(s)", sql), list(result.column_names), rows[:limit])])
    return 0
