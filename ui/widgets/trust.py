"""The "Can I trust this map?" panel under Visualize's maps, and the sanity-check notes of the Methods page.

Nothing is computed until the user turns the checks on.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from ui.cache import explanation, get_model, params_key, quality_report, sanity_flags
from ui.explanations import Column
from ui.feedback import attempt
from ui.state import init_state
from xai_core.data.dataset import Dataset, model_labels
from xai_core.data.images import to_display
from xai_core.methods import Target, get_method
from xai_core.quality import METRICS
from xai_core.quality.report import HOW_TO_READ, TrustReport, measures_by_image
from xai_core.quality.sanity import demo_sanity
from xai_core.report.trust import WorstShown, worst_picture
from xai_core.report.visualize import MapChecks
from xai_core.viz.quality_charts import curves_chart
from xai_core.viz.render import upscale

STEPS = (10, 20, 50)


def sanity_note(model_key: str, method_id: str) -> tuple[str, bool] | None:
    """``(text, insensitive)`` of a sanity check of ``method_id`` on ``model_key`` run in this server, or measured
    for the demo model by scripts/sanity_demo.py; None if neither exists."""
    result = sanity_flags().get((model_key, method_id))
    if result is not None:
        return f"Sanity check (run in this session): {result.verdict}", result.insensitive
    known = demo_sanity().get((model_key.removeprefix("demo:"), method_id)) if model_key.startswith("demo:") else None
    if known is None:
        return None
    word = "insensitive to the model" if known["insensitive"] else "changes with the model"
    return (f"Sanity check (precomputed, {known['images']} test images): {get_method(method_id).label} {word} — "
            f"mean rank correlation {known['cascade_mean']:.2f} over the cascade (flag above "
            f"{known['threshold']:.2f}).", bool(known["insensitive"]))


def insensitivity_notes(method_id: str) -> list[str]:
    """Every check (run in this server, or precomputed on a demo model) that flagged ``method_id`` insensitive."""
    flags = sanity_flags()
    notes = [f"**{key}**: {r.verdict}" for (key, mid), r in flags.items() if mid == method_id and r.insensitive]
    notes += [f"**demo:{model}** (precomputed, {r['images']} images): mean rank correlation {r['cascade_mean']:.2f} "
              f"with the original maps while the layers are randomised (flag above {r['threshold']:.2f})."
              for (model, mid), r in demo_sanity().items() if mid == method_id and r["insensitive"]]
    return notes


def trust_panel(page: str, columns: Sequence[Column], target: Target) -> MapChecks:
    """Visualize's compact quality section over the maps of ``columns`` (one per model, one method); returns what
    it showed (for the page's report)."""
    notes: list[tuple[str, str, bool]] = []
    with st.expander("Can I trust this map?"):
        st.caption(HOW_TO_READ)
        for column in columns:
            note = sanity_note(column.model_key, column.spec.id)
            if note is not None:
                (st.warning if note[1] else st.caption)(f"**{column.bundle.name}** · {note[0]}")
                notes.append((column.bundle.name, *note))
        if target.kind not in ("predicted", "class"):
            st.info("The checks score class explanations: choose the predicted class or a class as the target.",
                    icon=":material/info:")
            return MapChecks(tuple(notes))
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        init_state(f"{page}.trust.on", False)
        on = left.toggle("Check these maps", key=f"{page}.trust.on",
                         help="Runs (steps + 1) × 4 forward passes per image; results are cached.")
        init_state(f"{page}.trust.steps", 20)
        steps = int(right.select_slider("Deletion / insertion steps", STEPS, key=f"{page}.trust.steps"))
        if not on:
            return MapChecks(tuple(notes))
        reports = [(column.bundle.name, _column_report(page, m, column, steps)) for m, column in enumerate(columns)]
    return MapChecks(tuple(notes), tuple((name, r) for name, r in reports if r is not None), steps)


def _column_report(page: str, m: int, column: Column, steps: int) -> TrustReport | None:
    cells = [(c, c.expl) for c in column.cells if c.expl is not None]
    if not cells:
        return None
    spec, bundle, params = column.spec, column.bundle, column.params
    images = np.concatenate([c.x for c, _ in cells])
    maps = np.stack([e.maps[0, 0] for _, e in cells])
    targets = np.array([e.indices[0, 0] for _, e in cells])
    image_key = "|".join(c.image_key for c, _ in cells)
    names = tuple(c.item.name for c, _ in cells)
    report, error = attempt(lambda: quality_report(
        column.model_key, spec.id, image_key, repr(targets.tolist()), params_key(params), steps, names, images, maps,
        targets, params), f"Checking {spec.label} on {bundle.name}")
    if report is None:
        st.error(error, icon=":material/error:")
        return None
    st.markdown(f"**{bundle.name}** · {report.verdict()}")
    table, chart = st.columns([1, 1], gap="medium")
    table.dataframe(measures_by_image(report.table()), width="stretch")
    if report.axiom is not None:
        table.caption(f"{report.axiom.statement}, tolerance {report.axiom.tolerance:.0%}. {report.axiom.note}")
    chart.altair_chart(curves_chart(report.curves.frame(), height=130, width=165), key=f"{page}.trust.curves.{m}")
    return report


def worst_cards(model_key: str, dataset: Dataset, method_id: str, metric: str, worst: pd.DataFrame,
                explained: str = "predicted", per_row: int = 6) -> tuple[list[int], WorstShown]:
    """The images where ``method_id`` scores worst on ``metric`` (``worst``: ``image_id, value``), each as its map
    over the image with the metric's name and value, so one can see *why* it scored badly. ``explained``: the class
    the scores explained ("predicted" or "label", as in :func:`xai_core.quality.dataset_metrics`). Returns the data
    set positions shown, and the pictures (for the page's report)."""
    bundle = get_model(model_key)
    spec = get_method(method_id)
    where = {image_id: i for i, image_id in enumerate(dataset.ids)}
    indices = [where[i] for i in worst["image_id"] if i in where]
    images = dataset.model_images(indices, bundle.input_size, bundle.channels)
    labels = model_labels(dataset, bundle.class_names)[0]
    label = METRICS[metric].label if metric in METRICS else metric
    pictures: list[tuple[str, np.ndarray]] = []
    for start in range(0, len(indices), per_row):
        for col, i, value in zip(st.columns(per_row), indices[start:start + per_row],
                                 worst["value"].iloc[start:start + per_row]):
            name = dataset.ids[i].split("/")[-1]
            pixels = images.get(i)
            if pixels is None:
                col.caption(f"{name}: could not be read")
                continue
            x = pixels[None].astype(np.float32)
            cls = int(labels[i]) if explained == "label" and labels[i] >= 0 else None
            target = Target.predicted() if cls is None else Target.of_class(cls)
            expl, error = attempt(partial(explanation, model_key, method_id, f"{dataset.key}:{dataset.ids[i]}",
                                          target, spec.defaults(), x), f"{spec.label} on {name}")
            if expl is None:
                col.image(upscale(to_display(pixels), 112), width="stretch")
                col.caption(error or "")
                continue
            picture = worst_picture(pixels, expl.maps[0, 0], spec.signed)
            col.image(upscale(picture, 112), width="stretch")
            col.caption(caption := f"{name} · {expl.labels[0][0]}  \n{label}: **{value:.3f}**")
            pictures.append((caption, picture))
    return indices, WorstShown(method_id, metric, tuple(pictures))
