"""Pattern fitting throughput (PatternNet / PatternAttribution) against a bare batched predict of the same model.

Run by hand (not a test) on a quiet machine:

    .venv/bin/python bench/bench_patterns.py                       # digits_cnn and shapes_cnn, train splits
    .venv/bin/python bench/bench_patterns.py --models digits_cnn --repeats 5

Both sides see the same uint8 batches and include preprocessing; "predict" is one ``session.run`` of the logits
per batch. Fitting also reduces every Dense/Conv2D layer to running sums (count, Σx, Σy, Σxy per unit). The first
fit of a model also builds the statistics graph ("cold"). Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

from bench_stats import median_time

from xai_core.data.demo import load_demo_set
from xai_core.methods.patterns import fit_patterns, image_batches
from xai_core.models.demo import DEMO_MODELS, load_demo_model


def bench(model_id: str, batch_size: int, repeats: int) -> list[str]:
    bundle = load_demo_model(model_id)
    images = load_demo_set(DEMO_MODELS[model_id].dataset, "train").images
    n = len(images)

    def predict() -> None:
        for batch in image_batches(images, batch_size):
            bundle.session.run(bundle.model.output, {bundle.model.input: bundle.preprocess(batch)})

    rows = []
    predict()  # warm-up
    t_predict = median_time(predict, repeats)
    for estimator in ("relu", "linear"):
        t0 = time.perf_counter()
        fit_patterns(bundle, image_batches(images[:batch_size], batch_size), batch_size, estimator)  # builds graph
        cold = time.perf_counter() - t0
        t_fit = median_time(lambda e=estimator: fit_patterns(bundle, image_batches(images, batch_size), n, e), repeats)
        rows.append(f"| {model_id} | {estimator} | {n:,} × {'×'.join(map(str, bundle.input_shape))} | "
                    f"{n / t_fit:,.0f} | {n / t_predict:,.0f} | **{t_fit / t_predict:.1f}×** | {t_fit:.2f} s | "
                    f"{cold:.2f} s |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["digits_cnn", "shapes_cnn"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}, batch size {args.batch_size}, "
          f"median of {args.repeats}\n")
    print("| model | estimator | train images | fit (images/s) | bare predict (images/s) | fit / predict time | "
          "fit, whole set | graph build + first batch |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for model_id in args.models:
        for row in bench(model_id, args.batch_size, args.repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()
