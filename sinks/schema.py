"""Versioned SQL migrations, shared by embedded (chDB) and server ClickHouse.

Files ``sinks/sql/NNN_name.sql`` are applied in order, once each; applied versions are recorded in
``schema_migrations``. Statements are separated by a ``;`` at the end of a line.
"""

from __future__ import annotations

__all__ = ["migrations", "migrate", "split_statements"]

import re
from importlib import resources
from typing import Any

_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """``(version, filename, sql)`` of every packaged migration, in order."""
    out = []
    for entry in resources.files("sinks").joinpath("sql").iterdir():
        m = _FILE.match(entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements; ``--`` comment lines are dropped.

    Example
    -------
    >>> split_statements("-- a comment\\nCREATE TABLE a (x UInt8) ENGINE = Memory;\\nSELECT 1;\\n")
    ['CREATE TABLE a (x UInt8) ENGINE = Memory', 'SELECT 1']
    """
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def migrate(client: Any) -> list[str]:
    """Apply pending migrations with ``client`` (a clickhouse-connect client); returns the files applied."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations FINAL").result_rows}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        for statement in split_statements(sql):
            client.command(statement)
        client.insert("schema_migrations", [[version, name]], column_names=["version", "name"])
        applied.append(name)
    return applied
