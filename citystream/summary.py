"""The demo's summary: sections of queries read back from ClickHouse, printed as tables."""

from __future__ import annotations

__all__ = ["SECTIONS", "Section", "all_sections", "collect", "render"]

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Section:
    """One table of the summary: a title and the query that fills it."""

    title: str
    sql: str


SECTIONS: list[Section] = [
    Section(
        "Bikes: fixes stored",
        "SELECT operator, count() AS fixes, uniqExact(bike_id) AS bikes, countIf(locked) AS locked_fixes, "
        "min(ts) AS first_fix, max(ts) AS last_fix FROM bike_fixes FINAL GROUP BY operator ORDER BY fixes DESC",
    ),
    Section(
        "Bikes: busiest zones (per-minute counts summed over the replay)",
        "SELECT zone, sum(fixes) AS fixes, max(bikes) AS peak_bikes_per_minute, sum(locked) AS locked_fixes, "
        "count() AS minutes FROM v_bike_zone_minute GROUP BY zone ORDER BY fixes DESC LIMIT 8",
    ),
    Section(
        "Dead letters by reason",
        "SELECT source_topic, reason, count() AS records, any(detail) AS example FROM dead_letters FINAL "
        "GROUP BY source_topic, reason ORDER BY records DESC",
    ),
]


#: Domains whose ``citystream.summary_<domain>.SECTIONS`` follow the core sections.
DOMAINS = ("bikes", "sensors", "incidents")


def all_sections() -> list[Section]:
    """The core sections, then every domain's."""
    import importlib

    out = list(SECTIONS)
    for d in DOMAINS:
        out.extend(importlib.import_module(f"citystream.summary_{d}").SECTIONS)
    return out


def collect(client: Any, sections: list[Section] | None = None) -> list[tuple[Section, list[str], list[tuple]]]:
    """Run every section's query with a clickhouse-connect ``client``."""
    out = []
    for section in sections or all_sections():
        result = client.query(section.sql)
        out.append((section, list(result.column_names), [tuple(r) for r in result.result_rows]))
    return out


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def render(console: Console, results: list[tuple[Section, list[str], list[tuple]]]) -> None:
    """Print the collected sections as tables."""
    for section, columns, rows in results:
        if not rows:
            console.print(f"[bold]{section.title}[/]: none")
            continue
        table = Table(title=section.title, title_justify="left", show_lines=False)
        for c in columns:
            table.add_column(c)
        for r in rows:
            table.add_row(*(_cell(v) for v in r))
        console.print(table)
