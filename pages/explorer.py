"""Dataset Explorer: one model over a labelled image set — accuracy, confusion, t-SNE, channel activations,
maximally activating images and deep dream, each view linked to the images behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ui.router import through_router  # isort: skip
from ui.cache import dataset_stats, tsne_embedding
from ui.explanations import prepare_visualize
from ui.feedback import progress, run_safely
from ui.page import page_header
from ui.state import init_state, keep_valid
from ui.widgets.datasets import dataset_picker, explain_button, image_cards
from ui.widgets.models import loaded_models, model_select
from ui.widgets.typed import segmented, select
from xai_core.analysis.explore import activations as act
from xai_core.analysis.explore import embedding, metrics
from xai_core.analysis.explore.dream import Kind, dream
from xai_core.data.dataset import Dataset
from xai_core.data.images import to_display
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import default_demo_model_id
from xai_core.viz import explore_charts as charts
from xai_core.viz.render import png_bytes, png_data_url, upscale

PAGE = "explorer"
TABS = ["Accuracy", "Confusion", "t-SNE", "Activations", "Max activating", "Deep dream"]
TOOLTIP_THUMBS = 1000  # t-SNE points get a hover thumbnail up to this many
PASS_TABS = ("Accuracy", "Confusion", "t-SNE", "Max activating")  # the tabs fed by the batched pass

through_router()
page_header(PAGE, "Dataset Explorer",
            "How one model does over a whole image set: accuracy, confusions, a t-SNE map of a layer, what its "
            "channels respond to, and images synthesised to excite them. Click a cell or a point to see the images "
            "behind it; **Explain** opens one in Visualize.")


@dataclass(frozen=True)
class Scope:
    """What every tab works on: the model, the data set, the chosen layer, and (for the pass-fed tabs) the pass."""

    key: str
    bundle: ModelBundle
    dataset: Dataset
    layer: str
    layer_names: list[str]
    view: metrics.PassView | None

    @property
    def send(self) -> dict[str, Any]:
        return {"models": [self.key]}

    @property
    def pass_view(self) -> metrics.PassView:
        assert self.view is not None, "a pass-fed tab runs only with the pass"
        return self.view

    def fitted(self, indices: Sequence[int] | np.ndarray) -> dict[int, np.ndarray]:
        """Model-sized uint8 images of data set ``indices`` (unreadable ones are missing)."""
        return self.dataset.model_images(indices, self.bundle.input_size, self.bundle.channels)


def choose() -> Scope:
    """The data set, model and layer pickers; stops the page until both load. Runs the pass for the open tab."""
    col_data, col_model = st.columns([3, 2], gap="large")
    with col_data:
        dataset = dataset_picker(PAGE)
    with col_model:
        key = model_select(PAGE, "model", f"demo:{default_demo_model_id()}")
        bundle = loaded_models([key]).get(key)
        if bundle is not None:
            names = [info.name for info in bundle.layers if not info.is_input]
            convs = [n for n in act.spatial_layers(bundle) if "Conv" in bundle.layer(n).kind] or names
            keep_valid(f"{PAGE}.layer", names, convs[-1])
            layer = str(st.selectbox("Layer", names, key=f"{PAGE}.layer", format_func=lambda n: bundle.layer(n).label(),
                                     help="Feeds the t-SNE map, the channel activations and the maximally "
                                          "activating images."))
    if dataset is None or bundle is None:
        st.info("Choose a data set and a model that loads.", icon=":material/info:")
        st.stop()
    view = None
    if open_tab() in PASS_TABS:
        result = run_safely(lambda: dataset_stats(key, dataset, (layer,)), f"Running {bundle.name} over {dataset.name}")
        if result is None:
            st.stop()
        view = metrics.pass_view(result, dataset, bundle.class_names, layer)
        if view.unmatched:
            st.warning(f"{len(view.unmatched)} class folder(s) match no class of {bundle.name} and count as "
                       f"unlabelled: {', '.join(view.unmatched[:8])}{' …' if len(view.unmatched) > 8 else ''}.",
                       icon=":material/warning:")
        if result.failed:
            st.warning(f"{len(result.failed)} image(s) could not be read and are left out.", icon=":material/warning:")
    return Scope(key, bundle, dataset, layer, names, view)


def open_tab() -> str:
    init_state(f"{PAGE}.tab", TABS[0])
    return st.session_state[f"{PAGE}.tab"] if st.session_state.get(f"{PAGE}.tab") in TABS else TABS[0]


def scores_columns(scores: pd.DataFrame) -> dict[str, Any]:
    """Column formats of the per-image table: percentages with one decimal, narrow class columns, so that ten
    classes fit at 1440 px (the raw floats showed 10+ decimals and pushed the last columns out of view)."""
    config: dict[str, Any] = {
        "id": st.column_config.TextColumn("image", width=190),
        "true": st.column_config.TextColumn("true", width=70),
        "predicted": st.column_config.TextColumn("predicted", width=80),
        "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0, max_value=1,
                                                      width=100),
        "true_probability": st.column_config.NumberColumn("p(true)", format="percent", width=80),
        "correct": st.column_config.CheckboxColumn("correct", width=64),
    }
    for column in scores.columns:  # per-class probabilities, shown as whole percentages (the table scales them)
        if column.startswith("p(") and column not in config:
            config[column] = st.column_config.NumberColumn(column, format="%.0f%%", width=54)
    return config


def scores_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The per-image table as shown: class probabilities in percent (0–100), so ``%.0f%%`` reads "97%"."""
    classes = [c for c in scores.columns if c.startswith("p(")]
    return scores.assign(**{c: scores[c] * 100.0 for c in classes})


# ------------------------------------------------------------------------------------------- accuracy
def accuracy(s: Scope) -> None:
    view, dataset, send = s.pass_view, s.dataset, s.send
    pred, scores, describe = view.pred, view.scores, view.describe
    if view.labelled:
        table = metrics.per_class_table(pred)
        m1, m2, m3 = st.columns(3)
        m1.metric("Accuracy", f"{metrics.overall_accuracy(pred):.1%}")
        m2.metric("Labelled images", f"{int(pred.labeled.sum()):,} of {len(pred.index):,}")
        m3.metric("Misclassified", f"{int((pred.labeled & ~scores['correct'].to_numpy()).sum()):,}")
        left, right = st.columns([3, 2], gap="large")
        pct = st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1, width="small")
        left.dataframe(table.drop(columns="class_index"), hide_index=True, width="stretch",
                       column_config={"precision": pct, "recall": pct, "f1": pct})
        right.altair_chart(charts.metrics_chart(table), width="stretch")
        if len(table) > 20:
            right.caption("The 20 classes with the lowest F1.")
    else:
        st.info("No image has a label that matches one of the model's classes, so only predictions are shown. "
                "Name the class folders like the model's classes to get accuracy.", icon=":material/info:")
    st.markdown("**Each image's scores** — select a row to see the image.")
    picked = st.dataframe(scores_table(scores), hide_index=True, width="stretch", key=f"{PAGE}.scores",
                          on_select="rerun", selection_mode="single-row",
                          column_order=[c for c in scores.columns if c != "index"],
                          column_config=scores_columns(scores))
    if rows := picked["selection"]["rows"]:
        i = int(scores["index"].iloc[rows[0]])
        image_cards(PAGE, "score", dataset, [i], describe([i]), send=lambda _: send)


# ------------------------------------------------------------------------------------------- confusion
def confusion(s: Scope) -> None:
    view, dataset, send = s.pass_view, s.dataset, s.send
    pred, describe = view.pred, view.describe
    if not view.labelled:
        st.info("A confusion matrix needs labelled images.", icon=":material/info:")
    else:
        cm = metrics.confusion_frame(pred, present_only=pred.num_classes > 20)
        event = st.altair_chart(charts.confusion_chart(cm), key=f"{PAGE}.confusion", on_select="rerun", width="content")
        st.caption("Rows: true class · columns: predicted class · colour: share of the row · click a cell to see "
                   "its images, most confident first.")
        cell, ids = metrics.selected_cell_indices(pred, event)
        if cell is not None:
            st.subheader(f"True {pred.class_names[cell[0]]}, predicted {pred.class_names[cell[1]]}: "
                         f"{len(ids):,} image{'s' * (len(ids) != 1)}")
            image_cards(PAGE, "cell", dataset, ids, describe(ids), send=lambda _: send)


# ------------------------------------------------------------------------------------------- t-SNE
def tsne_map(s: Scope) -> None:
    view, dataset, send = s.pass_view, s.dataset, s.send
    pred, describe = view.pred, view.describe
    stats, key, layer = view.stats, s.key, s.layer
    features, what = embedding.layer_features(stats)
    top = int(min(50, np.floor(embedding.max_perplexity(min(len(features), embedding.MAX_POINTS)))))
    if top < 2:
        st.info("t-SNE needs at least 10 images.", icon=":material/info:")
    else:
        if st.session_state.get(f"{PAGE}.perplexity", 0) > top:
            st.session_state[f"{PAGE}.perplexity"] = top
        init_state(f"{PAGE}.perplexity", min(30, top))
        perplexity = st.slider("Perplexity", 2, top, key=f"{PAGE}.perplexity",
                               help="Roughly the number of neighbours each point keeps close; 5–50 is typical.")
        emb = run_safely(lambda: tsne_embedding(key, dataset.key, layer, "center-crop", float(perplexity), features,
                                                pred), "t-SNE")
        if emb is not None:
            frame = emb.frame
            if len(frame) <= TOOLTIP_THUMBS:
                frame = frame.assign(image=[png_data_url(t) for t in dataset.thumbnails(frame["index"], 48)])
            event = st.altair_chart(charts.tsne_chart(frame), key=f"{PAGE}.tsne", on_select="rerun")
            sample = f" (a random sample of {emb.total:,})" if emb.subsampled else ""
            st.caption(f"{len(emb.frame):,} images{sample} · {what}, PCA to {emb.dims} dimensions · "
                       f"{emb.seconds:.1f} s · crosses are misclassified · click a point or drag a rectangle to "
                       "see the images (double-click clears).")
            ids = charts.tsne_selection(event, emb.frame)
            if len(ids):
                st.subheader(f"{len(ids):,} selected image{'s' * (len(ids) != 1)}")
                image_cards(PAGE, "tsne", dataset, ids, describe(ids), send=lambda _: send)


# ------------------------------------------------------------------------------------------- activations
def activations(s: Scope) -> None:
    bundle, dataset, layer, key, fitted = s.bundle, s.dataset, s.layer, s.key, s.fitted
    if len(bundle.layer(layer).output_shape) != 3:
        st.info(f"Layer {layer} has no channel maps: choose a convolutional layer above.", icon=":material/info:")
    else:
        left, right = st.columns([1, 3], gap="large")
        keep_valid(f"{PAGE}.image", range(len(dataset)), 0)
        i = left.number_input(f"Image (0–{len(dataset) - 1})", 0, len(dataset) - 1, key=f"{PAGE}.image")
        init_state(f"{PAGE}.by", "mean")
        by: act.Strength = segmented("Strongest by", ["mean", "max"], key=f"{PAGE}.by", where=left)
        image = fitted([i]).get(int(i))
        if image is None:
            left.error(f"Image {i} could not be read.")
        else:
            left.image(upscale(to_display(image), 192), caption=dataset.ids[i])
            explain_button(PAGE, "act", dataset, int(i), left, models=[key], layer=layer)
            maps = act.channel_maps(bundle, bundle.preprocess(image[None]), layer)
            grid, shown = act.activation_grid(maps, by)
            right.image(grid, caption=f"{len(shown)} of {len(maps)} channels of {layer} (#channel: {by} activation), "
                        "strongest first, one shared colour scale")
            st.markdown("**Strongest channels over the image**")
            for col, (c, value, picture) in zip(st.columns(4), act.strongest_overlays(to_display(image), maps, by)):
                col.image(upscale(picture, 192), caption=f"channel {c} · {by} {value:.3g}", width="stretch")


# ------------------------------------------------------------------------------------------- max activating
def max_activating(s: Scope) -> None:
    bundle, dataset, layer, key, fitted = s.bundle, s.dataset, s.layer, s.key, s.fitted
    stats, result = s.pass_view.stats, s.pass_view.result
    c1, c2 = st.columns(2)
    keep_valid(f"{PAGE}.channel", range(stats.channels), 0)
    channel = c1.number_input(f"Channel (0–{stats.channels - 1}) of {layer}", 0, stats.channels - 1,
                              key=f"{PAGE}.channel")
    init_state(f"{PAGE}.k", 8)
    k = c2.slider("Images", 1, 24, key=f"{PAGE}.k")
    ids, values, rows = act.top_k_images(stats.channel_max, result.index, int(channel), k)
    spatial = len(stats.shape) == 3
    rf = act.receptive_field(bundle, layer) if spatial else None
    st.caption(f"The {len(ids)} images where {'channel' if spatial else 'unit'} {channel} responds most" + (
        f" (its spatial maximum); beside each, the {rf.size[0]}×{rf.size[1]}-pixel receptive field of the strongest "
        f"position{'' if rf.exact else ' (approximate: a layer of unknown geometry)'}" if rf is not None else "")
        + ".")
    images = fitted(ids)
    for start in range(0, len(ids), 4):
        for col, j in zip(st.columns(4), range(start, min(start + 4, len(ids)))):
            i, flat = int(ids[j]), int(stats.channel_argmax[rows[j], channel])
            if i not in images:
                continue
            box = act.max_location_box(bundle, layer, flat) if spatial else None
            col.image(act.patch_card(to_display(images[i]), box), width="stretch")
            col.caption(f"{dataset.ids[i]} · activation {values[j]:.3g}")
            explain_button(PAGE, "max", dataset, i, col, models=[key], layer=layer,
                           neuron=act.neuron_at(stats.shape, flat, int(channel)))


# ------------------------------------------------------------------------------------------- deep dream
def deep_dream(s: Scope) -> None:
    bundle, dataset, layer, names, fitted = s.bundle, s.dataset, s.layer, s.layer_names, s.fitted
    c1, c2, c3 = st.columns(3, gap="large")
    init_state(f"{PAGE}.kind", "channel")
    kind: Kind = segmented("Maximise", ["channel", "class"], key=f"{PAGE}.kind", where=c1,
                     labels={"channel": "a channel", "class": "a class"})
    dream_layer: str | None = None
    if kind == "channel":
        keep_valid(f"{PAGE}.dream_layer", names[:-1], layer if layer in names[:-1] else names[0])
        dream_layer = select("Layer", names[:-1], key=f"{PAGE}.dream_layer", where=c1)
        units = bundle.layer(dream_layer).output_shape[-1]
        keep_valid(f"{PAGE}.unit", range(units), 0)
        index = c1.number_input(f"Channel (0–{units - 1})", 0, units - 1, key=f"{PAGE}.unit")
    else:
        keep_valid(f"{PAGE}.class", range(bundle.num_classes), 0)
        index = c1.selectbox("Class", range(bundle.num_classes), key=f"{PAGE}.class",
                             format_func=lambda c: f"{bundle.class_names[c]} ({c})")
    init_state(f"{PAGE}.start", "noise")
    start_from = segmented("Start from", ["noise", "image"], key=f"{PAGE}.start", where=c2,
                           labels={"noise": "noise", "image": "a data set image"})
    start_i = c2.number_input(f"Image (0–{len(dataset) - 1})", 0, len(dataset) - 1, key=f"{PAGE}.start_image",
                              disabled=start_from != "image")
    init_state(f"{PAGE}.steps", 96)
    steps = c3.slider("Iterations", 8, 512, step=8, key=f"{PAGE}.steps")
    init_state(f"{PAGE}.octaves", 3)
    octaves = c3.slider("Octaves (coarse → fine)", 1, 4, key=f"{PAGE}.octaves")
    target = f"channel {index} of {dream_layer}" if kind == "channel" else bundle.class_names[int(index)]
    if st.button(f"Dream: maximise {target}", type="primary", icon=":material/auto_awesome:", key=f"{PAGE}.dream"):
        start_image = fitted([start_i]).get(int(start_i)) if start_from == "image" else None
        with progress("Gradient ascent, step") as update:
            done = run_safely(lambda: dream(bundle, int(index), dream_layer, kind, start=start_image, steps=steps,
                                            octaves=octaves, progress=update), "Deep dream")
        if done is not None:
            objective = "Mean activation" if kind == "channel" else "Logit"
            st.session_state[f"{PAGE}.dreamed"] = (f"{bundle.name} · {target}", objective, done)
    if f"{PAGE}.dreamed" in st.session_state:
        what, objective, res = st.session_state[f"{PAGE}.dreamed"]
        left, right = st.columns([1, 2], gap="large")
        left.image(upscale(to_display(res.image), 256), caption=what)
        right.metric(objective, f"{res.end:.3g}", delta=f"from {res.start:.3g}" + (
            f" ({res.factor:.1f}×)" if np.isfinite(res.factor) else ""))
        probs = bundle.predict(res.image[None])[0] if what.startswith(bundle.name) else None
        if probs is not None:
            right.caption(f"{bundle.name} sees it as **{bundle.class_names[int(probs.argmax())]}** "
                          f"({probs.max():.0%}).")
        if res.end <= 0:
            right.warning("The target stayed off: try another channel, a data set image as start, or more "
                          "iterations.", icon=":material/warning:")
        right.download_button("Download PNG", png_bytes(res.image), file_name="xai-lens_dream.png",
                              mime="image/png", icon=":material/download:")


scope = choose()
notice = st.empty()  # what is being prepared for Visualize, filled once the open tab has run
tabs = st.tabs(TABS, key=f"{PAGE}.tab", on_change="rerun")  # only the open tab runs
with tabs[TABS.index(open_tab())]:
    {"Accuracy": accuracy, "Confusion": confusion, "t-SNE": tsne_map, "Activations": activations,
     "Max activating": max_activating, "Deep dream": deep_dream}[open_tab()](scope)
# Explain opens Visualize on its method: build it now, for the layer where the tab's Explain sends one
prepare_visualize(notice, [scope.key], scope.layer if open_tab() in ("Activations", "Max activating") else None)
