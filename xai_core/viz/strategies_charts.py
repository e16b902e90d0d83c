"""Altair charts of a class's strategies (SpRAy), pure functions of long-form frames, and their selections → images.

* :func:`embedding_chart` — the t-SNE of the maps coloured by cluster; a click picks a point and a drag draws a
  rectangle, with the Explorer t-SNE's named selections (:data:`~xai_core.viz.explore_charts.TSNE_PICK`,
  :data:`~xai_core.viz.explore_charts.TSNE_BRUSH`), read back by its
  :func:`~xai_core.viz.explore_charts.tsne_selection`;
* :func:`cluster_chart` — one bar per cluster (its size); a click selects the cluster (:data:`CLUSTER_PICK`);
* :func:`eigen_chart` — the Laplacian eigenvalues, the eigengap's choice marked;
* :func:`shortcut_chart` — each image's class score before and after the shortcut check's interventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from xai_core.viz.explore_charts import TSNE_BRUSH, TSNE_PICK
from xai_core.viz.selection import selected_values

CLUSTER_PICK = "strategy_cluster"


def _cluster_scale(k: int) -> alt.Scale:
    return alt.Scale(domain=[str(c) for c in range(k)], scheme="tableau10")


def embedding_chart(frame: pd.DataFrame, k: int, height: int = 420) -> alt.Chart:
    """Scatter of :func:`xai_core.analysis.strategies.image_frame` (``index``, ``x``, ``y``, ``cluster``, ``score``,
    ``id``; optional ``tagged`` drawn as the shape, optional ``image`` data URL in the tooltip)."""
    pick = alt.selection_point(name=TSNE_PICK, fields=["index"], on="click", clear="dblclick")
    brush = alt.selection_interval(name=TSNE_BRUSH, encodings=["x", "y"])
    data = frame.assign(cluster_name=frame["cluster"].astype(str))
    shape: Any = alt.value("circle")
    if "tagged" in data:
        data = data.assign(recorded=data["tagged"].map({True: "tagged", False: "untagged"}))
        shape = alt.Shape("recorded:N", title="recorded tag", scale=alt.Scale(domain=["untagged", "tagged"],
                                                                               range=["circle", "triangle-up"]))
    return alt.Chart(data).transform_calculate(
        description="'image ' + datum.index + ': cluster ' + datum.cluster_name"
    ).mark_point(filled=True, size=60, cursor="pointer").encode(
        description=alt.Description("description:N"),
        x=alt.X("x:Q", title="t-SNE 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="t-SNE 2", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("cluster_name:N", title="cluster", scale=_cluster_scale(k)),
        shape=shape,
        opacity=alt.condition(brush, alt.value(0.9), alt.value(0.25)),
        tooltip=[*([alt.Tooltip("image:N")] if "image" in data else []), alt.Tooltip("id:N", title="image"),
                 alt.Tooltip("cluster_name:N", title="cluster"), alt.Tooltip("score:Q", title="class score",
                                                                               format=".2f")],
    ).add_params(pick, brush).properties(height=height)


def cluster_chart(table: pd.DataFrame, k: int, selected: int | None = None) -> alt.Chart:
    """Bars of :func:`xai_core.analysis.strategies.cluster_table`: one per cluster, its size; clicking a bar selects
    the cluster (:data:`CLUSTER_PICK` over ``cluster``); ``selected`` is outlined."""
    pick = alt.selection_point(name=CLUSTER_PICK, fields=["cluster"], on="click", clear=False,
                               value=None if selected is None else [{"cluster": int(selected)}])
    data = table.assign(cluster_name=table["cluster"].astype(str),
                        label=[f"{n} · {w}" for n, w in zip(table["size"], table["where"])])
    base = alt.Chart(data).encode(
        x=alt.X("cluster_name:N", title="cluster", sort=[str(c) for c in range(k)], axis=alt.Axis(labelAngle=0)),
        y=alt.Y("size:Q", title="images"),
        tooltip=[alt.Tooltip("cluster_name:N", title="cluster"), alt.Tooltip("size:Q", title="images"),
                 alt.Tooltip("where:N", title="relevance sits"),
                 alt.Tooltip("concentration:Q", title="relevance in hottest 5 %", format=".0%"),
                 alt.Tooltip("score:Q", title="mean class score", format=".2f")],
    )
    bars = base.mark_bar(cursor="pointer").encode(
        color=alt.Color("cluster_name:N", scale=_cluster_scale(k), legend=None),
        stroke=alt.when(pick, empty=False).then(alt.value("#1f2430")).otherwise(alt.value(None)),
        strokeWidth=alt.when(pick, empty=False).then(alt.value(2)).otherwise(alt.value(0)),
    ).add_params(pick)
    text = base.mark_text(dy=-8, fontSize=11).encode(text="label:N")
    return (bars + text).properties(height=200)


def selected_cluster(event: Any) -> int | None:
    """The cluster clicked in :func:`cluster_chart`, or None."""
    values = selected_values(event, CLUSTER_PICK, "cluster")
    return int(values[-1]) if values else None


def eigen_chart(eigen: pd.DataFrame) -> alt.LayerChart:
    """The smallest Laplacian eigenvalues (:func:`xai_core.analysis.strategies.eigen_frame`); the eigengap's number
    of clusters in red: the largest jump comes right after it."""
    base = alt.Chart(eigen).encode(x=alt.X("k:O", title="eigenvalue number"),
                                   y=alt.Y("eigenvalue:Q", title="Laplacian eigenvalue"))
    line = base.mark_line(color="#8a94a6")
    points = base.mark_point(filled=True, size=70).encode(
        color=alt.condition("datum.chosen", alt.value("#d62728"), alt.value("#4c78a8")),
        tooltip=["k:O", alt.Tooltip("eigenvalue:Q", format=".3f"), alt.Tooltip("gap:Q", format=".3f",
                                                                               title="gap to the next")])
    return (line + points).properties(height=200)


def shortcut_chart(frame: pd.DataFrame, groups: Sequence[str], conditions: Sequence[str]) -> alt.FacetChart:
    """Each image's class score per condition (thin lines) and the mean (large points), one panel per group, from
    :class:`xai_core.analysis.shortcut.ShortcutCheck`'s ``frame``."""
    present = [c for c in conditions if c in set(frame["condition"])]
    x = alt.X("condition:N", sort=present, title=None, axis=alt.Axis(labelAngle=-20, labelLimit=160))
    lines = alt.Chart().mark_line(opacity=0.15, color="#4c78a8").encode(
        x=x, y=alt.Y("score:Q", title="class score (logit)"), detail="index:N")
    means = alt.Chart().mark_point(filled=True, size=110, color="#d62728").encode(
        x=x, y="mean(score):Q", tooltip=[alt.Tooltip("condition:N"), alt.Tooltip("mean(score):Q", format=".2f",
                                                                                    title="mean class score")])
    # three panels of 170 px and the axis fit the two-thirds column of a 1440 px window (220 px ran past it)
    return alt.layer(lines, means, data=frame).properties(width=170, height=240).facet(
        column=alt.Column("group:N", sort=list(groups), title=None))
