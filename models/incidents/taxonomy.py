"""City-management case categories: components (部件) and events (事件), two levels deep.

The table ships with the package as ``models/data/city_categories.csv`` (see ``models/data/README.md``
for its provenance and the choice of time limits). Codes are ``E``/``C`` + 2 digits for a category
and + 4 digits for a subcategory, e.g. ``E0103`` under ``E01``.
"""

from __future__ import annotations

__all__ = ["Category", "CategoryTable", "load_categories", "default_categories"]

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

#: Fallback time limit for the handle step when neither subcategory nor category is known.
DEFAULT_HANDLE_HOURS = 24.0


@dataclass(frozen=True, slots=True)
class Category:
    """One row of the category table.

    ``level`` is 1 for a category (大类) and 2 for a subcategory (小类); ``parent_code`` is ``None`` for
    a category. ``handle_hours`` is the time limit of the 处置 (handle) step counted from dispatch.
    """

    kind: str
    code: str
    level: int
    parent_code: str | None
    name_zh: str
    name_en: str
    handle_hours: float


class CategoryTable:
    """Lookups over the category rows.

    Parameters
    ----------
    rows
        Category rows; every subcategory's parent must be a category of the same kind.

    Example
    -------
    >>> t = load_categories()
    >>> t["E0103"].name_zh, t.parent("E0103").code
    ('积存垃圾渣土', 'E01')
    >>> t.validate("E01", "E0103") is None
    True
    >>> t.validate("E02", "E0103")
    'subcategory E0103 is not under category E02 (its category is E01)'
    >>> t.handle_hours("C01", "C0103")
    2.0
    """

    def __init__(self, rows: Iterable[Category]) -> None:
        self._rows: dict[str, Category] = {}
        for row in rows:
            if row.code in self._rows:
                raise ValueError(f"duplicate category code {row.code}")
            self._rows[row.code] = row
        for row in self._rows.values():
            if row.level == 2:
                parent = self._rows.get(row.parent_code or "")
                if parent is None or parent.level != 1 or parent.kind != row.kind:
                    raise ValueError(
                        f"subcategory {row.code} has no valid parent ({row.parent_code})"
                    )
            elif row.level != 1:
                raise ValueError(f"category {row.code} has level {row.level}, expected 1 or 2")

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Category]:
        return iter(self._rows.values())

    def __contains__(self, code: object) -> bool:
        return code in self._rows

    def __getitem__(self, code: str) -> Category:
        return self._rows[code]

    def get(self, code: str | None) -> Category | None:
        """The row for ``code``, or ``None``."""
        return self._rows.get(code) if code is not None else None

    def categories(self, kind: str | None = None) -> list[Category]:
        """Level-1 rows, optionally of one kind (``"event"`` or ``"component"``), in table order."""
        return [r for r in self._rows.values() if r.level == 1 and kind in (None, r.kind)]

    def subcategories(self, parent_code: str) -> list[Category]:
        """Level-2 rows under ``parent_code``, in table order."""
        return [r for r in self._rows.values() if r.parent_code == parent_code]

    def parent(self, code: str) -> Category | None:
        """The category of a subcategory (``None`` for a category or an unknown code)."""
        row = self._rows.get(code)
        return self._rows.get(row.parent_code) if row and row.parent_code else None

    def handle_hours(self, category: str | None, subcategory: str | None = None) -> float:
        """Handle-step time limit: the subcategory's, else the category's, else 24 h."""
        for code in (subcategory, category):
            row = self.get(code)
            if row is not None:
                return row.handle_hours
        return DEFAULT_HANDLE_HOURS

    def validate(self, category: str | None, subcategory: str | None = None) -> str | None:
        """Why ``(category, subcategory)`` is not a valid classification, or ``None`` if it is.

        ``subcategory`` may be omitted (``None``); a given one must sit under ``category``.
        """
        if not category:
            return "missing category"
        cat = self._rows.get(category)
        if cat is None:
            return f"unknown category code {category}"
        if cat.level != 1:
            return f"{category} is a subcategory, not a category"
        if subcategory is None:
            return None
        sub = self._rows.get(subcategory)
        if sub is None:
            return f"unknown subcategory code {subcategory}"
        if sub.level != 2:
            return f"{subcategory} is a category, not a subcategory"
        if sub.parent_code != category:
            return (
                f"subcategory {subcategory} is not under category {category} "
                f"(its category is {sub.parent_code})"
            )
        return None


def _parse(text: str) -> list[Category]:
    rows = []
    for i, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            rows.append(
                Category(
                    kind=rec["kind"],
                    code=rec["code"],
                    level=int(rec["level"]),
                    parent_code=rec["parent_code"] or None,
                    name_zh=rec["name_zh"],
                    name_en=rec["name_en"],
                    handle_hours=float(rec["handle_hours"]),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"bad category row at line {i}: {exc}") from None
    return rows


def load_categories(path: str | Path | None = None) -> CategoryTable:
    """Read a category table: ``path``, or by default the CSV packaged in ``models/data``.

    Example
    -------
    >>> t = load_categories()
    >>> len(t.categories("event")), len(t.categories("component"))
    (6, 5)
    """
    if path is None:
        text = resources.files("models").joinpath("data/city_categories.csv").read_text("utf-8-sig")
    else:
        text = Path(path).read_text("utf-8-sig")
    return CategoryTable(_parse(text))


@lru_cache(maxsize=1)
def default_categories() -> CategoryTable:
    """The packaged table, loaded once (the table is read-only)."""
    return load_categories()
