"""HTML report: size and time of a report of 8 images × 3 methods, on the path a click takes (results go into
docs/benchmarks.md, "HTML report").

One process, side by side: the maps are made first (not timed), as Compare Models' method grid holds them (8
photos on MobileNetV2 at 224 pixels, random weights, and 8 digits on the demo CNN at 32 pixels; Gradient,
Input × Gradient, Grad-CAM); then each report is built and rendered as the download button does (``compare_report``
then ``render_html``), warm (the chart script on disk) three times and cold (script made first) once, with the
server's RSS before and after and the converter subprocess's peak RSS. The chart options weighed are measured in the
same run: what the script and the PNG fallbacks add, and the converter in the server process instead of a subprocess
(its RSS stays with the server).

    .venv/bin/python bench/bench_report.py
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import numpy as np

from ui.explanations import Cell, Column
from ui.widgets.display import Display
from xai_core.analysis import agreement as ag
from xai_core.data.gallery import demo_images, photos
from xai_core.data.images import fit_to_model, to_display
from xai_core.data.inputs import ImageItem
from xai_core.methods import Target, explain, get_method
from xai_core.models.applications import load_application
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import load_demo_model
from xai_core.models.memory import rss_bytes
from xai_core.report import render_html
from xai_core.report.compare import compare_report
from xai_core.report.vega import vl_version

METHODS = ("gradient", "input_t_gradient", "gradcam")
STYLE = Display("heatmap + overlay", "bwr", 0.6, "max-abs", 99.5, False, 5)  # Visualize's sidebar defaults


def photo_items(n: int) -> list[ImageItem]:
    base = [p.pixels for p in photos()]
    out = []
    for i in range(n):
        pixels, k = base[i % len(base)], i // len(base)
        h, w = pixels.shape[:2]
        crop = pixels[k * h // 10:, k * w // 12:][:, ::(-1 if k % 2 else 1)]
        out.append(ImageItem(f"photo/{i}", f"photo {i}", np.ascontiguousarray(crop), "gallery"))
    return out


def digit_items(n: int) -> list[ImageItem]:
    return [ImageItem(g.key, g.title, g.pixels, "gallery") for g in demo_images("digits")[:n]]


def grid(bundle: ModelBundle, items: list[ImageItem]) -> list[Column]:
    out = []
    for method in METHODS:
        spec = get_method(method)
        column = Column(bundle.name, bundle, spec, spec.initial_params())
        for item in items:
            x = fit_to_model(item.pixels, bundle.input_size, bundle.channels, "center-crop")[None].astype(np.float32)
            expl = explain(bundle, method, x, Target.predicted(), column.params)
            column.cells.append(Cell(item, item.key, x, bundle.predict(x)[0], expl, None))
        out.append(column)
    return out


def click(columns: list[Column]) -> tuple[str, float, float]:
    """What the Report button does on Compare Models: the report, then its HTML; ``(html, build s, render s)``."""
    names = [c.spec.label for c in columns]
    items = [c.item for c in columns[0].cells]
    size = ag.display_size([columns[0].bundle.input_size])
    pictures = [to_display(fit_to_model(i.pixels, size, 3, "center-crop")) for i in items]
    maps = {n: [ag.resize_maps(c.expl.maps[0, 0], size) for c in col.cells] for n, col in zip(names, columns)}
    frame = ag.agreement_frame(maps, [i.name for i in items], 10, "abs")  # the page holds it already
    start = time.perf_counter()
    report = compare_report(columns, names, maps, pictures, frame, STYLE, mode="methods", target=Target.predicted(),
                            fit="center-crop", k=10, by="abs")
    built = time.perf_counter()
    text = render_html(report)
    return text, built - start, time.perf_counter() - built


def parts(text: str) -> dict[str, int]:
    """Bytes of the report's parts: pictures, PNG fallbacks, the chart script, the rest."""
    fallbacks = sum(len(m) for m in re.findall(r'class="fallback" src="([^"]+)"', text))
    pictures = sum(len(m) for m in re.findall(r'src="(data:image/[^"]+)"', text)) - fallbacks
    script = len(re.search(r'<script id="vega-bundle">(.*?)</script>', text, re.S).group(1))
    return {"total": len(text.encode()), "pictures": pictures, "fallbacks": fallbacks, "script": script}


def main() -> None:
    cases = {"8 photos × 3 methods, MobileNetV2 224×224": (load_application("MobileNetV2", weights=None),
                                                             photo_items(8)),
             "8 digits × 3 methods, demo CNN 32×32": (load_demo_model("digits_cnn"), digit_items(8))}
    grids = {}
    for label, (bundle, items) in cases.items():
        start = time.perf_counter()
        grids[label] = grid(bundle, items)
        print(f"maps of {label}: {time.perf_counter() - start:.1f} s (not part of the report)", flush=True)

    from xai_core.report.vega import convert, spec_of
    from xai_core.viz.prediction_charts import predictions_chart, predictions_frame

    one = [spec_of(predictions_chart(predictions_frame(np.array([[0.2, 0.8]]), ["a", "b"])))]
    import xai_core.report.html as report_html

    conversions: list[float] = []

    def recorded(specs: list) -> object:  # the report's own converter call, timed
        done = convert(specs)
        conversions.append(done.seconds)
        return done

    report_html.convert = recorded  # type: ignore[assignment]
    print(f"\nload average before: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    print("\n| report | build Report (s) | render HTML (s) | of which converter subprocess (s) | floor: converter, one "
          "tiny chart (s) | click total / floor | size (MB) | pictures | PNG fallbacks | chart script | server RSS "
          "change (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, columns in grids.items():
        click(columns)  # the script on disk, the analyzers' lazy parts touched
        runs = []
        before = rss_bytes()
        for _ in range(5):  # the report and the floor alternate, so both see the same load
            text, build, render = click(columns)
            floor = convert(one).seconds
            runs.append((build + render, build, render, conversions[-1], floor))
        after = rss_bytes()
        total, build, render, sub, floor = min(runs)
        p = parts(text)
        print(f"| {label} | {build:.2f} | {render:.2f} | {sub:.2f} | {floor:.2f} | {total / floor:.1f} | "
              f"{p['total'] / 1e6:.2f} | {p['pictures'] / 1e6:.2f} | "
              f"{p['fallbacks'] / 1e6:.2f} | {p['script'] / 1e6:.2f} | {(after - before) / 1e6:+.0f} |", flush=True)
        print(f"  all 5 clicks (build + render, s): {', '.join(f'{r[0]:.2f}' for r in runs)}", flush=True)
    print(f"\nconverter subprocess peak RSS (VmHWM), one chart: {convert(one).peak_rss_mb:.0f} MB")

    label = next(iter(grids))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XAI_LENS_CACHE"] = tmp  # no chart script on disk: the first report of a new server
        from xai_core.report import vega

        vega._bundle.clear()
        _, build, render = click(grids[label])
        print(f"cold (chart script made first), {label}: build {build:.2f} s + render {render:.2f} s")
        del os.environ["XAI_LENS_CACHE"]

    text, _, _ = click(grids[label])
    p = parts(text)
    print("\nChart options for the same report (sizes from the parts above; converter in this process):")
    print(f"- script + PNG fallbacks (chosen): {p['total'] / 1e6:.2f} MB")
    print(f"- script only: {(p['total'] - p['fallbacks']) / 1e6:.2f} MB (nothing to see without scripts or in print)")
    print(f"- PNGs only: {(p['total'] - p['script']) / 1e6:.2f} MB (no tooltips, no zoom)")
    import vl_convert as vlc

    specs = re.findall(r'<script type="application/json" id="spec-\d+">(.*?)</script>', text, re.S)
    before = rss_bytes()
    start = time.perf_counter()
    vlc.javascript_bundle(vl_version=vl_version())  # type: ignore[call-arg]
    mid = time.perf_counter()
    pngs = [vlc.vegalite_to_png(s.replace("\\u003c", "<"), vl_version=vl_version()) for s in specs]
    end = time.perf_counter()
    assert all(base64.b64encode(png) for png in pngs)
    print(f"- converter in the server process: script {mid - start:.2f} s, {len(specs)} PNGs {end - mid:.2f} s; "
          f"server RSS {(rss_bytes() - before) / 1e6:+.0f} MB, kept for the life of the process")


if __name__ == "__main__":
    main()
