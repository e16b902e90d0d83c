"""Memory budget benchmark: three ImageNet-size uploads, one LRP method each, round after round, under a budget.

    .venv/bin/python bench/bench_memory.py                    # 10 rounds, 2.2 GB budget, 224×224 inputs
    .venv/bin/python bench/bench_memory.py --rounds 2 --size 128
    .venv/bin/python bench/bench_memory.py --costs            # what memory.py's estimates are fitted to

ResNet50, VGG16 and DenseNet121 (``weights=None``, trained-like BatchNorm statistics as in the zoo tests) are saved
as .keras files and loaded through the upload path, one after another, each explained with LRP-ε on 2 images. The
policy is the app's (``ui.cache``: plan before a model loads and before an analyzer builds, unload the least
recently used, close its session, trim the heap), driven here without Streamlit. Printed: peak RSS against the
budget (+10 % allowed), RSS after the rounds against a fresh process holding the last model (within 15 %), and
whether every map equals the unbudgeted run's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

NETS = ("ResNet50", "VGG16", "DenseNet121")
METHOD = "lrp.epsilon"


def save_zoo(folder: Path, size: int) -> dict[str, Path]:
    from zoo import save_zoo_model  # the zoo of the tests: trained-like BN statistics

    return {name: (folder / f"{name}.keras") if (folder / f"{name}.keras").exists()
            else save_zoo_model(name, folder, side=size)["keras"] for name in NETS}


class Peak:
    """Samples this process's RSS every 50 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self) -> None:
        from xai_core.models.memory import rss_bytes

        self.rss, self.peak, self._stop = rss_bytes, rss_bytes(), False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop = True
        self._thread.join()
        return self.peak


def run(paths: dict[str, Path], rounds: int, budget: int, images: np.ndarray) -> tuple[dict, int, int]:
    from xai_core.methods import explain
    from xai_core.models.memory import Ledger, MemoryBudgetError, build_cost, load_cost, release_memory, rss_bytes
    from xai_core.models.upload import load_user_model

    ledger = Ledger(budget)
    loaded: dict[str, object] = {}
    maps: dict[str, np.ndarray] = {}
    refused: set[str] = set()
    peak = Peak()
    for r in range(rounds):
        for name, path in paths.items():
            data = path.read_bytes()
            if name not in loaded:
                try:
                    evict = ledger.plan(name, load_cost(len(data)), f"Loading {name}")
                except MemoryBudgetError as exc:  # the app shows this message and keeps the others
                    refused.add(name)
                    print(f"round {r + 1} {name}: refused: {str(exc)[:90]}", flush=True)
                    continue
                for other in evict:
                    loaded.pop(str(other)).close()  # type: ignore[attr-defined]
                    ledger.forget(other)
                    release_memory()
                before = rss_bytes()
                loaded[name] = load_user_model(data, path.name)
                ledger.charge(name, max(rss_bytes() - before, load_cost(len(data))))
            bundle = loaded[name]
            ledger.touch(name)
            need = build_cost(4 * bundle.num_params, images.shape[1] * images.shape[2])  # type: ignore[attr-defined]
            for other in ledger.plan(name, need, f"Building for {name}"):
                loaded.pop(str(other)).close()  # type: ignore[attr-defined]
                ledger.forget(other)
                release_memory()
            before = rss_bytes()
            m = explain(bundle, METHOD, images, params={}).maps  # type: ignore[arg-type]
            ledger.charge(name, max(0, rss_bytes() - before))
            maps.setdefault(name, m)
            assert np.allclose(maps[name], m, rtol=1e-5, atol=1e-6 * np.abs(m).max()), f"{name} changed"
            print(f"round {r + 1} {name}: RSS {rss_bytes() / 2**20:,.0f} MB, loaded {sorted(loaded)}", flush=True)
    if refused:
        print(f"refused under this budget: {', '.join(sorted(refused))}")
    return maps, peak.stop(), rss_bytes()


def costs(folder: Path, size: int, images: np.ndarray) -> None:
    """Per network, in a fresh process each: RSS growth of loading it and of building LRP-ε, against the estimates
    of ``xai_core/models/memory.py``."""
    from xai_core.models.memory import build_cost, load_cost

    print("| network (file) | RSS before | load (peak) | after load | estimate | LRP-ε build (2 images, peak) "
          "| estimate |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in NETS:
        path = folder / f"{name}.keras"
        out = subprocess.run([sys.executable, __file__, "--size", str(size), "--fresh", f"costs:{name}"],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        got = json.loads(out)
        mb = path.stat().st_size / 2**20
        print(f"| {name} ({mb:,.0f} MB) | {got['before'] / 2**30:.2f} GB | +{got['load'] / 2**30:.2f} GB | "
              f"+{got['after_load'] / 2**30:.2f} GB | +{load_cost(path.stat().st_size) / 2**30:.2f} GB | "
              f"+{got['build'] / 2**30:.2f} GB | "
              f"+{build_cost(got['weights'], size * size) / 2**30:.2f} GB |", flush=True)


def _fresh_costs(path: Path, images: np.ndarray) -> None:
    from xai_core.methods import explain
    from xai_core.models.memory import rss_bytes
    from xai_core.models.upload import load_user_model

    peak = Peak()
    before = rss_bytes()
    bundle = load_user_model(path.read_bytes(), path.name)
    loaded, after_load = peak.stop(), rss_bytes()
    peak = Peak()
    explain(bundle, METHOD, images, params={})
    built = peak.stop()
    print(json.dumps({"before": before, "load": loaded - before, "after_load": after_load - before,
                      "build": built - after_load, "weights": 4 * bundle.num_params}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--budget-mb", type=float, default=2.2 * 1024)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--fresh", help=argparse.SUPPRESS)  # internal: RSS of a fresh process holding one model
    parser.add_argument("--costs", action="store_true", help="load and build costs per network, fresh processes")
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / f"xai-lens-bench-memory-{args.size}"
    folder.mkdir(exist_ok=True)
    images = np.random.default_rng(0).integers(0, 256, (2, args.size, args.size, 3)).astype(np.float32)
    if args.fresh and args.fresh.startswith("costs:"):
        _fresh_costs(folder / f"{args.fresh.split(':', 1)[1]}.keras", images)
        return
    if args.fresh and args.fresh != "zoo":
        from xai_core.methods import explain
        from xai_core.models.memory import rss_bytes
        from xai_core.models.upload import load_user_model

        path = folder / f"{args.fresh}.keras"
        explain(load_user_model(path.read_bytes(), path.name), METHOD, images, params={})
        print(json.dumps({"rss": rss_bytes()}))
        return
    if args.fresh == "zoo":
        save_zoo(folder, args.size)
        return
    if not all((folder / f"{name}.keras").exists() for name in NETS):  # built in another process: eager building
        subprocess.run([sys.executable, __file__, "--size", str(args.size), "--fresh", "zoo"], check=True)
    paths = save_zoo(folder, args.size)
    if args.costs:
        costs(folder, args.size, images)
        return
    started = time.perf_counter()
    maps, peak, end = run(paths, args.rounds, int(args.budget_mb * 2**20), images)
    last = [n for n in NETS if n in maps][-1]
    out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--fresh", last],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    fresh = json.loads(out)["rss"]
    budget = args.budget_mb * 2**20
    print(f"\n| rounds | budget | peak RSS | peak / budget | RSS after | fresh process, {last} | after / fresh "
          f"| time |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n| {args.rounds} | {budget / 2**30:.2f} GB | "
          f"{peak / 2**30:.2f} GB | {peak / budget:.2f} | {end / 2**30:.2f} GB | {fresh / 2**30:.2f} GB | "
          f"{end / fresh:.2f} | {time.perf_counter() - started:.0f} s |")
    print(f"maps identical across rounds for {', '.join(maps)}")


if __name__ == "__main__":
    main()
