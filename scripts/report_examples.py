"""Write the example reports in docs/examples/: Visualize's default (the demo digits CNN, LRP-ε, digits/test/0078, the
sidebar's default display) with *Check these maps* on, a Trust run (the localisation leaderboard at the page's
defaults, then the sanity check at its defaults), and Suggest's strategies of the bias demo's circle class (the
view's defaults: LRP-ε, the eigengap's clusters, the most concentrated one checked). Same builders and the same typed
results as the pages; only the Streamlit widgets are replaced by their default values.

    .venv/bin/python scripts/report_examples.py            # about a minute on 2 cores
    .venv/bin/python scripts/report_examples.py --only report-strategies.html
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import numpy as np

from ui.explanations import Cell, Column
from ui.widgets.display import Display
from ui.widgets.trust import STEPS, sanity_note
from xai_core.analysis import strategies as spray
from xai_core.analysis.shortcut import shortcut_check
from xai_core.data.dataset import demo_dataset, model_labels
from xai_core.data.demo import load_demo_set
from xai_core.data.gallery import demo_images
from xai_core.data.images import fit_to_model
from xai_core.data.inputs import ImageItem
from xai_core.methods import Target, explain, get_method
from xai_core.models.demo import load_demo_model
from xai_core.quality import cascading_randomization, localisation_leaderboard, trust_report, worst_images
from xai_core.quality.base import class_maps
from xai_core.report import render_html
from xai_core.report.strategies import StrategiesRun, strategies_report
from xai_core.report.trust import LocalisationRun, SanityRun, TrustRuns, WorstShown, worst_picture
from xai_core.report.trust import trust_report as trust_document
from xai_core.report.visualize import MapChecks, visualize_report

OUT = ROOT / "docs" / "examples"
DISPLAY = Display("heatmap + overlay", "bwr", 0.6, "max-abs", 99.5, False, 5)  # the sidebar's defaults
LOC_METHODS = ("gradient", "integrated_gradients", "lrp.epsilon", "lrp.sequential_preset_a", "gradcam", "random")


def visualize_example() -> str:
    bundle = load_demo_model("digits_cnn")
    spec = get_method("lrp.epsilon")
    gallery = {g.key: g for g in demo_images("digits")}
    item = ImageItem("digits/test/0078", gallery["digits/test/0078"].title, gallery["digits/test/0078"].pixels,
                     "gallery")
    column = Column("demo:digits_cnn", bundle, spec, spec.initial_params())
    x = fit_to_model(item.pixels, bundle.input_size, bundle.channels, "center-crop")[None].astype(np.float32)
    expl = explain(bundle, spec.id, x, Target.predicted(), column.params)
    column.cells.append(Cell(item, item.key, x, bundle.predict(x)[0], expl, None))
    report = trust_report(bundle, spec.id, x, expl.maps[:, 0], expl.indices[:, 0], column.params, [item.name],
                          steps=STEPS[1])
    note = sanity_note(column.model_key, spec.id)
    checks = MapChecks(((bundle.name, *note),) if note else (), ((bundle.name, report),), STEPS[1])
    return render_html(visualize_report([column], Target.predicted(), DISPLAY, "center-crop", checks))


def trust_example() -> str:
    shapes = load_demo_model("shapes_cnn")
    frame = localisation_leaderboard(shapes, list(LOC_METHODS), n=16, margin=4)
    method = "gradient"  # the page inspects the first method until a bar is clicked
    worst = worst_images(frame, method, "relevance_mass", k=6)
    data = demo_dataset("shapes")
    where = {image_id: i for i, image_id in enumerate(data.ids)}
    indices = [where[i] for i in worst["image_id"]]
    pixels = np.stack([data.model_images(indices, shapes.input_size, shapes.channels)[i] for i in indices])
    labels = model_labels(data, shapes.class_names)[0][indices]
    maps = class_maps(shapes, method, pixels.astype(np.float32), labels)
    spec = get_method(method)
    pictures = tuple((f"{data.ids[i].split('/')[-1]} · {shapes.class_names[c]} (class {c})  \nRelevance mass in the "
                      f"object: **{v:.3f}**", worst_picture(p, m, spec.signed))
                     for i, c, v, p, m in zip(indices, labels, worst["value"], pixels, maps))
    digits = load_demo_model("digits_cnn")
    images = load_demo_set("digits").images[:4]
    sanity = cascading_randomization(digits, "guided_backprop", images, {})
    runs = TrustRuns(LocalisationRun(shapes, frame, 16, 4, worst=WorstShown(method, "relevance_mass", pictures)),
                     SanityRun(digits, sanity, "digits/test[:4]"))
    return render_html(trust_document(runs))


def strategies_example() -> str:
    bundle = load_demo_model("tagged_shapes_cnn")
    data = demo_dataset("tagged_shapes")
    circle = bundle.class_names.index("circle")
    logits = bundle.logits(bundle.preprocess(data.pixels))
    index, members = spray.class_members(data.labels, logits.argmax(1), circle)
    s = spray.find_strategies(spray.class_maps(bundle, data, circle, index, logits[index], "lrp.epsilon"))
    k = s.suggested
    cluster = int(spray.cluster_table(s, k)["concentration"].idxmax())  # the cluster the view opens on
    others = np.flatnonzero((data.labels != circle) & (logits.argmax(1) != circle))
    check = shortcut_check(bundle, data, s, k, cluster, others)
    return render_html(strategies_report(StrategiesRun(bundle, data, s, k, members, check=check)))


EXAMPLES = {"report-visualize.html": visualize_example, "report-trust.html": trust_example,
            "report-strategies.html": strategies_example}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", choices=list(EXAMPLES), help="write this example only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in EXAMPLES.items():
        if args.only and name != args.only:
            continue
        start = time.perf_counter()
        text = make()
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(text.encode()) / 1e6:.2f} MB ({time.perf_counter() - start:.1f} s with its maps)")


if __name__ == "__main__":
    main()
