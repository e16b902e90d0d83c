"""The axioms table of docs/quality.md: how exactly each method's maps add up to what they promise, per demo model.

    .venv/bin/python bench/bench_axioms.py [--images 8]

Prints one Markdown row per (model, method): median and max relative error over the first N test images and how
many are within the axiom's tolerance (xai_core.quality.axioms).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

from xai_core.data.demo import load_demo_set
from xai_core.methods import explain
from xai_core.models.demo import DEMO_MODELS, load_demo_model
from xai_core.quality.axioms import axiom_for, check_axiom

METHODS = (("integrated_gradients", {"steps": 32}, "integrated_gradients (32 steps)"), ("deeplift", {}, "deeplift"),
           ("lrp.z", {}, "lrp.z"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()
    print("| model | method | axiom | median relative error | max | within tolerance |")
    print("|---|---|---|---:|---:|---:|")
    for model_id, entry in DEMO_MODELS.items():
        bundle = load_demo_model(model_id)
        images = load_demo_set(entry.dataset, "test").images[: args.images].astype(np.float32)
        for method_id, params, name in METHODS:
            e = explain(bundle, method_id, images, params=params)
            frame = check_axiom(bundle, method_id, images, e.maps[:, 0], e.indices[:, 0], params)
            axiom = axiom_for(method_id, params, bundle)
            rel = frame["rel_error"].to_numpy()
            print(f"| {model_id} | {name} | {axiom.name}, {axiom.tolerance:.0%} | {np.median(rel):.1%} | "
                  f"{rel.max():.1%} | {int(frame['passed'].sum())}/{len(frame)} |", flush=True)


if __name__ == "__main__":
    main()
