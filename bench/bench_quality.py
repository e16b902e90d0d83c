"""Quality-check benchmark: deletion + insertion curves, all steps of all images batched, against a bare batched
predict of the same number of perturbed images (target: ≥ 0.9× its throughput).

Run by hand (not a test) on a quiet machine:

    .venv/bin/python bench/bench_quality.py                       # shapes_cnn, 64 images, 20 steps, 5 repeats
    .venv/bin/python bench/bench_quality.py --model digits_cnn --repeats 9

Prints Markdown; results are recorded in docs/benchmarks.md with the command that produced them.
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

from xai_core.data.demo import load_demo_set
from xai_core.methods import Target, explain
from xai_core.models.demo import load_demo_model
from xai_core.quality.faithfulness import deletion_insertion


def timed(fn, repeats: int) -> float:
    """Median wall time in seconds over ``repeats`` calls (after one warm-up call)."""
    return interleaved([fn], repeats)[0]


def interleaved(fns, repeats: int) -> list[float]:
    """Median wall time of each function, their calls interleaved (a busy machine slows all of them alike)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def passes(n: int, steps: int, orders: int, baselines: int = 2) -> int:
    """Forward passes deletion_insertion runs: each image and its baselines once, interior steps per curve/order."""
    return n * (1 + baselines) + n * (steps - 1) * 2 * orders


def one_at_a_time(bundle, images, maps, targets, steps: int) -> None:
    """The obvious implementation: one predict call per image and step (map order, both curves)."""
    from xai_core.quality.faithfulness import baseline_images, map_ranks

    n, h, w, _ = images.shape
    ranks = map_ranks(maps)
    black, blur = baseline_images(images, "black"), baseline_images(images, "blur")
    for i in range(n):
        for k in range(steps + 1):
            chosen = (ranks[i] < round(k * h * w / steps)).reshape(h, w, 1)
            bundle.predict(np.where(chosen, black[i], images[i])[None])[0, targets[i]]
            bundle.predict(np.where(chosen, images[i], blur[i])[None])[0, targets[i]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes_cnn")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--method", default="lrp.epsilon")
    parser.add_argument("--naive", action="store_true", help="also time the one-image-one-step implementation")
    args = parser.parse_args()

    bundle = load_demo_model(args.model)
    data = load_demo_set(bundle.info["dataset"], "test")
    images = data.images[: args.images].astype(np.float32)
    targets = bundle.predict(images).argmax(1)
    maps = explain(bundle, args.method, images, Target.predicted()).maps[:, 0]
    n, steps = len(images), args.steps
    h, w, c = bundle.input_shape
    print(f"Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.machine()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores; model {args.model} ({h}×{w}×{c}), {n} images, "
          f"{steps} steps, {args.method} maps; median of {args.repeats} warm runs, interleaved\n")
    print("| batch | orders | forward passes | deletion_insertion (s) | images/s | bare predict (s) | images/s "
          "| **ratio** (target ≥ 0.9) | bare session.run (s) | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for compare_random in (True, False):
        j = passes(n, steps, 2 if compare_random else 1)
        perturbed = images[rng.integers(0, n, j)]  # the same number of (already built) images, raw pixels
        x = bundle.preprocess(perturbed)
        for bs in args.batch_sizes:
            ours, bare, floor = interleaved([
                lambda bs=bs, cr=compare_random: deletion_insertion(
                    bundle, images, maps, targets, steps=steps, compare_random=cr, batch_size=bs),
                lambda bs=bs, p=perturbed: bundle.predict(p, batch_size=bs),
                lambda bs=bs, x=x: bundle.logits(x, batch_size=bs)], args.repeats)
            print(f"| {bs} | map{' + random' if compare_random else ''} | {j:,} | {ours:.2f} | {n / ours:.1f} | "
                  f"{bare:.2f} | {n / bare:.1f} | **{bare / ours:.2f}×** | {floor:.2f} | {floor / ours:.2f}× |",
                  flush=True)
    if args.naive:
        t = time.perf_counter()
        one_at_a_time(bundle, images, maps, targets, steps)
        naive = time.perf_counter() - t
        best = timed(lambda: deletion_insertion(bundle, images, maps, targets, steps=steps, compare_random=False),
                     args.repeats)
        print(f"\nOne image and one step per predict call (map order, both curves): {naive:.1f} s "
              f"({n / naive:.1f} images/s) vs batched {best:.2f} s: {naive / best:.0f}× faster batched.")


if __name__ == "__main__":
    main()
