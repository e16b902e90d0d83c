"""Data set statistics pass: images/s of :func:`xai_core.analysis.dataset_pass.dataset_pass` against a bare
batched predict.

The bare baseline is ``keras.Model(inputs, layer.output).predict`` of the same truncated model, on the same
already-fitted images with the same batch size — what a user would write by hand. The pass additionally reads
images through the :class:`Dataset` reader, preprocesses them, computes the logits and reduces the layer to
per-channel statistics; target ≥ 0.9× the bare throughput.

Run by hand on a quiet machine:

    .venv/bin/python bench/bench_stats.py                 # digits and shapes test sets, every demo model
    .venv/bin/python bench/bench_stats.py --split train   # 1,437 digits / 6,000 shapes images
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import tensorflow as tf

from xai_core.analysis.dataset_pass import dataset_pass
from xai_core.data.dataset import demo_dataset
from xai_core.models.bundle import DEFAULT_BATCH_SIZE
from xai_core.models.demo import DEMO_MODELS, load_demo_model


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(model_id: str, split: str, repeats: int) -> str:
    """One Markdown row: bare truncated predict vs dataset_pass on the model's demo set."""
    bundle = load_demo_model(model_id)
    ds = demo_dataset(bundle.info["dataset"], split)
    layer = next(li.name for li in reversed(bundle.layers) if li.spatial)  # last conv-like layer
    x = bundle.preprocess(np.concatenate([b.images for b in ds.batches(bundle.input_size, bundle.channels)]))
    with bundle.scope():
        truncated = tf.keras.Model(bundle.model.inputs, bundle.layer_output(layer))

    def bare() -> None:
        with bundle.scope():
            truncated.predict(x, batch_size=DEFAULT_BATCH_SIZE, verbose=0)

    def ours() -> None:
        dataset_pass(bundle, ds, [layer])

    bare(), ours()  # warm up
    # interleaved, so that load from other processes hits both sides alike
    pairs = [(median_time(bare, 1), median_time(ours, 1)) for _ in range(repeats)]
    t_bare = statistics.median(p[0] for p in pairs)
    t_ours = statistics.median(p[1] for p in pairs)
    n = len(ds)
    return (f"| {DEMO_MODELS[model_id].title} | {ds.name} | {n:,} | {layer} | {n / t_bare:,.0f} | {n / t_ours:,.0f} "
            f"| {t_bare / t_ours:.2f}× |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="test")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, TF {tf.__version__}, {platform.processor() or platform.machine()}, "
          f"batch {DEFAULT_BATCH_SIZE}, median of {args.repeats}\n")
    print("| model | data | images | layer | bare predict (img/s) | dataset_pass (img/s) | ratio |")
    print("|---|---|---:|---|---:|---:|---:|")
    for model_id in DEMO_MODELS:
        print(measure(model_id, args.split, args.repeats))


if __name__ == "__main__":
    main()
