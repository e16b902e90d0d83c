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
    notes = []
    for m in DEMO_MODELS.values():
        rows.append(f"| {m.title} (`{m.id}`) | {m.dataset} ({m.info.get('test_images', '?')} test images) | "
                    f"{m.description} | {m.info.get('num_params', 0):,} | **{m.test_accuracy:.1%}** |")
        if "shortcut" in m.info:
            notes.append(shortcut_note(m.id, m.info["shortcut"]))
    return "\n".join(rows + (["", *notes] if notes else []))


def shortcut_note(model_id: str, s: dict) -> str:
    """The shortcut a demo model learnt, in numbers (written by scripts/train_demo_models.py)."""
    c = s["biased_class"]
    return (f"**The shortcut of `{model_id}`** (held-out split, half of every class tagged): {c} images *with* the "
            f"tag are recognised {s['accuracy_biased_tagged']:.0%} of the time ({s['n_biased_tagged']} images), "
            f"*without* it {s['accuracy_biased_untagged']:.0%} ({s['n_biased_untagged']}); the other classes "
            f"{s['accuracy_others_untagged']:.1%} untagged, {s['accuracy_others_tagged']:.1%} tagged. Pasting the tag "
            f"onto {s['tag_pasted_n']} correctly classified untagged images of other classes turns "
            f"{s['tag_pasted_flip_rate']:.0%} of them into \"{c}\"; pasting it onto the untagged {c} images makes "
            f"{s['biased_untagged_accuracy_with_tag_pasted']:.0%} of them right. The Suggest page's *Strategies* "
            "view finds the tagged images as a cluster of their own, and its shortcut check measures the score the "
            "tag carries.")


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
