"""Suggest: statistics over a data set that point at the images worth explaining."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from ui.router import through_router  # isort: skip
from ui.cache import dataset_stats
from ui.explanations import prepare_visualize
from ui.feedback import run_safely
from ui.page import page_header
from ui.state import init_state, keep_valid
from ui.strategies import strategies_view
from ui.widgets.datasets import dataset_picker, image_cards
from ui.widgets.models import loaded_models, model_choices, model_picker
from ui.widgets.typed import segmented, select
from xai_core.analysis.suggest import (
    NEURON_STATS,
    align_passes,
    consensus_frame,
    histogram_frame,
    image_frame,
    images_in_bins,
    neuron_values,
    rankings,
)
from xai_core.data.dataset import model_labels
from xai_core.viz.render import png_data_url
from xai_core.viz.suggest_charts import histogram_chart, scatter_chart, selected_bins, selected_points

PAGE = "suggest"
DEFAULT_MODELS = ("demo:digits_cnn", "demo:digits_resnet")
READ_CONSENSUS = ("**How to read it:** each point is one image of the data set. Further right, the models are more "
                  "confident; lower down, fewer of them agree; red points are images they disagree on. The lists "
                  "beside it rank the images most worth explaining: the most disagreed, the confidently wrong and "
                  "the least confident. Click a point or a row to see the image, then **Explain** it.")
TOOLTIP_THUMBS = 2000  # images get a hover thumbnail up to this many points

through_router()
page_header(PAGE, "Suggest",
            "Statistics over a whole data set that point at the images worth explaining: unusual activations for "
            "one model, disagreement and confident mistakes across several. Click a bar or a point to see its "
            "images; **Explain** opens one in Visualize with the same model, layer and neuron.")

col_data, col_models = st.columns([3, 2], gap="large")
with col_data:
    dataset = dataset_picker(PAGE)
with col_models:
    init_state(f"{PAGE}.models", list(DEFAULT_MODELS))  # two models: the view that points at images opens first
    bundles = loaded_models(model_picker(PAGE))
if dataset is None or not bundles:
    st.info("Choose a data set and at least one model.", icon=":material/info:")
    st.stop()

notice = st.empty()  # what is being prepared for Visualize (filled at the end of the view)
views = {"consensus": "Images worth a look (several models)", "strategies": "Strategies of one class (SpRAy)",
         "activations": "Activations of one model"}
init_state(f"{PAGE}.view", "consensus" if len(bundles) > 1 else "activations")
view = segmented("View", list(views), labels=views, key=f"{PAGE}.view")
if view == "consensus":
    st.caption(READ_CONSENSUS)

# ------------------------------------------------------------------------------------- strategies of a class
if view == "strategies":
    strategies_view(PAGE, dataset, bundles)
    prepare_visualize(notice, [st.session_state[f"{PAGE}.sp_model"]])  # what Explain will open
    st.stop()

# ------------------------------------------------------------------------------------- one model
if view == "activations":
    names = model_choices()
    keep_valid(f"{PAGE}.model", list(bundles), next(iter(bundles)))
    c1, c2, c3 = st.columns([3, 3, 2])
    key = c1.selectbox("Model", list(bundles), key=f"{PAGE}.model", format_func=lambda k: names.get(k, k))
    bundle = bundles[key]
    layers = [layer for layer in bundle.layers if not layer.is_input]
    keep_valid(f"{PAGE}.layer", [layer.name for layer in layers], layers[-1].name)
    layer = select("Layer", [layer.name for layer in layers], key=f"{PAGE}.layer", where=c2,
                   labels=lambda n: bundle.layer(n).label(), help="Default: the last layer (logits).")
    init_state(f"{PAGE}.mode", "layer")
    mode = segmented("Plot", ["layer", "neuron"], key=f"{PAGE}.mode", where=c3,
                     labels={"layer": "Layer mean", "neuron": "One neuron"})
    result = run_safely(partial(dataset_stats, key, dataset, (layer,)), f"Running {bundle.name} over the data set")
    if result is None:
        st.stop()
    stats = result.layers[layer]
    labels, _ = model_labels(dataset, bundle.class_names)
    info = image_frame(result, dataset.ids, labels, bundle.class_names)
    if mode == "layer":
        values, neurons, what = stats.mean, None, f"mean activation of {layer}"
    else:
        n1, n2, n3 = st.columns(3)
        spatial = stats.spatial
        unit_word = "Channel" if spatial else "Unit"
        ch_key = f"{PAGE}.channel"
        if not isinstance(st.session_state.get(ch_key), int) or st.session_state[ch_key] >= stats.channels:
            st.session_state[ch_key] = 0
        channel = n1.number_input(f"{unit_word} (0–{stats.channels - 1})", 0, stats.channels - 1, key=ch_key)
        init_state(f"{PAGE}.how", "max")
        how = select("Statistic", list(NEURON_STATS), key=f"{PAGE}.how", labels=NEURON_STATS, where=n2,
                     disabled=not spatial, help="Spatial layers: a channel has one neuron per position.")
        position = (0, 0)
        if spatial and how == "unit":
            h, w = stats.shape[0], stats.shape[1]
            position = (n3.number_input(f"Row (0–{h - 1})", 0, h - 1, key=f"{PAGE}.row"),
                        n3.number_input(f"Column (0–{w - 1})", 0, w - 1, key=f"{PAGE}.col"))
        got = run_safely(lambda: neuron_values(stats, channel, how if spatial else "max", position), "Neuron")
        if got is None:
            st.stop()
        values, neurons = got
        what = f"{unit_word.lower()} {channel} of {layer}" + (f" ({NEURON_STATS[how]})" if spatial else "")
    init_state(f"{PAGE}.bins", 30)
    bins = st.slider("Bins", 5, 100, key=f"{PAGE}.bins")
    bins_df, images_df = histogram_frame(values, result.index, bins)
    event = st.altair_chart(histogram_chart(bins_df, what, selected_bins(st.session_state.get(f"{PAGE}.hist"))),
                            key=f"{PAGE}.hist", on_select="rerun", width="stretch")
    st.caption(f"{len(result):,} images" + (f" · {len(result.failed)} unreadable, skipped" if result.failed else "")
               + " · click a bar to list its images (shift-click adds bars, double-click clears).")
    picked = selected_bins(event)
    if picked:
        rows = images_in_bins(images_df, picked)
        st.subheader(f"{len(rows):,} image(s) in the selected bar{'s' * (len(picked) > 1)}")
        sub = info.set_index("index").loc[rows["index"]]
        caps = [f"{r.id}  \n{'label ' + r.label + ' · ' if r.label else ''}predicted {r.prediction} "
                f"({r.confidence:.0%})  \nvalue {v:.4g}" for r, v in zip(sub.itertuples(), rows["value"])]
        positions = result.index
        image_cards(PAGE, "hist", dataset, rows["index"], caps, send=lambda i: {
            "models": [key], "layer": layer,
            "neuron": None if neurons is None else int(neurons[np.searchsorted(positions, i)])})
    prepare_visualize(notice, [key], layer)  # what Explain will open, built while the user looks
    st.stop()

# ------------------------------------------------------------------------------------- several models
if len(bundles) < 2:
    st.info("Choose at least two models to compare their predictions over the data set.", icon=":material/info:")
    st.stop()
models = list(bundles.values())
if any(b.class_names != models[0].class_names for b in models):
    st.error("These models score different classes, so their predictions cannot be compared. Choose models "
             "trained on the same classes (e.g. the two digits models, or ImageNet networks).")
    st.stop()
passes = [run_safely(partial(dataset_stats, k, dataset), f"Running {b.name}") for k, b in bundles.items()]
if any(p is None for p in passes):
    st.stop()
common, probs = align_passes([p for p in passes if p is not None])
classes = models[0].class_names
labels, unmatched = model_labels(dataset, classes)
if not (labels >= 0).any():
    choice = st.selectbox("Ground truth", [None, *range(len(classes))], key=f"{PAGE}.one_class",
                          format_func=lambda c: "unknown" if c is None else f"every image is {classes[c]}",
                          help="The data set has no labels the models know; state one class if all images share it.")
    labels = np.full(len(dataset), -1 if choice is None else choice, dtype=np.int64)
elif unmatched:
    st.warning(f"{len(unmatched)} class folder(s) match no model class and count as unlabelled: "
               f"{', '.join(unmatched[:8])}{' …' if len(unmatched) > 8 else ''}.")
df = consensus_frame(probs, common, classes, labels[common] if (labels >= 0).any() else None)
df["id"] = [dataset.ids[i] for i in common]
if len(df) <= TOOLTIP_THUMBS:
    df["image"] = [png_data_url(t) for t in dataset.thumbnails(common, 48)]

chart_col, list_col = st.columns([3, 2], gap="large")
with chart_col:
    event = st.altair_chart(scatter_chart(df), key=f"{PAGE}.scatter", on_select="rerun", width="stretch")
    st.caption(f"{len(df):,} images · {int((df['consistency'] < 1).sum()):,} with disagreement · hover for a "
               "thumbnail, click a point for details.")
with list_col:
    lists = rankings(df)
    tab_list = st.tabs([f"{name} ({len(rows)})" for name, rows in lists.items()])
    row_picks = []
    for n, (tab, rows) in enumerate(zip(tab_list, lists.values())):
        cols = ["image", "id", "predictions", "confidence", "true_class"]
        picked_rows = tab.dataframe(
            rows[[c for c in cols if c in rows]], hide_index=True, width="stretch", key=f"{PAGE}.rank.{n}",
            on_select="rerun", selection_mode="single-row", column_config={
                "image": st.column_config.ImageColumn("", width="small"), "true_class": "label",
                "predictions": "models say",
                "confidence": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
        row_picks += [int(rows["index"].iloc[r]) for r in picked_rows["selection"]["rows"]]
    st.caption("Select a row to see the image in detail.")


def describe(indices: np.ndarray) -> list[str]:
    sub = df.set_index("index").loc[indices]
    return [f"{r.id}  \n{('label ' + r.true_class + ' · ') if getattr(r, 'true_class', '') else ''}"
            f"models: {r.predictions}  \nconfidence {r.confidence:.0%}, agreement {r.consistency:.0%}"
            for r in sub.itertuples()]


clicked = selected_points(event) + row_picks
if clicked:
    st.subheader("Selected image")
    i = clicked[-1]
    row = int(np.flatnonzero(common == i)[0])
    left, right = st.columns([1, 3])
    with left:
        image_cards(PAGE, "pick", dataset, [i], describe(np.array([i])), per_row=1,
                    send=lambda _: {"models": list(bundles)[:4]})
    top = pd.DataFrame({b.name: p[row] for b, p in zip(models, probs)}, index=classes)
    top = top.loc[top.max(axis=1).sort_values(ascending=False).index[:5]]
    right.dataframe(top.style.format("{:.1%}"), width="stretch")

if "distance" in df and df["distance"].notna().any():
    st.subheader("How far are the models from the truth?")
    bins_df, images_df = histogram_frame(df["distance"].to_numpy(), common, 30)
    ev = st.altair_chart(histogram_chart(bins_df, "distance of the mean score vector from the true class (0 = "
                                         "all models certain and right)"), key=f"{PAGE}.dist", on_select="rerun",
                         width="stretch")
    picked = selected_bins(ev)
    if picked:
        rows = images_in_bins(images_df, picked)
        image_cards(PAGE, "dist", dataset, rows["index"], describe(rows["index"].to_numpy()),
                    send=lambda _: {"models": list(bundles)[:4]})

prepare_visualize(notice, list(bundles)[:4])  # what Explain will open, built while the user looks
