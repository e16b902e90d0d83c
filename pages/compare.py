"""Compare Models: models side by side (one method) or methods side by side (one model), and how far they agree."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from ui.router import through_router  # isort: skip
from ui.cache import dataset_predictions, display_input, gallery, model_input
from ui.explanations import explain_grid
from ui.feedback import run_safely
from ui.page import page_header
from ui.report import report_button
from ui.state import init_state, keep_valid
from ui.widgets.datasets import dataset_picker
from ui.widgets.display import display_settings
from ui.widgets.fitting import fitting_ready
from ui.widgets.images import MAX_IMAGES, image_picker, pick_cards, picked_images
from ui.widgets.method import method_section
from ui.widgets.models import loaded_models, model_picker, model_select
from ui.widgets.typed import radio, segmented
from xai_core.analysis import agreement as ag
from xai_core.data.inputs import unique
from xai_core.methods import Target, common_methods
from xai_core.report.compare import compare_report
from xai_core.viz.agreement_charts import accuracy_chart, agreement_chart, selected_pair
from xai_core.viz.exports import predictions_csv, slug
from xai_core.viz.prediction_charts import predictions_frame
from xai_core.viz.render import DIVERGING_CMAPS, compose_grid, map_tiles, png_bytes, upscale

PAGE = "compare"
MODES = {"models": "Models side by side", "methods": "Method grid"}
FAST_METHODS = ("gradient", "lrp.epsilon", "guided_backprop", "gradcam")
DEFAULT_IMAGES = tuple(k for k in gallery() if k.startswith("digits/"))[::2][:3]  # three digits, three classes


def on_cell_click(names: list[str]) -> None:
    pair = selected_pair(st.session_state.get(f"{PAGE}.agree"))
    if pair:
        st.session_state[f"{PAGE}.pair"] = pair if pair in ag.pairs(names) else pair[::-1]


through_router()
page_header(PAGE, "Compare Models",
            "Several models explained by one method, or one model by several methods, on the same images — and "
            "how far their maps agree. Click a cell of the agreement matrix to see where a pair differs.")
init_state(f"{PAGE}.mode", "models")
mode = segmented("Compare", list(MODES), labels=MODES, key=f"{PAGE}.mode")

col_images, col_setup = st.columns([3, 2], gap="large")
with col_images:
    st.subheader("Images")
    picked = image_picker(PAGE, default=DEFAULT_IMAGES)
    items, fit = unique([*picked.items, *picked_images(PAGE)])[:MAX_IMAGES], picked.fit
with col_setup:
    if mode == "models":
        st.subheader("Models")
        init_state(f"{PAGE}.models", ["demo:digits_cnn", "demo:digits_resnet"])
        bundles = loaded_models(model_picker(PAGE, max_models=6))
        allowed = common_methods(list(bundles.values()))
        if len(bundles) < 2 or not allowed:
            st.info("Choose two to six models that load and share at least one method.", icon=":material/info:")
            st.stop()
        names = ag.short_names([b.name for b in bundles.values()])
    else:
        st.subheader("Model and methods")
        key = model_select(PAGE, "grid_model", "demo:digits_cnn")
        bundles = loaded_models([key])
        allowed = common_methods(list(bundles.values()))
        init_state(f"{PAGE}.methods", [m for m in FAST_METHODS if m in allowed])
        st.session_state[f"{PAGE}.methods"] = [m for m in st.session_state[f"{PAGE}.methods"] if m in allowed]
        ids = st.multiselect("Methods", list(allowed), format_func=lambda m: allowed[m].label, key=f"{PAGE}.methods",
                             max_selections=8, help="Each at its default parameters, explaining the predicted class.")
        if not bundles or len(ids) < 2:
            st.info("Choose a model that loads and at least two methods.", icon=":material/info:")
            st.stop()
        columns = [(key, allowed[m], allowed[m].initial_params()) for m in ids]
        target, names = Target.predicted(), [allowed[m].label for m in ids]
if not items:
    st.info("Choose at least one image.", icon=":material/info:")
    st.stop()
if mode == "models":
    choice = method_section(PAGE, allowed, list(bundles.values()))
    spec, params, target = choice.spec, choice.params, choice.target
    columns = [(key, spec, params) for key in bundles]

signed = {n: spec.signed for n, (_, spec, _) in zip(names, columns)}
init_state(f"{PAGE}.view", "overlay")
init_state(f"{PAGE}.norm", "percentile")  # sparse LRP maps stay visible beside others
disp = display_settings(PAGE, any(signed.values()))
if not fitting_ready(PAGE, [(key, bundles[key], spec, params) for key, spec, params in columns],
                     lambda b: np.concatenate([model_input(i, b, fit)[1] for i in items])):
    st.stop()  # a method that learns from data (PatternNet's patterns) does so once per model, first
grid = explain_grid(columns, items, target, fit)
size = ag.display_size([bundles[key].input_size for key, _, _ in columns])
pictures = [display_input(item, size, fit) for item in items]
maps = {n: [None if m is None else ag.resize_maps(m, size) for m in column.first_maps()]
        for n, column in zip(names, grid)}
norms = {n: ag.normalize_set(ms, signed[n], disp.norm, disp.percentile, disp.shared) for n, ms in maps.items()}
for n, column in zip(names, grid):
    for message in column.messages():
        st.warning(f"**{n}:** {message}", icon=":material/warning:")

# ------------------------------------------------------------------------------------------- the grid
st.subheader(f"{spec.label} on {len(names)} models" if mode == "models"
             else f"{bundles[columns[0][0]].name}: {len(names)} methods")
widths = [1] * (len(names) + 1)
for col, text in zip(st.columns(widths), ["**Image**", *(f"**{n}**" for n in names)]):
    col.markdown(text)
grid_rows, grid_captions = [], []
for i, item in enumerate(items):
    row_cols = st.columns(widths)
    first = grid[0].cells[i].probs
    note = "" if mode == "models" else f" · predicted {bundles[columns[0][0]].class_names[int(np.argmax(first))]} " \
                                        f"({first.max():.0%})"
    row, captions = [upscale(pictures[i], 224)], [f"{item.name}{note}"]
    row_cols[0].image(row[0], caption=captions[0], width="stretch")
    for col, n, column in zip(row_cols[1:], names, grid):
        cell, key = column.cells[i], column.model_key
        top = int(np.argmax(cell.probs))
        text = f"{bundles[key].class_names[top]} · {cell.probs[top]:.0%}" if mode == "models" else n
        shown = norms[n][i]
        if cell.expl is None or shown is None:
            col.error("no map", icon=":material/error:")
            continue
        for kind, tile in map_tiles(pictures[i], shown, any(signed.values()), disp.cmap, disp.alpha, disp.view):
            col.image(tile, caption=f"{text} ({kind})" if disp.view == "heatmap + overlay" else text, width="stretch")
            row.append(tile)
            captions.append(f"{n}: {text}" if mode == "models" else f"{text} ({kind})")
    grid_rows.append(row)
    grid_captions.append(captions)

# ------------------------------------------------------------------------------------------- agreement
st.subheader("Agreement")
c_k, c_by = st.columns(2)
init_state(f"{PAGE}.k", 10)
k = c_k.slider("Top-k: % of pixels that count as most relevant", 1, 50, key=f"{PAGE}.k")
init_state(f"{PAGE}.by", "abs")
by: ag.RankBy = radio("Rank pixels by", list(ag.RANK_BY), labels=ag.RANK_BY, key=f"{PAGE}.by", horizontal=True,
                      where=c_by)
frame = ag.agreement_frame(maps, [item.name for item in items], k, by)
matrix = ag.matrix_frame(frame, names)
st.altair_chart(agreement_chart(matrix, cell=64 if len(names) <= 4 else 48), key=f"{PAGE}.agree",
                on_select=partial(on_cell_click, names), width="content")
left, right = st.columns([3, 2], gap="large")
left.dataframe(ag.mean_table(frame), hide_index=True,
                column_config={v: st.column_config.NumberColumn(format="%.2f") for v in ag.METRICS.values()})
right.caption(f"Mean over {len(items)} image(s). Spearman ρ: rank correlation (1 = same order, −1 = reversed). "
              f"{ag.SPEARMAN_MEANING} Top-{k}% IoU: overlap of the {k}% most relevant pixels (1 = the same pixels, "
              f"0 = disjoint). {ag.NAN_MEANING}")

keep_valid(f"{PAGE}.pair", ag.pairs(names), ag.pairs(names)[0])
a, b = right.selectbox("Difference of the pair", ag.pairs(names), key=f"{PAGE}.pair", format_func=" − ".join)
st.markdown(f"**{a} − {b}**: red where *{a}* puts more relevance, blue where *{b}* does (each map normalised on "
            "its own as set in the sidebar; each difference is drawn scaled to its largest value, given below it).")
cmap = disp.cmap if disp.cmap in DIVERGING_CMAPS else DIVERGING_CMAPS[0]
diff_cols = st.columns(max(4, min(len(items), 6)))
for i, item in enumerate(items):
    map_a, map_b = maps[a][i], maps[b][i]
    if map_a is None or map_b is None:
        continue
    diff = ag.difference_map(map_a, map_b, signed[a], signed[b], disp.norm, disp.percentile)
    peak = float(np.abs(diff).max())  # drawn on its own scale (small differences stay visible); peak in the caption
    kind, tile = map_tiles(pictures[i], diff / (peak or 1.0), True, cmap, disp.alpha, disp.view)[-1]
    diff_cols[i % len(diff_cols)].image(tile, caption=f"{item.name} ({kind}, largest |difference| {peak:.2f})",
                                        width="stretch")

# ------------------------------------------------------------------------------------------- downloads
st.divider()
stem = f"xai-lens_compare_{mode}_{slug('-'.join(names))}"
d1, d2, d3, d4 = st.columns(4)
d1.download_button("Grid (PNG)", data=lambda: png_bytes(compose_grid(grid_rows, grid_captions)),
                   file_name=f"{stem}.png", mime="image/png", icon=":material/grid_view:", width="stretch")
numbers = frame.assign(top_k_percent=k, rank_by=by, method=", ".join(s.label for _, s, _ in columns), fit=fit)
d2.download_button("Agreement (CSV)", data=numbers.to_csv(index=False).encode("utf-8"), file_name=f"{stem}.csv",
                   mime="text/csv", icon=":material/table:", width="stretch")
frames = [predictions_frame(np.stack([c.probs for c in column.cells]), column.bundle.class_names, disp.top_k,
                            [item.name for item in items], n) for n, column in zip(names, grid)]
d3.download_button("Predictions (CSV)", data=partial(predictions_csv, frames), file_name=f"{stem}_predictions.csv",
                   mime="text/csv", icon=":material/table:", width="stretch")
report_button(PAGE, partial(compare_report, grid, names, maps, pictures, frame, disp, mode=mode, target=target, fit=fit,
                            k=k, by=by), f"{stem}.html", where=d4, columns=grid)

# ------------------------------------------------------------------------------------------- over a data set
if mode != "models":
    st.stop()
st.subheader("Over a data set")
st.caption("Accuracy of each model on a labelled set, and the images on which the models disagree; "
           "*Add to the grid* puts one into the grid above.")
first_demo = next((k.split(":", 1)[1] for k in bundles if k.startswith("demo:")), "digits_cnn")
dataset = dataset_picker(PAGE, default="shapes" if first_demo.startswith("shapes") else "digits")
if dataset is None or not dataset.labeled:
    st.info("Choose a labelled data set (class subfolders) to compare accuracy.", icon=":material/info:")
    st.stop()
class_lists = {n: b.class_names for n, b in zip(names, bundles.values())}
group, labels = ag.evaluation_group(dataset, class_lists)
if others := [n for n in names if n not in group]:
    st.caption(f"Not evaluated (their classes differ from the data set's or the first model's): {', '.join(others)}.")
predicted = {n: p for n, k in zip(names, bundles) if n in group and (
    p := run_safely(partial(dataset_predictions, k, dataset, fit), f"{n} on the data set")) is not None}
if not predicted:
    st.stop()
st.altair_chart(accuracy_chart(ag.accuracy_frame(predicted, labels)), width="stretch")
disagree = ag.disagreement_frame(predicted, labels, dataset.ids, class_lists[group[0]])
st.markdown(f"**{len(disagree)} image(s) where the models disagree**" + (" (first 12)" if len(disagree) > 12 else ""))
shown = disagree.head(12)
pick_cards(PAGE, dataset, shown["index"], [f"true **{r['true']}** · " + " · ".join(f"{n}: {r[n]}" for n in predicted)
                                           for _, r in shown.iterrows()])
if len(disagree):
    st.dataframe(pd.DataFrame(disagree), hide_index=True, height=min(400, 38 + 35 * len(disagree)))
