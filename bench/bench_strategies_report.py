"""Strategies report: size and time of Suggest's strategies report on a realistic run (results go into
docs/benchmarks.md, "HTML report").

The analysis is made first (not timed), as the page holds it: the bias demo's circle class in the *training* set
(1,000 images, the page's largest t-SNE with hover thumbnails), LRP-ε, the page's clustering defaults, the shortcut
check of the most concentrated cluster with 200 images of other classes pasted into; and the held-out set's circle
class (100 images, what the page opens on). Then each report is built and rendered as the download button does
(``strategies_report`` then ``render_html``; the chart script on disk), five times, alternating with a *floor*: the
converter subprocess drawing one tiny chart. Shown with the eigengap's clusters and with the most the page offers (8).

    .venv/bin/python bench/bench_strategies_report.py
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import numpy as np

from xai_core.analysis import shortcut as sc
from xai_core.analysis import strategies as spray
from xai_core.data.dataset import Dataset, demo_dataset
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import load_demo_model
from xai_core.report import render_html
from xai_core.report.strategies import StrategiesRun, strategies_report
from xai_core.report.vega import convert, spec_of
from xai_core.viz.prediction_charts import predictions_chart, predictions_frame

CLASS = 0  # circle: the class with the tag


def analysis(bundle: ModelBundle, ds: Dataset, n: int) -> tuple[spray.Strategies, np.ndarray]:
    """The class's strategies on its first ``n`` images, and the positions of images of other classes the model does
    not call the class (what the check pastes into)."""
    x = bundle.preprocess(ds.pixels)
    logits = np.concatenate([bundle.logits(x[i:i + 256]) for i in range(0, len(x), 256)])
    index = np.flatnonzero(ds.labels == CLASS)[:n]
    maps = spray.class_maps(bundle, ds, CLASS, index, logits[index], "lrp.epsilon")
    others = np.flatnonzero((ds.labels != CLASS) & (logits.argmax(1) != CLASS))
    return spray.find_strategies(maps), others


def parts(text: str) -> dict[str, int]:
    """Bytes of the report's parts: pictures, PNG fallbacks, the chart script, chart specs."""
    fallbacks = sum(len(m) for m in re.findall(r'class="fallback" src="([^"]+)"', text))
    pictures = sum(len(m) for m in re.findall(r'src="(data:image/[^"]+)"', text)) - fallbacks
    script = len(re.search(r'<script id="vega-bundle">(.*?)</script>', text, re.S).group(1))
    specs = sum(len(m) for m in re.findall(r'<script type="application/json" id="spec-\d+">(.*?)</script>', text,
                                           re.S))
    return {"total": len(text.encode()), "pictures": pictures, "fallbacks": fallbacks, "script": script,
            "specs": specs}


def main() -> None:
    bundle = load_demo_model("tagged_shapes_cnn")
    cases = {}
    for split, n in (("train", 1000), ("test", 100)):
        ds = demo_dataset("tagged_shapes", split)
        start = time.perf_counter()
        s, others = analysis(bundle, ds, n)
        for k in dict.fromkeys((s.suggested, spray.MAX_CLUSTERS)):
            cluster = int(spray.cluster_table(s, k)["concentration"].idxmax())
            check = sc.shortcut_check(bundle, ds, s, k, cluster, others)
            cases[f"{split}: {len(s.maps)} circles, {k} clusters"] = StrategiesRun(bundle, ds, s, k, check=check)
        print(f"analysis of {split} ({len(s.maps)} images, eigengap {s.suggested}): {time.perf_counter() - start:.1f} "
              "s (not part of the report)", flush=True)
    one = [spec_of(predictions_chart(predictions_frame(np.array([[0.2, 0.8]]), ["a", "b"])))]
    render_html(strategies_report(next(iter(cases.values()))))  # the chart script on disk, the Altair imports made
    print(f"\nload average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores, shared)")
    print("\n| report | build Report (s) | render HTML (s) | click total (s) | floor: converter, one tiny chart (s) | "
          "size (MB) | pictures | PNG fallbacks | chart script | chart specs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, run in cases.items():
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            report = strategies_report(run)
            built = time.perf_counter()
            text = render_html(report)
            done = time.perf_counter()
            runs.append((done - start, built - start, done - built, convert(one).seconds))
        total, build, render, floor = min(runs)
        p = parts(text)
        print(f"| {label} | {build:.2f} | {render:.2f} | **{total:.2f}** | {floor:.2f} | **{p['total'] / 1e6:.2f}** | "
              f"{p['pictures'] / 1e6:.2f} | {p['fallbacks'] / 1e6:.2f} | {p['script'] / 1e6:.2f} | "
              f"{p['specs'] / 1e6:.2f} |", flush=True)
        print(f"  all 5 clicks (build + render, s): {', '.join(f'{r[0]:.2f}' for r in runs)}", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
