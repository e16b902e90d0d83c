"""Suggest's *Strategies* view: SpRAy of one class — its maps in batches, the clusters the eigengap suggests, each
cluster's mean map over its mean image, the t-SNE of the maps with click / brush selection, every image one click
from Visualize; the shortcut check and the exports are in :mod:`ui.strategies_check`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from ui.cache import dataset_stats
from ui.cache_strategies import MapsKey, class_maps, find_strategies, maps_key
from ui.feedback import run_safely
from ui.state import DEFAULT_METHOD, init_state, keep_valid
from ui.strategies_check import exports, report_download, shortcut_section
from ui.widgets.datasets import image_cards
from ui.widgets.models import model_choices
from ui.widgets.typed import segmented, select
from xai_core.analysis import strategies as spray
from xai_core.data.dataset import Dataset, model_labels
from xai_core.methods import get_method, ready_methods
from xai_core.models.bundle import ModelBundle
from xai_core.report.strategies import StrategiesRun
from xai_core.viz import strategies_charts as charts
from xai_core.viz.explore_charts import tsne_selection
from xai_core.viz.render import png_data_url, upscale
from xai_core.viz.strategies_pictures import cluster_pictures

TOOLTIP_THUMBS = 1000


@dataclass(frozen=True)
class Analysis:
    """What the view shows: the model, its choices, and the result for the chosen number of clusters."""

    key: str
    bundle: ModelBundle
    dataset: Dataset
    maps: MapsKey
    grid: int
    relevance: str
    neighbours: int | None
    result: spray.Strategies
    k: int
    members: str  # how the class's images were chosen: "label" or "prediction"

    @property
    def send(self) -> dict[str, Any]:
        return {"models": [self.key], "method": self.maps.method_id}


def choose(page: str, dataset: Dataset, bundles: dict[str, ModelBundle]) -> Analysis | None:
    """Model, class, method and clustering settings; the maps (progress bar) and the clustering. None on failure."""
    names = model_choices()
    keep_valid(f"{page}.sp_model", list(bundles), next(iter(bundles)))
    c1, c2, c3 = st.columns([3, 2, 3])
    key = str(c1.selectbox("Model", list(bundles), key=f"{page}.sp_model", format_func=lambda k: names.get(k, k)))
    bundle = bundles[key]
    result = run_safely(lambda: dataset_stats(key, dataset), f"Running {bundle.name} over the data set")
    if result is None:
        return None
    labels, _ = model_labels(dataset, bundle.class_names)
    predicted = result.predicted_by_position(len(dataset))
    sizes = [len(spray.class_members(labels, predicted, c)[0]) for c in range(bundle.num_classes)]
    class_key = f"{page}.sp_class.{key}"  # per model: another model's class list must not linger in the box
    keep_valid(class_key, list(range(bundle.num_classes)), int(np.argmax(sizes)) if sizes[0] == 0 else 0)
    c = select("Class", list(range(bundle.num_classes)), key=class_key, where=c2,
               labels=lambda i: f"{bundle.class_names[i]} ({sizes[i]} images)")
    usable = [m for m in ready_methods(bundle, key)[0] if "class" in get_method(m).targets]
    keep_valid(f"{page}.sp_method", usable, DEFAULT_METHOD if DEFAULT_METHOD in usable else usable[0])
    method = select("Method", usable, key=f"{page}.sp_method", where=c3, labels=lambda m: get_method(m).label,
                    help="Any method: signed or non-negative maps. Default LRP-ε (its parameters at their defaults).")
    with st.expander("Clustering settings", icon=":material/tune:"):
        s1, s2, s3 = st.columns(3)
        init_state(f"{page}.sp_relevance", "positive")
        relevance = segmented("Relevance", list(spray.RELEVANCE), key=f"{page}.sp_relevance", where=s1,
                              labels={"positive": "positive", "signed": "signed", "absolute": "|absolute|"},
                              help=" · ".join(f"{k}: {v}" for k, v in spray.RELEVANCE.items()))
        init_state(f"{page}.sp_grid", spray.POOL_GRID)
        grid = select("Pooled grid", [4, 8, 16], key=f"{page}.sp_grid", where=s2, labels=lambda g: f"{g}×{g}")
        init_state(f"{page}.sp_neighbours", 0)
        neighbours = int(s3.number_input("Neighbours (0 = √images)", 0, 50, key=f"{page}.sp_neighbours"))
    index, how = spray.class_members(labels, predicted, c)
    index = index[np.isin(index, result.index)]
    logits = result.logits[np.searchsorted(result.index, index)]
    mk = maps_key(key, dataset, c, method, "center-crop")
    cm = run_safely(lambda: class_maps(mk, dataset, index, logits), "Explaining the class's images")
    if cm is None:
        return None
    s = run_safely(lambda: find_strategies(mk, grid, relevance, neighbours or None, cm), "Clustering the maps")
    if s is None:
        return None
    st.caption(f"{len(cm):,} images of class **{cm.class_name}** (by {how}) · {get_method(method).label} · "
               f"maps {cm.seconds:.1f} s · clustering and t-SNE {sum(s.seconds.values()):.1f} s"
               + "".join(f"  \n:material/warning: {w}" for w in cm.warnings[:2]))
    ident = (mk, grid, relevance, neighbours)
    if st.session_state.get(f"{page}.sp_for") != ident:  # a new analysis opens on the eigengap's choice
        st.session_state[f"{page}.sp_for"] = ident
        st.session_state[f"{page}.sp_k"] = max(s.suggested, 1)
        st.session_state.pop(f"{page}.sp_cluster", None)
    k = int(st.slider("Number of clusters", 1, max(s.labels), key=f"{page}.sp_k",
                      help=f"The eigengap suggests {s.suggested}: the largest jump of the Laplacian's eigenvalues "
                           "comes after it (chart). Changing it recomputes nothing."))
    return Analysis(key, bundle, dataset, mk, grid, relevance, neighbours or None, s, k, how)


def current_cluster(page: str, a: Analysis, table: Any) -> int:
    """The cluster looked at: the last bar clicked, else the one chosen in the box (default: the cluster whose
    relevance is most concentrated — the likeliest shortcut)."""
    seen, event = f"{page}.sp_bars_seen", st.session_state.get(f"{page}.sp_bars")
    clicked = charts.selected_cluster(event)
    if clicked is not None and clicked != st.session_state.get(seen) and clicked < a.k:
        st.session_state[f"{page}.sp_cluster"] = clicked
    st.session_state[seen] = clicked
    keep_valid(f"{page}.sp_cluster", list(range(a.k)), int(table["concentration"].idxmax()))
    return int(st.session_state[f"{page}.sp_cluster"])


def strategies_view(page: str, dataset: Dataset, bundles: dict[str, ModelBundle]) -> None:
    """The whole Strategies view of ``page`` (Suggest)."""
    st.caption(spray.HOW_TO_READ)
    a = choose(page, dataset, bundles)
    if a is None:
        report_download(page, None)
        return
    s, k = a.result, a.k
    table = spray.cluster_table(s, k)
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("**Eigengap** — the suggested number of clusters in red")
        st.altair_chart(charts.eigen_chart(spray.eigen_frame(s)), width="stretch")
    cluster = current_cluster(page, a, table)
    with right:
        st.markdown("**Clusters** — click a bar to see its images")
        st.altair_chart(charts.cluster_chart(table, k, cluster), key=f"{page}.sp_bars", on_select="rerun",
                        width="stretch")
    if dataset.tagged is not None:
        st.info(spray.tag_text(s.clusters(k), dataset.tagged[s.maps.index]), icon=":material/label:")
    pictures = cluster_pictures(a.bundle, dataset, s, k, a.maps.fit)
    for start in range(0, k, 4):
        for col, c, pic in zip(st.columns(4), range(start, min(k, start + 4)), pictures[start:start + 4]):
            col.image(upscale(pic, 160), width="stretch")
            col.caption(spray.describe_cluster(table.iloc[c], s.maps.class_name))
    frame = spray.image_frame(s, k, dataset.ids, dataset.tagged)
    if len(frame) <= TOOLTIP_THUMBS:
        frame = frame.assign(image=[png_data_url(t) for t in dataset.thumbnails(frame["index"], 48)])
    st.markdown("**The maps in 2-D** (t-SNE of the spectral embedding) — click a point or drag a rectangle")
    event = st.altair_chart(charts.embedding_chart(frame, k), key=f"{page}.sp_tsne", on_select="rerun",
                            width="stretch")
    picked = tsne_selection(event, frame)
    if len(picked):
        show_images(page, "sp_pick", a, picked, f"{len(picked)} selected image{'s' * (len(picked) != 1)}")
    c_box = select("Cluster to look at", list(range(k)), key=f"{page}.sp_cluster",
                   labels=lambda c: f"cluster {c} ({table.iloc[c]['size']} images, {table.iloc[c]['where']})")
    members = s.maps.index[s.clusters(k) == c_box]
    show_images(page, "sp_cluster_imgs", a, members, f"Cluster {c_box}: {len(members)} images")
    check = shortcut_section(page, a.key, a.bundle, dataset, a.maps, (a.grid, a.relevance, a.neighbours), s, k,
                             c_box)
    run = StrategiesRun(a.bundle, dataset, s, k, a.members, a.neighbours, a.maps.fit, check)
    exports(page, a.maps, (a.grid, a.relevance, a.neighbours), run)
    st.caption(spray.MISLEADS)


def show_images(page: str, name: str, a: Analysis, indices: np.ndarray, title: str) -> None:
    """Thumbnails of ``indices`` with their cluster and score, each with **Explain** (Visualize, same model and
    method)."""
    st.subheader(title)
    frame = spray.image_frame(a.result, a.k, a.dataset.ids).set_index("index").loc[np.asarray(indices)]
    caps = [f"{r.id}  \ncluster {r.cluster} · score {r.score:.2f}" for r in frame.itertuples()]
    image_cards(page, name, a.dataset, np.asarray(indices), caps, send=lambda _: a.send)
