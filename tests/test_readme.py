"""The README's tables are generated from the method registry and the demo catalogue."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_are_current():
    mod = _module()
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    assert mod.render(current) == current, "run: .venv/bin/python scripts/readme_tables.py"


def test_readme_lists_every_method():
    from xai_core.methods import REGISTRY

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for mid in REGISTRY:
        assert f"`{mid}`" in text


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]
