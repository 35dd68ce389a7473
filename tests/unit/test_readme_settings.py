"""The README's configuration table lists every setting, with the default the code uses."""

from __future__ import annotations

from pathlib import Path

from graphrun.settings import describe

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting_with_its_default() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        name
        for name, default, unit, meaning in describe()
        if f"| `{name}` | `{default}` | {unit} | {meaning} |" not in text
    ]
    assert missing == [], f"README configuration table is out of date for: {missing}"
