"""Compare Models page timings under AppTest (run by hand; results go into docs/benchmarks.md).

Measures, in one fresh process: the first run of the page (TensorFlow import, two demo models, LRP-ε analyzers,
3 images, agreement, the digits test-set pass), a warm rerun (everything cached), the first run of the method
grid (4 methods on one model), and adding the two shapes models (4 models side by side).

    .venv/bin/python bench/bench_compare.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model
os.chdir(ROOT)


def timed(at, label: str) -> None:
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    print(f"| {label} | {elapsed:.1f} |" + (f" errors: {problems}" if problems else ""), flush=True)


def main() -> None:
    start = time.perf_counter()
    from streamlit.testing.v1 import AppTest

    import xai_core  # noqa: F401 - TensorFlow import, counted separately

    print(f"| import streamlit + TensorFlow | {time.perf_counter() - start:.1f} |")
    at = AppTest.from_file("pages/compare.py", default_timeout=900)
    timed(at, "models side by side, first run (2 demo models, LRP-ε, 3 images, digits test pass)")
    timed(at, "same page, warm rerun")
    at.session_state["compare.mode"] = "methods"
    timed(at, "method grid, first run (digits_cnn × gradient, LRP-ε, guided backprop, Grad-CAM)")
    at.session_state["compare.mode"] = "models"
    at.session_state["compare.models"] = ["demo:digits_cnn", "demo:digits_resnet", "demo:shapes_cnn",
                                          "demo:shapes_resnet"]
    timed(at, "add shapes_cnn + shapes_resnet (4 models; 2 new models, LRP-ε builds)")
    timed(at, "4 models, warm rerun")


if __name__ == "__main__":
    main()
