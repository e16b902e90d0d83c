"""Visualize: pick images and models, pick a method, and see why each model predicts what it predicts."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import streamlit as st

from ui.router import through_router  # isort: skip
from ui.cache import model_input
from ui.explanations import explain_grid
from ui.page import page_header
from ui.report import report_button
from ui.state import apply_visualize_request
from ui.widgets.display import display_image, display_settings
from ui.widgets.fitting import fitting_ready
from ui.widgets.images import image_picker
from ui.widgets.method import method_section, on_prediction_click
from ui.widgets.models import loaded_models, model_picker
from ui.widgets.trust import trust_panel
from xai_core.data.images import to_display
from xai_core.methods import common_methods
from xai_core.report.facts import describe_target
from xai_core.report.visualize import visualize_report
from xai_core.viz.exports import maps_npz, predictions_csv, slug, stack_explanations
from xai_core.viz.prediction_charts import predictions_chart, predictions_frame
from xai_core.viz.render import VIEWS, compose_grid, map_tiles, png_bytes

PAGE = "visualize"
DEFAULT_IMAGES = ("digits/test/0078",)


def grid_png(rows: list, captions: list) -> bytes:
    return png_bytes(compose_grid(rows, captions))


through_router()
apply_visualize_request(PAGE)  # images, models, target or method sent from another page
page_header(PAGE, "Visualize",
            "Pick images and one or more models, choose an explanation method and a target, and see which pixels "
            "drive the prediction. Display settings are in the sidebar; they never recompute a map.")

# ------------------------------------------------------------------------------------------- inputs
col_images, col_models = st.columns([3, 2], gap="large")
with col_images:
    st.subheader("Images")
    picked = image_picker(PAGE, default=DEFAULT_IMAGES)
with col_models:
    st.subheader("Models")
    bundles = loaded_models(model_picker(PAGE))
    for bundle in bundles.values():
        st.caption(bundle.summary())

items, fit = picked.items, picked.fit
if not items or not bundles:
    st.info("Choose at least one image and one model that loads to see explanations.", icon=":material/info:")
    st.stop()
allowed = common_methods(list(bundles.values()))
if not allowed:
    st.error("No explanation method can run on every chosen model; remove one of them.")
    st.stop()

choice = method_section(PAGE, allowed, list(bundles.values()))
spec, params, target = choice.spec, choice.params, choice.target
disp = display_settings(PAGE, spec.signed)
if not fitting_ready(PAGE, [(k, b, spec, params) for k, b in bundles.items()],
                     lambda b: np.concatenate([model_input(i, b, fit)[1] for i in items])):
    st.stop()  # a method that learns from data (PatternNet's patterns) does so once per model, first

# ------------------------------------------------------------------------------------------- compute
columns = explain_grid([(key, spec, params) for key in bundles], items, target, fit)
norms = [column.normalized(disp.norm, disp.percentile, disp.shared) for column in columns]
for column in columns:
    for warning in column.warnings():
        st.warning(f"**{column.bundle.name}:** {warning}", icon=":material/warning:")

# ------------------------------------------------------------------------------------------- results
k_maps = max((len(n) for ns in norms for n in ns if n is not None), default=1)
per_line = (2 if disp.view == VIEWS[0] else 1) * math.isqrt(k_maps)
st.subheader(f"Why? {spec.label} for {describe_target(target)}")
st.caption("Click a bar of a prediction chart to explain that class.")
grid_rows, grid_captions = [], []
for i, item in enumerate(items):  # one row per image and model: model input | maps | predictions
    if len(columns) > 1:
        st.markdown(f"**{item.name}**")
    image_rows, image_captions = [], []
    for m, column in enumerate(columns):
        cell, bundle = column.cells[i], column.bundle
        side = max(1.0, per_line / 4)  # the input and the chart keep a readable size beside 16 neurons
        left, mid, right = st.columns([side, per_line, 1.7 * side], gap="small")
        row, captions = [display_image(cell.x[0])], [f"{item.name} · {bundle.name}"]
        left.image(row[0], width="stretch", caption=f"{bundle.name if len(columns) > 1 else item.name} "
                   f"(input {cell.x.shape[1]}×{cell.x.shape[2]})")
        if cell.error:
            mid.error(cell.error, icon=":material/error:")
        maps_i = norms[m][i]
        if cell.expl is not None and maps_i is not None:
            for k, norm_map in enumerate(maps_i):
                label = cell.expl.labels[0][k].removeprefix(f"{cell.expl.layer} ")  # the layer is in the heading
                label = label if k_maps == 1 else label.replace("neuron ", "#")
                tiles = map_tiles(to_display(cell.x[0]), norm_map, spec.signed, disp.cmap, disp.alpha, disp.view)
                for j, (kind, picture) in enumerate(tiles):
                    row.append(picture)  # several neurons: one caption per neuron, under its first tile
                    captions.append(f"{kind} · {label}" if k_maps == 1 else (label if j == 0 else " "))
        for start in range(1, len(row), per_line):
            for col, picture, caption in zip(mid.columns(per_line, gap="small"), row[start:start + per_line],
                                             captions[start:start + per_line]):
                col.image(picture, caption=caption, width="stretch")
        chart_key = f"{PAGE}.chart.{m}.{i}"
        df = predictions_frame(cell.probs[None], bundle.class_names, disp.top_k, [item.name], bundle.name)
        right.altair_chart(predictions_chart(df, selected=target.index if target.kind == "class" else None),
                           key=chart_key, on_select=partial(on_prediction_click, PAGE, chart_key), width="stretch")
        image_rows.append(row)
        image_captions.append(captions)
    left.download_button("This image (PNG)", data=partial(grid_png, image_rows, image_captions), mime="image/png",
                         file_name=f"xai-lens_{slug(item.name)}_{slug(spec.id)}.png", icon=":material/download:",
                         type="tertiary", key=f"{PAGE}.png.{i}")
    grid_rows += image_rows
    grid_captions += image_captions

checks = trust_panel(PAGE, columns, target)  # "Can I trust this map?" (on demand)

# ------------------------------------------------------------------------------------------- downloads
st.divider()
stem = f"xai-lens_{slug(spec.id)}_{target.kind}"
d1, d2, d3, d4 = st.columns(4)
d1.download_button("Grid (PNG)", data=partial(grid_png, grid_rows, grid_captions), file_name=f"{stem}.png",
                   mime="image/png", icon=":material/grid_view:", width="stretch")
npz_input = {c.bundle.name: ([cell.item.name for cell in c.explained],
                             stack_explanations([cell.expl for cell in c.explained if cell.expl is not None]))
             for c in columns if c.explained}
d2.download_button("Raw maps (.npz)", data=partial(maps_npz, npz_input, {
    "method": spec.id, "params": params, "target": str(target), "fit": fit}), file_name=f"{stem}.npz",
    mime="application/octet-stream", icon=":material/data_array:", width="stretch", disabled=not npz_input)
frames = [predictions_frame(np.stack([cell.probs for cell in c.cells]), c.bundle.class_names, disp.top_k,
                            [item.name for item in items], c.bundle.name) for c in columns]
d3.download_button("Predictions (CSV)", data=partial(predictions_csv, frames), file_name=f"{stem}_predictions.csv",
                   mime="text/csv", icon=":material/table:", width="stretch")
report_button(PAGE, partial(visualize_report, columns, target, disp, fit, checks), f"{stem}.html", where=d4,
              columns=columns)
