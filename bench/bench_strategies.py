"""Strategies (SpRAy) benchmark: a class's maps vs a bare batched gradient pass, and clustering + t-SNE of 1,000 maps.

* Maps: :func:`xai_core.analysis.strategies.class_maps` (the page's path: the data set's images in batches of 64,
  ``explain()`` per batch with the class target) against a bare ``tf.gradients`` of the same logit with respect to
  the input, built once and fed the same preprocessed images in batches of 64 with ``session.run``. Both warm
  (analyzer / gradient built before timing), run alternately, fastest of ``--repeats``; target ≤ 1.5×.
* Clustering + embedding: :func:`~xai_core.analysis.strategies.find_strategies` of those maps (pooling, k-NN graph,
  eigen-decomposition, k-means for every k ≤ 8, t-SNE); target ≤ 2 s for 1,000 maps. Changing the number of
  clusters afterwards is a dictionary look-up (timed too).

Run by hand (not a test):

    .venv/bin/python bench/bench_strategies.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import tensorflow as tf

from xai_core.analysis import strategies as spray
from xai_core.data.dataset import demo_dataset
from xai_core.models.demo import load_demo_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="tagged_shapes_cnn")
    ap.add_argument("--methods", nargs="*", default=["lrp.epsilon", "gradient", "lrp.alpha_1_beta_0"])
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, TF {tf.__version__}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start\n")
    bundle = load_demo_model(args.model)
    ds = demo_dataset(bundle.info["dataset"], "train")
    c = 0
    index = np.flatnonzero(ds.labels == c)[:1000]
    x = bundle.preprocess(ds.pixels[index])
    logits = bundle.logits(x)
    with bundle.scope():
        score = bundle.model.output[:, c]
        (grad,) = tf.gradients(tf.reduce_sum(score), bundle.model.input)

    def bare() -> None:
        with bundle.scope():
            for start in range(0, len(x), 64):
                bundle.session.run(grad, {bundle.model.input: x[start:start + 64]})

    print(f"{bundle.name}, class {bundle.class_names[c]!r}: {len(index):,} training images, batches of 64\n")
    print("| method | bare tf.gradients pass (s) | class_maps (s) | ratio (target ≤ 1.5×) |")
    print("|---|---:|---:|---:|")
    maps = None
    for method in args.methods:
        spray.class_maps(bundle, ds, c, index[:64], logits[:64], method)  # builds the analyzer
        bare()
        t_bare, t_ours = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            bare()
            t_bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            cm = spray.class_maps(bundle, ds, c, index, logits, method)
            t_ours.append(time.perf_counter() - t)
        maps = cm if method == args.methods[0] else maps
        print(f"| {method} | {min(t_bare):.2f} | {min(t_ours):.2f} | **{min(t_ours) / min(t_bare):.2f}×** |")
    assert maps is not None
    print(f"\nClustering + embedding of {len(maps):,} maps ({args.methods[0]}, positive relevance, 8×8 grid), "
          f"fastest of {args.repeats}\n")
    print("| step | seconds |")
    print("|---|---:|")
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        s = spray.find_strategies(maps)
        runs.append((time.perf_counter() - t, s))
    total, s = min(runs, key=lambda r: r[0])
    for step, sec in s.seconds.items():
        print(f"| {step} | {sec:.3f} |")
    print(f"| **total** (target ≤ 2 s) | **{total:.2f}** |")
    t = time.perf_counter()
    for k in range(1, max(s.labels) + 1):
        s.clusters(k)
    print(f"| every other number of clusters (look-up) | {time.perf_counter() - t:.6f} |")
    print(f"\neigengap suggests {s.suggested} clusters; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
