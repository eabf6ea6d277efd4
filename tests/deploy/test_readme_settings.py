"""The README's configuration table names every setting (``CITYSTREAM_<FIELD>``)."""

from __future__ import annotations

import re
from pathlib import Path

from citystream.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def documented() -> set[str]:
    """Variables of the table's first column; ``CITYSTREAM_A_B`` / ``_C`` also names ``CITYSTREAM_A_C`` (and
    ``CITYSTREAM_C``): a suffix replaces the last words of the name before it."""
    names: set[str] = set()
    for line in README.read_text("utf-8").splitlines():
        if not line.startswith("| `CITYSTREAM_"):
            continue
        base = ""
        for token in re.findall(r"`([A-Z0-9_]+)`", line.split("|")[1]):
            if token.startswith("CITYSTREAM_"):
                base = token
                names.add(token)
            elif token.startswith("_") and base:
                words = base.split("_")
                names.update("_".join(words[:k]) + token for k in range(1, len(words)))
    return names


def test_every_setting_is_in_the_readme_table() -> None:
    missing = sorted(f"CITYSTREAM_{f.upper()}" for f in Settings.model_fields if f"CITYSTREAM_{f.upper()}"
                     not in documented())
    assert not missing, f"settings missing from README.md's configuration table: {missing}"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    fields = {f"CITYSTREAM_{f.upper()}" for f in Settings.model_fields} | {"CITYSTREAM_TANSU_BIN"}  # a CLI envvar
    spelled = {t for line in README.read_text("utf-8").splitlines() if line.startswith("| `CITYSTREAM_")
               for t in re.findall(r"`(CITYSTREAM_[A-Z0-9_]+)`", line.split("|")[1])}
    assert spelled - fields == set(), f"README.md documents settings that do not exist: {sorted(spelled - fields)}"
