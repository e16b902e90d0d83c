"""Dataset Explorer benchmark: the batched pass vs a bare predict, t-SNE time, deep-dream time and gain.

* Pass: reuses :func:`bench_stats.measure` (``dataset_pass`` with one layer against a bare truncated
  ``predict`` of the same images); target ≥ 0.9× the bare throughput.
* t-SNE: PCA to 50 dimensions + Barnes-Hut t-SNE (perplexity 30) of a layer's activations from the pass, for
  the sizes the page sees (the cap :data:`xai_core.analysis.explore.embedding.MAX_POINTS` included).
* Deep dream: wall time of 96 steps and the gain ``end / start`` of the channel mean, from low-amplitude noise,
  over every channel of a layer (median, min, and how many reach ≥ 5×).

Run by hand (not a test) on a quiet machine:

    .venv/bin/python bench/bench_explorer.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import tensorflow as tf
from bench_stats import measure

from xai_core.analysis.dataset_pass import dataset_pass
from xai_core.analysis.explore.dream import dream
from xai_core.analysis.explore.embedding import MAX_POINTS, layer_features, tsne
from xai_core.analysis.explore.metrics import Predictions
from xai_core.data.dataset import demo_dataset, model_labels
from xai_core.models.demo import load_demo_model


def tsne_rows(cases: list[tuple[str, str, str]]) -> list[str]:
    rows = []
    for model_id, split, layer in cases:
        bundle = load_demo_model(model_id)
        ds = demo_dataset(bundle.info["dataset"], split)
        t = time.perf_counter()
        dpass = dataset_pass(bundle, ds, [layer])
        t_pass = time.perf_counter() - t
        labels, _ = model_labels(ds, bundle.class_names)
        pred = Predictions.from_pass(dpass, labels, bundle.class_names)
        features, _ = layer_features(dpass.layers[layer])
        emb = tsne(features, pred, perplexity=30)
        rows.append(f"| {model_id} | {ds.name} | {layer} ({features.shape[1]:,} features) | {len(emb.frame):,}"
                    f"{' (sampled)' if emb.subsampled else ''} | {t_pass:.2f} | {emb.seconds:.1f} |")
    return rows


def dream_rows(cases: list[tuple[str, str]], steps: int) -> list[str]:
    rows = []
    for model_id, layer in cases:
        bundle = load_demo_model(model_id)
        channels = bundle.layer(layer).output_shape[-1]
        dream(bundle, 0, layer, steps=2)  # builds the graph once
        factors, times, dead = [], [], 0
        for c in range(channels):
            t = time.perf_counter()
            r = dream(bundle, c, layer, steps=steps)
            times.append(time.perf_counter() - t)
            if r.end <= 0:
                dead += 1
            else:
                factors.append(r.factor)
        finite = [f for f in factors if np.isfinite(f)]
        rows.append(f"| {model_id} | {layer} | {channels} | {statistics.median(times):.2f} | "
                    f"{statistics.median(finite):.1f}× | {min(finite):.1f}× | {sum(f >= 5 for f in factors)} | "
                    f"{dead} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=96)
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, TF {tf.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start\n")
    print("Pass (`dataset_pass`, one layer) vs bare truncated predict, median of", args.repeats, "\n")
    print("| model | data | images | layer | bare predict (img/s) | dataset_pass (img/s) | ratio |")
    print("|---|---|---:|---|---:|---:|---:|")
    for model_id in ("digits_cnn", "shapes_cnn"):
        for split in ("test", "train"):
            print(measure(model_id, split, args.repeats))
    print(f"\nt-SNE (PCA ≤ 50 dims, perplexity 30, cap {MAX_POINTS:,} points)\n")
    print("| model | data | layer | points | pass (s) | PCA + t-SNE (s) |")
    print("|---|---|---|---:|---:|---:|")
    for row in tsne_rows([("digits_cnn", "test", "conv3"), ("digits_cnn", "test", "dense1"),
                          ("digits_cnn", "train", "dense1"), ("shapes_cnn", "train", "dense1")]):
        print(row)
    print(f"\nDeep dream, {args.steps} steps from low-amplitude noise, every channel of the layer\n")
    print("| model | layer | channels | time per dream (s) | median gain | min gain (active) | ≥ 5× | stayed off |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in dream_rows([("digits_cnn", "conv3"), ("shapes_cnn", "conv3"), ("digits_cnn", "dense1")], args.steps):
        print(row)


if __name__ == "__main__":
    main()
