"""Engine benchmark: analyzer build cost, warm latency, overhead over a bare session.run, cache vs rebuild.

Run by hand (not a test) on a quiet machine:

    .venv/bin/python bench/bench_engine.py                      # demo CNN (all methods) + MobileNetV2 subset
    .venv/bin/python bench/bench_engine.py --models demo --repeats 20

Prints Markdown tables; results are recorded in docs/benchmarks.md with the command that produced them.
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

from xai_core.methods import REGISTRY, Target, explain, methods_for
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.demo import load_demo_model

MOBILENET_METHODS = ("gradient", "guided_backprop", "integrated_gradients", "lrp.epsilon",
                     "lrp.sequential_preset_a", "deep_taylor", "gradcam")


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    """Median wall time in seconds over ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bare_gradient(bundle: ModelBundle, x: np.ndarray, cls: int, repeats: int) -> float:
    """``session.run`` of tf.gradients(logit[cls], input), built once (reference: TF's own gradient graph)."""
    with bundle.scope():
        idx = tf.compat.v1.placeholder(tf.int32, (None,))
        score = tf.gather(bundle.model.output, idx, axis=1, batch_dims=1)
        grad = tf.gradients(tf.reduce_sum(score), bundle.model.input)[0]
    feed = {bundle.model.input: x, idx: np.full(len(x), cls, np.int32)}
    bundle.session.run(grad, feed)  # warm-up
    t, _ = timed(lambda: bundle.session.run(grad, feed), repeats)
    return t


def bare_analyzer(bundle: ModelBundle, x: np.ndarray, cls: int, repeats: int) -> float:
    """``session.run`` of the very tensor our cached gradient analyzer computes: the floor for explain()."""
    from xai_core.methods._innvestigate import _direct_fetches, built_analyzer

    analyzer = built_analyzer(bundle, "gradient", "gradient", None, postprocess=None)
    x_in, idx_in, out = _direct_fetches(analyzer)
    feed = {x_in: x, idx_in: analyzer._get_neuron_selection_array(np.full(len(x), cls), len(x))}
    bundle.session.run(out, feed)
    t, _ = timed(lambda: bundle.session.run(out, feed), repeats)
    return t


def rebuild_each_time(bundle: ModelBundle, x: np.ndarray, cls: int) -> float:
    """What iNNvestigate-GUI does per request: create the analyzer, then analyze."""
    import innvestigate

    def once():
        with bundle.scope():
            a = innvestigate.create_analyzer("gradient", bundle.model, neuron_selection_mode="index")
            return a.analyze(x, neuron_selection=np.full(len(x), cls))

    t, _ = timed(once, 1)
    return t


def bench_model(name: str, bundle: ModelBundle, methods: list[str], repeats: int) -> None:
    h, w, c = bundle.input_shape
    rng = np.random.default_rng(0)
    img1 = (rng.random((1, h, w, c)) * 255).astype(np.float32)
    img16 = (rng.random((16, h, w, c)) * 255).astype(np.float32)
    cls = Target.of_class(1)
    print(f"\n### {name}: input {h}×{w}×{c}, {bundle.num_params:,} parameters, {len(bundle.layers)} layers\n")
    print("| method | build + first map (s) | warm, 1 image (ms) | warm, 16 images (ms) |")
    print("|---|---:|---:|---:|")
    for mid in methods:
        try:
            build, _ = timed(lambda m=mid: explain(bundle, m, img1, cls))
            warm1, _ = timed(lambda m=mid: explain(bundle, m, img1, cls), repeats)
            warm16, _ = timed(lambda m=mid: explain(bundle, m, img16, cls), max(3, repeats // 3))
            print(f"| {mid} | {build:.2f} | {warm1 * 1e3:.1f} | {warm16 * 1e3:.1f} |", flush=True)
        except Exception as exc:
            print(f"| {mid} | failed: {type(exc).__name__}: {str(exc)[:80]} | | |", flush=True)

    x16, x1 = bundle.preprocess(img16), bundle.preprocess(img1)
    many = repeats * 5  # millisecond timings: more samples for a stable median
    rows = []
    for label, imgs, x in (("16 images", img16, x16), ("1 image", img1, x1)):
        ours, _ = timed(lambda i=imgs: explain(bundle, "gradient", i, cls), many)
        same = bare_analyzer(bundle, x, 1, many)
        tfgrad = bare_gradient(bundle, x, 1, many)
        rows.append((label, ours, same, tfgrad))
    rebuild = rebuild_each_time(bundle, x1, 1)
    print("\n| gradient, warm | explain() | bare session.run of the same analyzer tensor | **explain() overhead** "
          "(target ≤ +25 %) | bare tf.gradients (reference) |")
    print("|---|---:|---:|---:|---:|")
    for label, ours, same, tfgrad in rows:
        print(f"| {label} | {ours * 1e3:.2f} ms | {same * 1e3:.2f} ms | **{(ours / same - 1) * 100:+.0f} %** | "
              f"{tfgrad * 1e3:.2f} ms |")
    print(f"\nRebuilding the analyzer for every request (iNNvestigate-GUI style), 1 image: {rebuild:.2f} s; "
          f"cached request: {rows[1][1] * 1e3:.2f} ms → **{rebuild / rows[1][1]:,.0f}× faster** (target ≥ 50×).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="demo,mobilenetv2", help="comma list of: demo, mobilenetv2")
    ap.add_argument("--demo-model", default="digits_cnn")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores; median of {args.repeats} warm runs")
    for which in args.models.split(","):
        if which == "demo":
            bundle = load_demo_model(args.demo_model)
            bench_model(f"Demo model {args.demo_model}", bundle, list(methods_for(bundle)), args.repeats)
        elif which == "mobilenetv2":
            t = time.perf_counter()
            bundle = ModelBundle.create(lambda: tf.keras.applications.MobileNetV2(weights=None),
                                        name="MobileNetV2", preprocessing=PREPROCESSINGS["symmetric"])
            print(f"\nMobileNetV2 (weights=None) loaded in {time.perf_counter() - t:.1f} s")
            methods = [m for m in MOBILENET_METHODS if m in REGISTRY]
            bench_model("MobileNetV2 (weights=None)", bundle, methods, max(3, args.repeats // 3))
        else:
            ap.error(f"unknown model {which}")


if __name__ == "__main__":
    main()
