"""Run the cascading-randomisation sanity check of every method on the demo CNNs; write the flags the Methods page
shows before anyone has run a check (xai_core/quality/sanity_demo.json), and print a Markdown table.

    .venv/bin/python scripts/sanity_demo.py                          # shapes_cnn and digits_cnn, 8 images each
    .venv/bin/python scripts/sanity_demo.py --models shapes_cnn --images 4

Ref. Adebayo et al. 2018, Sanity Checks for Saliency Maps, NeurIPS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

from xai_core.data.demo import load_demo_set
from xai_core.errors import XaiLensError
from xai_core.methods import methods_for
from xai_core.models.demo import load_demo_model
from xai_core.quality.sanity import DEMO_RESULTS, INSENSITIVE_THRESHOLD, cascading_randomization


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["shapes_cnn", "digits_cnn"])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--out", type=Path, default=DEMO_RESULTS)
    args = parser.parse_args()
    results = []
    print("| model | method | ρ over the cascade | ρ all layers random | flag | time (s) |")
    print("|---|---|---:|---:|---|---:|")
    for model_id in args.models:
        bundle = load_demo_model(model_id)
        images = load_demo_set(bundle.info["dataset"], "test").images[: args.images].astype("float32")
        for method_id in methods_for(bundle):
            t = time.perf_counter()
            try:
                r = cascading_randomization(bundle, method_id, images)
            except XaiLensError as exc:  # e.g. PatternNet before its patterns are fitted
                print(f"| {model_id} | `{method_id}` | | | skipped: {str(exc)[:80]}… | |", flush=True)
                continue
            dt = time.perf_counter() - t
            results.append({"model": model_id, "method": method_id, "cascade_mean": round(r.cascade_mean, 4),
                            "final_mean": round(r.final_mean, 4), "insensitive": r.insensitive})
            flag = "**insensitive**" if r.insensitive else "changes"
            print(f"| {model_id} | `{method_id}` | {r.cascade_mean:.2f} | {r.final_mean:.2f} | {flag} | {dt:.1f} |",
                  flush=True)
        bundle.close()
    args.out.write_text(json.dumps({
        "command": "python scripts/sanity_demo.py " + " ".join(sys.argv[1:]), "images": args.images,
        "threshold": INSENSITIVE_THRESHOLD, "signed": True, "results": results}, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
