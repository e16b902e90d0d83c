"""Regenerate the README's method and demo-model tables (and the canonization note) from the code.

    .venv/bin/python scripts/readme_tables.py          # rewrite README.md in place
    .venv/bin/python scripts/readme_tables.py --check  # exit 1 if README.md is out of date (used by a test)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core.methods import FAMILIES, REGISTRY
from xai_core.models.canonize import CANONIZATION_NOTE
from xai_core.models.demo import DEMO_MODELS

README = ROOT / "README.md"


def method_table() -> str:
    rows = ["| family | method | id | parameters | map | paper |", "|---|---|---|---|---|---|"]
    for family in FAMILIES:
        for spec in (s for s in REGISTRY.values() if s.family == family):
            params = ", ".join(f"{p.name}={'auto' if p.default is None else p.default}" for p in spec.params) or "—"
            kind = "signed" if spec.signed else "≥ 0"
            rows.append(f"| {family} | {spec.label} | `{spec.id}` | {params} | {kind} | {spec.reference} |")
    return "\n".join(rows)


def demo_table() -> str:
    rows = ["| model | data set | architecture | parameters | held-out accuracy |", "|---|---|---|---:|---:|"]
    for m in DEMO_MODELS.values():
        rows.append(f"| {m.title} (`{m.id}`) | {m.dataset} ({m.info.get('test_images', '?')} test images) | "
                    f"{m.description} | {m.info.get('num_params', 0):,} | **{m.test_accuracy:.1%}** |")
    return "\n".join(rows)


def render(text: str) -> str:
    for name, table in (("methods", method_table()), ("demo-models", demo_table()),
                        ("canonization", CANONIZATION_NOTE)):
        text = re.sub(rf"(<!-- {name}:start -->).*?(<!-- {name}:end -->)",
                      lambda m, t=table: f"{m.group(1)}\n{t}\n{m.group(2)}", text, flags=re.S)
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    current = README.read_text(encoding="utf-8")
    new = render(current)
    if args.check:
        if new != current:
            print("README.md tables are out of date: run .venv/bin/python scripts/readme_tables.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
