"""Visualize: pick images and models, pick a method, and see why each model predicts what it predicts."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import streamlit as st

from pages.router import through_router  # isort: skip
from pages.common import (
    attempt,
    common_methods,
    display_image,
    display_settings,
    explanation_shown,
    get_model,
    image_picker,
    method_section,
    model_choices,
    model_input,
    model_picker,
    model_summary,
    on_prediction_click,
    page_header,
    patterns_ready,
    predictions,
    run_safely,
)
from pages.quality_panel import trust_panel
from xai_core.data.images import to_display
from xai_core.viz.exports import maps_npz, predictions_csv, slug, stack_explanations
from xai_core.viz.prediction_charts import predictions_chart, predictions_frame
from xai_core.viz.render import VIEWS, compose_grid, map_tiles, normalize, png_bytes

PAGE = "visualize"
DEFAULT_IMAGES = ("digits/test/0078",)


def grid_png(rows: list, captions: list) -> bytes:
    return png_bytes(compose_grid(rows, captions))


through_router()
page_header(PAGE, "Visualize",
            "Pick images and one or more models, choose an explanation method and a target, and see which pixels "
            "drive the prediction. Display settings are in the sidebar; they never recompute a map.")

# ------------------------------------------------------------------------------------------- inputs
col_images, col_models = st.columns([3, 2], gap="large")
with col_images:
    st.subheader("Images")
    items = image_picker(PAGE, default=DEFAULT_IMAGES)
with col_models:
    st.subheader("Models")
    keys = model_picker(PAGE)
    labels = model_choices()
    bundles = {}
    for key in keys:
        bundle = run_safely(lambda k=key: get_model(k), f"Loading {labels.get(key, key)}")
        if bundle is not None:
            bundles[key] = bundle
    for bundle in bundles.values():
        st.caption(model_summary(bundle))

if not items or not bundles:
    st.info("Choose at least one image and one model that loads to see explanations.", icon=":material/info:")
    st.stop()
models = list(bundles.values())
allowed = common_methods(models)
if not allowed:
    st.error("No explanation method can run on every chosen model; remove one of them.")
    st.stop()

spec, params, target = method_section(PAGE, allowed, models)
disp = display_settings(PAGE, spec.signed)
fit = st.session_state[f"{PAGE}.fit"]
if spec.family == "Pattern" and not patterns_ready(  # patterns are learnt from data once per model: that step first
        PAGE, [(k, b, params["estimator"]) for k, b in bundles.items()],
        lambda b: np.concatenate([model_input(i, b, fit)[1] for i in items])):
    st.stop()

# ------------------------------------------------------------------------------------------- compute
results: dict[str, list] = {}  # model key -> per image: (input, probs, explanation | None, error | None)
for key, bundle in bundles.items():
    rows = []
    for item in items:
        image_key, x = model_input(item, bundle, fit)
        probs = predictions(key, image_key, x)[0]
        expl, error = attempt(lambda b=bundle, k=key, ik=image_key, x=x: explanation_shown(
            k, b, spec.id, ik, target, params, x), f"{spec.label} on {bundle.name}, '{item.name}'")
        rows.append((x, probs, expl, error))
    results[key] = rows

norms: dict[str, list] = {}  # model key -> per image: normalised maps (K, H, W) or None
for key, rows in results.items():
    ok = [i for i, r in enumerate(rows) if r[2] is not None]
    stacked = normalize(np.concatenate([rows[i][2].maps for i in ok]), spec.signed, disp.norm, disp.percentile,
                        shared=disp.shared) if ok else []
    norms[key] = [None] * len(rows)
    for j, i in enumerate(ok):
        norms[key][i] = stacked[j]
    for warning in dict.fromkeys(w for r in rows if r[2] is not None for w in r[2].warnings):
        st.warning(f"**{bundles[key].name}:** {warning}", icon=":material/warning:")

# ------------------------------------------------------------------------------------------- results
k_maps = max((len(n) for ns in norms.values() for n in ns if n is not None), default=1)
per_line = (2 if disp.view == VIEWS[0] else 1) * math.isqrt(k_maps)
target_text = {"predicted": "each image's predicted class", "class": "the chosen class",
               "neuron": f"neuron {target.index} of layer {target.layer}",
               "top_neurons": f"the {target.k} most activated neurons of layer {target.layer}"}[target.kind]
st.subheader(f"Why? {spec.label} for {target_text}")
st.caption("Click a bar of a prediction chart to explain that class.")
grid_rows, grid_captions = [], []
for i, item in enumerate(items):  # one row per image and model: model input | maps | predictions
    if len(bundles) > 1:
        st.markdown(f"**{item.name}**")
    image_rows, image_captions = [], []
    for m, (key, bundle) in enumerate(bundles.items()):
        x, probs, expl, error = results[key][i]
        side = max(1.0, per_line / 4)  # the input and the chart keep a readable size beside 16 neurons
        left, mid, right = st.columns([side, per_line, 1.7 * side], gap="small")
        row, captions = [display_image(x[0])], [f"{item.name} · {bundle.name}"]
        left.image(row[0], width="stretch", caption=f"{bundle.name if len(bundles) > 1 else item.name} "
                   f"(input {x.shape[1]}×{x.shape[2]})")
        if error:
            mid.error(error, icon=":material/error:")
        for k, norm_map in enumerate(norms[key][i] if expl is not None else []):
            label = expl.labels[0][k].removeprefix(f"{expl.layer} ")  # the layer is in the heading
            label = label if k_maps == 1 else label.replace("neuron ", "#")
            tiles = map_tiles(to_display(x[0]), norm_map, spec.signed, disp.cmap, disp.alpha, disp.view)
            for j, (kind, picture) in enumerate(tiles):
                row.append(picture)  # several neurons: one caption per neuron, under its first tile
                captions.append(f"{kind} · {label}" if k_maps == 1 else (label if j == 0 else " "))
        for start in range(1, len(row), per_line):
            for col, picture, caption in zip(mid.columns(per_line, gap="small"), row[start:start + per_line],
                                             captions[start:start + per_line]):
                col.image(picture, caption=caption, width="stretch")
        chart_key = f"{PAGE}.chart.{m}.{i}"
        df = predictions_frame(probs[None], bundle.class_names, disp.top_k, [item.name], bundle.name)
        right.altair_chart(predictions_chart(df, selected=target.index if target.kind == "class" else None),
                           key=chart_key, on_select=partial(on_prediction_click, PAGE, chart_key), width="stretch")
        image_rows.append(row)
        image_captions.append(captions)
    left.download_button("This image (PNG)", data=partial(grid_png, image_rows, image_captions), mime="image/png",
                         file_name=f"xai-lens_{slug(item.name)}_{slug(spec.id)}.png", icon=":material/download:",
                         type="tertiary", key=f"{PAGE}.png.{i}")
    grid_rows += image_rows
    grid_captions += image_captions

trust_panel(PAGE, bundles, items, results, spec, target, params)  # "Can I trust this map?" (on demand)

# ------------------------------------------------------------------------------------------- downloads
st.divider()
stem = f"xai-lens_{slug(spec.id)}_{target.kind}"
d1, d2, d3 = st.columns(3)
d1.download_button("Grid (PNG)", data=partial(grid_png, grid_rows, grid_captions), file_name=f"{stem}.png",
                   mime="image/png", icon=":material/grid_view:", width="stretch")
npz_input = {bundles[key].name: ([items[i].name for i, r in enumerate(rows) if r[2] is not None],
                                 stack_explanations([r[2] for r in rows if r[2] is not None]))
             for key, rows in results.items() if any(r[2] is not None for r in rows)}
d2.download_button("Raw maps (.npz)", data=partial(maps_npz, npz_input, {
    "method": spec.id, "params": params, "target": str(target), "fit": fit}), file_name=f"{stem}.npz",
    mime="application/octet-stream", icon=":material/data_array:", width="stretch", disabled=not npz_input)
frames = [predictions_frame(np.stack([r[1] for r in rows]), bundles[key].class_names, disp.top_k,
                            [item.name for item in items], bundles[key].name) for key, rows in results.items()]
d3.download_button("Predictions (CSV)", data=partial(predictions_csv, frames), file_name=f"{stem}_predictions.csv",
                   mime="text/csv", icon=":material/table:", width="stretch")
