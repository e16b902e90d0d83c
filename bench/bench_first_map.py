"""First-map benchmark on the path a user's click takes: upload an ImageNet-size network, see its first map; switch
to another method, see its map.

    .venv/bin/python bench/bench_first_map.py                          # ResNet50 at 224, every offered method
    .venv/bin/python bench/bench_first_map.py --nets ResNet50,MobileNetV2 --methods gradient,lrp.alpha_2_beta_1

Each network is ``keras.applications.<name>(weights=None)`` with trained-like BatchNorm statistics (the zoo of the
tests), saved as ``.keras``. Every number comes from a fresh process (what a user's first click meets), runs
alternate so the machine's drift hits all alike, and medians are reported:

- **eager floors**: Keras 3 (TensorFlow 2.21's own ``keras``, what a user who trains today runs) and tf_keras (the
  Keras 2 API the app runs, in eager mode): ``load_model`` of the file (a Keras 3 copy for Keras 3), then the first
  ``tf.GradientTape`` gradient of one image;
- **upload → first map**: the calls the Visualize page makes, in its order — the file's bytes to
  :func:`load_user_model`, the method list (:func:`common_methods`), the prediction bars, the build
  (:func:`ensure_built`) and the map (:func:`explain`) of its default method, LRP-ε — split into those parts;
- **switch**: in a process that has done the above, the build and map of another method (each method in a fresh
  process), against the eager first gradient;
- **warm**: the same method again, 1 and 8 images, against a bare ``session.run`` of the same fetches.

Targets (issue 25): upload → first LRP-ε map ≤ 0.5 × the eager path (load + first gradient); switching ≤ 4 × the
eager first gradient for every LRP rule and Deep Taylor, ≤ 2 × for the gradient family and Grad-CAM; warm maps within
1.25 × the bare run. ``bench/bench_browser.py`` times the same clicks in Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

NETS = ("ResNet50",)
DEFAULT_METHOD = "lrp.epsilon"  # what Visualize opens on (ui/state.py DEFAULT_METHOD)
#: Parameters the switch targets are stated for (the others run with their defaults).
PARAMS = {"integrated_gradients": {"steps": 16}, "smoothgrad": {"samples": 16}}
NO_WARM8 = ("occlusion",)  # one forward pass per patch position: minutes for 8 images, and nothing is built


def switch_target(method_id: str) -> float | None:
    """The switch target as a multiple of the eager first gradient (None: no target)."""
    if method_id.startswith(("lrp", "deep_taylor")):
        return 4.0
    if method_id in ("gradient", "gradient.baseline", "input_t_gradient") or method_id.startswith("gradcam"):
        return 2.0
    return None


def _images(n: int, side: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (n, side, side, 3)).astype(np.float32)


def _min_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------------------------------------- workers
def worker_eager(path: str, side: int, keras3: bool) -> dict:
    """Eager Keras: load the file, then the first gradient of one image."""
    os.environ["TF_USE_LEGACY_KERAS"] = "0" if keras3 else "1"
    import tensorflow as tf

    if keras3:
        import keras
    else:
        keras = tf.keras
    start = time.perf_counter()
    model = keras.models.load_model(path, compile=False)
    loaded = time.perf_counter()
    x = tf.constant(_images(1, side) / 127.5 - 1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = model(x, training=False)[:, 0]
    tape.gradient(score, x).numpy()
    return {"load": loaded - start, "gradient": time.perf_counter() - loaded}


class _Recorder:
    """Stands in for a session: records the fetches and feeds of every ``run``, to time them bare later."""

    def __init__(self, session) -> None:
        self._session, self.calls = session, []

    def run(self, fetches, feed_dict=None, **kwargs):
        self.calls.append((fetches, feed_dict))
        return self._session.run(fetches, feed_dict, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


def _page_first_map(bundle, method_id: str, x: np.ndarray, params: dict, parts: dict) -> None:
    """What the page does for a method's first map: build it, then its map (one image)."""
    from xai_core.methods import explain
    from xai_core.methods.build import ensure_built

    start = time.perf_counter()
    ensure_built(bundle, method_id, params)
    built = time.perf_counter()
    explain(bundle, method_id, x, params=params)
    parts["build"], parts["map"] = built - start, time.perf_counter() - built


def worker_app(path: str, side: int, method_id: str) -> dict:
    """Upload → first map of Visualize's default method; then, when ``method_id`` is another one, switch to it."""
    from xai_core import runtime

    runtime.install()
    from xai_core.methods import REGISTRY, common_methods, explain
    from xai_core.models.upload import load_user_model

    data = Path(path).read_bytes()  # what the file uploader hands the page
    x1, x8 = _images(1, side), _images(8, side)
    first: dict = {}
    start = time.perf_counter()
    bundle = load_user_model(data, Path(path).name)
    first["load"] = time.perf_counter() - start
    mark = time.perf_counter()
    offered = common_methods([bundle])
    bundle.predict(x1)
    first["page"] = time.perf_counter() - mark
    _page_first_map(bundle, DEFAULT_METHOD, x1, {}, first)
    first["total"] = time.perf_counter() - start
    row: dict = {"first": first, "offered": method_id in offered}
    if method_id == DEFAULT_METHOD or method_id not in offered:
        return row
    params = {p.name: p.default for p in REGISTRY[method_id].params} | PARAMS.get(method_id, {})
    switch: dict = {}
    mark = time.perf_counter()
    _page_first_map(bundle, method_id, x1, params, switch)
    switch["total"] = time.perf_counter() - mark
    row["switch"] = switch
    row["warm1"] = _min_time(lambda: explain(bundle, method_id, x1, params=params), 3)
    if method_id in NO_WARM8:
        return row
    session = bundle.session
    recorder = _Recorder(session)
    bundle.session = recorder
    try:
        explain(bundle, method_id, x8, params=params)
    finally:
        bundle.session = session
    warm8, bare8 = [], []
    for _ in range(3):  # alternating: the machine's noise hits both alike
        warm8.append(_min_time(lambda: explain(bundle, method_id, x8, params=params), 1))
        if recorder.calls:
            bare8.append(_min_time(lambda: [session.run(f, d) for f, d in recorder.calls], 1))
    row["warm8"] = min(warm8)
    if bare8:
        row["bare8"] = min(bare8)
    return row


def _run_worker(args: list[str], cpu: str | None) -> dict:
    command = [sys.executable, __file__, "--worker", *args]
    if cpu:
        command = ["taskset", "-c", cpu, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def _save_keras3_copy(name: str, folder: Path, side: int) -> Path:
    """The same architecture saved by Keras 3 (weights=None), for the Keras 3 eager floor."""
    path = folder / f"{name}_keras3.keras"
    if not path.exists():
        code = (f"import os; os.environ['TF_USE_LEGACY_KERAS'] = '0'\nimport keras\n"
                f"keras.applications.{name}(weights=None, input_shape=({side}, {side}, 3)).save({str(path)!r})")
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return path


def _offered_methods(path: Path) -> list[str]:
    from xai_core import runtime

    runtime.install()
    from xai_core.methods import REGISTRY, methods_for
    from xai_core.models.upload import load_user_model

    return [m for m in methods_for(load_user_model(path)) if REGISTRY[m].family != "Pattern"]


def _median(rows: list[dict], *keys: str) -> float:
    values = []
    for row in rows:
        for key in keys:
            row = row.get(key, {}) if isinstance(row, dict) else {}
        if isinstance(row, float | int):
            values.append(float(row))
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--methods", default="", help="comma-separated method ids (default: every offered one)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--floor-runs", type=int, default=3, help="eager runs of each kind before the methods")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/xai_lens_bench_first_map"))
    parser.add_argument("--cpu", default=None, help="pin every worker to these CPUs (taskset -c)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, path, side, *rest = args.worker
        if kind in ("eager-keras3", "eager-tf_keras"):
            row = worker_eager(path, int(side), kind == "eager-keras3")
        else:
            row = worker_app(path, int(side), rest[0])
        print(json.dumps(row), flush=True)
        return

    from zoo import save_zoo_model  # the zoo of the tests: trained-like BN statistics

    results: dict[str, dict] = {}
    for name in args.nets.split(","):
        args.folder.mkdir(parents=True, exist_ok=True)
        path = args.folder / f"{name}.keras"
        if not path.exists():
            save_zoo_model(name, args.folder, side=args.size)
        k3_path = _save_keras3_copy(name, args.folder, args.size)
        eager: dict[str, list[dict]] = {"keras3": [], "tf_keras": []}

        def floors(eager: dict[str, list[dict]] = eager, path: Path = path, k3_path: Path = k3_path) -> None:
            eager["keras3"].append(_run_worker(["eager-keras3", str(k3_path), str(args.size)], args.cpu))
            eager["tf_keras"].append(_run_worker(["eager-tf_keras", str(path), str(args.size)], args.cpu))

        for _ in range(args.floor_runs):
            floors()
        methods = args.methods.split(",") if args.methods else _offered_methods(path)
        rows: dict[str, dict] = {}
        firsts: list[dict] = []
        for method_id in [DEFAULT_METHOD, *[m for m in methods if m != DEFAULT_METHOD]]:
            rows[method_id] = row = _run_worker(["app", str(path), str(args.size), method_id], args.cpu)
            if "first" in row:
                firsts.append(row["first"])
            print(f"{name} {method_id}: {json.dumps(row)}", flush=True)
            floors()  # one more after each method: the floors drift with the machine
        results[name] = {"eager": eager, "rows": rows}
        _report(name, eager, firsts, rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def _report(name: str, eager: dict[str, list[dict]], firsts: list[dict], rows: dict[str, dict]) -> None:
    k3_load, k3_grad = _median(eager["keras3"], "load"), _median(eager["keras3"], "gradient")
    tk_load, tk_grad = _median(eager["tf_keras"], "load"), _median(eager["tf_keras"], "gradient")
    k3_path, tk_path = k3_load + k3_grad, tk_load + tk_grad
    parts = {key: statistics.median(f[key] for f in firsts) for key in ("load", "page", "build", "map", "total")}
    n = len(eager["keras3"])
    print(f"\n## {name}: upload → first {DEFAULT_METHOD} map (medians of {len(firsts)} fresh processes; eager floors "
          f"of {n} each)\n")
    print("| path | load | first gradient / page + build + map | total | × Keras 3 eager | × tf_keras eager |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| Keras 3 eager | {k3_load:.2f} s | {k3_grad:.2f} s | {k3_path:.2f} s | 1.00 | – |")
    print(f"| tf_keras eager | {tk_load:.2f} s | {tk_grad:.2f} s | {tk_path:.2f} s | – | 1.00 |")
    print(f"| XAI Lens (the page's calls) | {parts['load']:.2f} s | {parts['page']:.2f} + {parts['build']:.2f} + "
          f"{parts['map']:.2f} s | {parts['total']:.2f} s | {parts['total'] / k3_path:.2f} | "
          f"{parts['total'] / tk_path:.2f} |")
    floor = statistics.median([k3_grad, tk_grad])
    print(f"\n### {name}: switching method (floor: eager first gradient {floor:.2f} s, median of both Kerases)\n")
    print("| method | build | map | switch | × floor | target | met | warm 1 | warm 8 | bare 8 | warm / bare |")
    print("|---|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|")
    for method_id, row in rows.items():
        if "switch" not in row:
            why = row.get("error") or ("not offered" if not row.get("offered", True) else "the first map (above)")
            print(f"| {method_id} | {why} ||||||||||")
            continue
        s = row["switch"]
        goal = switch_target(method_id)
        ratio = s["total"] / floor
        met = "–" if goal is None else ("yes" if ratio <= goal else "**no**")
        warm8 = f"{row['warm8']:.3f} s" if "warm8" in row else "–"
        bare = f"{row['bare8']:.3f} s" if "bare8" in row else "–"
        over = f"{row['warm8'] / row['bare8']:.2f}" if "bare8" in row and "warm8" in row else "–"
        print(f"| {method_id} | {s['build']:.2f} s | {s['map']:.2f} s | {s['total']:.2f} s | {ratio:.1f}× | "
              f"{'–' if goal is None else f'{goal:g}×'} | {met} | {row['warm1']:.3f} s | {warm8} | {bare} | {over} |")


if __name__ == "__main__":
    main()
